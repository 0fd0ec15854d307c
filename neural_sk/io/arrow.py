"""The archive as an Arrow table: one row per study, list columns, for pandas, DuckDB, Polars.

A GraphList already holds each attribute of all graphs as one flat array cut by offsets,
which is how Arrow holds a list column: the export wraps those arrays (no per-study loop over
the values) and Parquet stores them. Needs the optional ``pyarrow``
(``pip install neural-sk[arrow]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..studies import StudySet
from .format import FORMAT_VERSION, jsonable

__all__ = ["to_arrow", "export_parquet"]


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise ImportError("the Arrow export needs pyarrow: pip install neural-sk[arrow] "
                          "(or pip install pyarrow)") from None
    return pyarrow


def _nested(pa: Any, values: np.ndarray) -> Any:
    """A flat NumPy array as Arrow values: trailing axes become fixed-size lists."""
    values = np.ascontiguousarray(values)
    arr = pa.array(values.reshape(-1))
    for width in reversed(values.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, int(width))
    return arr


def _lists(pa: Any, values: np.ndarray, ptr: np.ndarray) -> Any:
    """Rows ``values[ptr[i]:ptr[i + 1]]`` of each study as one list column."""
    return pa.ListArray.from_arrays(pa.array(np.asarray(ptr, dtype=np.int32)),
                                    _nested(pa, values))


def _plain(value: Any) -> Any:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return value.tolist() if isinstance(value, np.ndarray) else value


def _graph_columns(pa: Any, field: str, graphs: Any) -> dict[str, Any]:
    """One list column per graph attribute; edges as ``[source, target]`` pairs."""
    columns = {}
    for key in graphs.keys:
        values, ptr = graphs.flat(key)
        name = f"{field}.{key}"
        if ptr is None:  # one Python object per graph (names, odd tensors)
            columns[name] = pa.array([_plain(v) for v in values])
        elif key == "edge_index" and np.ndim(values) == 1 and np.size(values) == 2 * ptr[-1]:
            pairs, edge_ptr = graphs.packed_edges(key)
            columns[name] = _lists(pa, pairs.T, edge_ptr)
        else:
            columns[name] = _lists(pa, np.asarray(values), ptr)
    return columns


def _field_columns(pa: Any, studies: StudySet, field: str) -> dict[str, Any]:
    value = getattr(studies, field)
    if field == "ids":
        return {"id": pa.array(value.tolist())}
    if field in ("reports", "errors"):
        return {field: pa.array(value, type=pa.string())}
    if field in ("visual_graphs", "report_graphs", "graphs"):
        return _graph_columns(pa, field, value)
    if field in ("token_attention", "token_offsets"):
        mats = [np.asarray(v) for v in value]
        ptr = np.concatenate([[0], np.cumsum([len(m) for m in mats])])
        flat = np.concatenate(mats) if mats else np.zeros((0,))
        return {field: _lists(pa, flat, ptr)}
    arr = np.asarray(value)  # dense [n, ...]: attention, keep_mask, patch_features
    return {field: _nested(pa, arr) if arr.ndim > 1 else pa.array(arr)}


def to_arrow(studies: StudySet | str | os.PathLike | Sequence[str | os.PathLike], *,
             fields: Iterable[str] | None = None) -> Any:
    """The studies as a ``pyarrow.Table``: one row per study, one column per field.

    Graph fields give one list column per attribute, named ``"<field>.<attribute>"``
    (``"visual_graphs.x"``: a list of node feature rows; ``"visual_graphs.edge_index"``: a
    list of ``[source, target]`` pairs, local node numbers). The table's schema metadata
    holds the grid shape and the scorer's identity (``neural_sk.grid_shape``,
    ``neural_sk.info``, JSON).

    Parameters
    ----------
    studies : StudySet, or an archive path (file, folder, list of files)
        What to export; an archive is read with :func:`neural_sk.io.load_studies` (fused
        graphs rebuilt).
    fields : iterable of str, default=None
        Fields to export (``ids`` always are); all filled ones by default.

    Returns
    -------
    pyarrow.Table

    Examples
    --------
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> s = StudySet(ids=["a", "b"], reports=["no finding", "effusion"],
    ...              attention=np.full((2, 4), 0.25, np.float32))
    >>> table = to_arrow(s)  # doctest: +SKIP
    >>> table.column_names, table.to_pandas()["attention"][0].tolist()  # doctest: +SKIP
    (['id', 'reports', 'attention'], [0.25, 0.25, 0.25, 0.25])
    """
    pa = _pyarrow()
    if not isinstance(studies, StudySet):
        from .archive import load_studies

        studies = load_studies(studies, fields=fields)
    names = [f for f in studies.fields if f not in ("grid_shape", "info")]
    if fields is not None:
        wanted = set(fields) | {"ids"}
        missing = sorted(wanted - set(names))
        if missing:
            raise ValueError(f"field(s) {missing} are not filled (filled: {names})")
        names = [f for f in names if f in wanted]
    columns: dict[str, Any] = {}
    for field in names:
        columns.update(_field_columns(pa, studies, field))
    metadata = {"neural_sk.format_version": str(FORMAT_VERSION),
                "neural_sk.grid_shape": json.dumps(jsonable(studies.grid_shape)),
                "neural_sk.info": json.dumps(jsonable(studies.info))}
    return pa.table(columns, metadata=metadata)


def export_parquet(source: StudySet | str | os.PathLike | Sequence[str | os.PathLike],
                   out: str | os.PathLike, *, fields: Iterable[str] | None = None,
                   **parquet_kwargs: Any) -> dict:
    """Write the studies (or an archive) as one Parquet file, one row per study.

    Parameters
    ----------
    source : StudySet or archive path
        As in :func:`to_arrow`.
    out : str or path-like
        The Parquet file to write.
    fields : iterable of str, default=None
        As in :func:`to_arrow`.
    **parquet_kwargs
        Passed to ``pyarrow.parquet.write_table`` (``compression="zstd"``, ...).

    Returns
    -------
    dict
        ``path``, ``n_studies`` and ``file_bytes``.

    Examples
    --------
    >>> import os, tempfile
    >>> import pandas as pd
    >>> from neural_sk import StudySet
    >>> path = os.path.join(tempfile.mkdtemp(), "studies.parquet")
    >>> _ = export_parquet(StudySet(reports=["a", "b"]), path)  # doctest: +SKIP
    >>> pd.read_parquet(path)["reports"].tolist()  # doctest: +SKIP
    ['a', 'b']
    """
    _pyarrow()
    import pyarrow.parquet as pq

    table = to_arrow(source, fields=fields)
    pq.write_table(table, out, **parquet_kwargs)
    return {"path": str(out), "n_studies": table.num_rows, "file_bytes": os.path.getsize(out)}
