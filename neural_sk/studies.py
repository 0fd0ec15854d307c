"""StudySet: the one immutable, column-oriented container that flows between pipeline steps."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .graphs import GraphList, concat_graph_lists
from .utils.validation import check_index

__all__ = ["StudySet"]

# Fields holding one entry per study, in the order the pipeline fills them.
PER_STUDY_FIELDS = (
    "ids",
    "reports",
    "attention",
    "label_attention",
    "patch_features",
    "token_attention",
    "token_offsets",
    "keep_mask",
    "visual_graphs",
    "report_graphs",
    "graphs",
    "errors",
)
_GRAPH_FIELDS = ("visual_graphs", "report_graphs", "graphs")
_HTML_ROWS = 10  # rows a notebook shows before "... more studies"


def _field_nbytes(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return sum(_field_nbytes(v) for v in value)
        return int(value.nbytes)
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, GraphList):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(_field_nbytes(v) for v in value)
    return 0


@dataclasses.dataclass(frozen=True, repr=False, eq=False)
class StudySet:
    """An immutable record of ``n`` studies as they move through the NEURAL pipeline.

    Every pipeline step returns a new StudySet with its own fields added (see
    :meth:`replace`); inputs are never modified, so cached pipeline steps stay valid.
    Fields that no step has produced yet are ``None``.

    Parameters
    ----------
    ids : array-like of shape (n,), default=None
        Study identifiers. Defaults to ``0..n-1``.
    reports : list of str, default=None
        The report text each study was scored with (given or generated).
    attention : ndarray of shape (n, P), float32, default=None
        One importance score per image patch; each row sums to 1.
    patch_features : ndarray of shape (n, P, d), default=None
        Encoder features of every patch (float32 or float16).
    token_attention : list of ndarray of shape (T_i, P), default=None
        Per-token attention over patches, for grounded fusion.
    token_offsets : list of ndarray of shape (T_i, 2), default=None
        Character offsets ``[start, end)`` of each token in ``reports[i]``.
    keep_mask : ndarray of shape (n, P), bool, default=None
        Patches kept by the pruner.
    visual_graphs, report_graphs, graphs : GraphList or list of Data, default=None
        Per-study graphs: kept patches, report findings, and the fused graph, held as a
        :class:`~neural_sk.graphs.GraphList` (a read-only sequence of
        ``torch_geometric.data.Data`` in flat arrays); a list of ``Data`` is converted
        with :meth:`GraphList.from_data <neural_sk.graphs.GraphList.from_data>`.
    errors : list of (str or None), default=None
        Why a study could not be processed (``None`` where it was), for steps that
        offer ``on_error="skip"``.
    grid_shape : tuple of int (h, w), default=None
        Shape of the patch grid; ``h * w == P``.
    info : dict, default=None
        Identity of the model that produced the scores (preset, image size, hash...),
        so features from different encoders are never mixed by accident.
    label_attention : ndarray of shape (n, k, P), float32, default=None
        One map per label of a multi-label scorer (each row sums to 1); ``attention`` is
        their max, their mean or one of them (the scorer's ``attention_label``).

    Examples
    --------
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> s = StudySet(reports=["no acute findings", "right lower lobe consolidation"],
    ...              attention=np.full((2, 4), 0.25, dtype=np.float32), grid_shape=(2, 2))
    >>> len(s)
    2
    >>> s[[1]].reports
    ['right lower lobe consolidation']
    >>> s[np.array([True, False])].ids
    array([0])
    """

    ids: Any = None
    reports: Any = None
    attention: Any = None
    patch_features: Any = None
    token_attention: Any = None
    token_offsets: Any = None
    keep_mask: Any = None
    visual_graphs: Any = None
    report_graphs: Any = None
    graphs: Any = None
    errors: Any = None
    grid_shape: Any = None
    info: Any = None
    label_attention: Any = None  # last, so positional use of the older fields is unchanged

    def __post_init__(self) -> None:
        lengths = {
            name: len(getattr(self, name))
            for name in PER_STUDY_FIELDS
            if getattr(self, name) is not None
        }
        if len(set(lengths.values())) > 1:
            raise ValueError(f"StudySet fields disagree on the number of studies: {lengths}")
        n = next(iter(lengths.values()), 0)
        ids = np.arange(n) if self.ids is None else np.asarray(self.ids)
        if ids.ndim != 1:
            raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
        object.__setattr__(self, "ids", ids)
        for name in ("reports", "token_attention", "token_offsets", "errors"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, list):
                object.__setattr__(self, name, list(value))
        for name in _GRAPH_FIELDS:  # user lists of Data enter here, once
            value = getattr(self, name)
            if value is not None and not isinstance(value, GraphList):
                object.__setattr__(self, name, GraphList.from_data(value))
        if self.attention is not None:
            att = np.asarray(self.attention)
            if att.ndim != 2:
                raise ValueError(f"attention must be 2-D (n, P), got shape {att.shape}")
            object.__setattr__(self, "attention", att)
        if self.label_attention is not None:
            maps = np.asarray(self.label_attention)
            if maps.ndim != 3:
                raise ValueError(f"label_attention must be 3-D (n, k, P), got shape {maps.shape}")
            object.__setattr__(self, "label_attention", maps)
        if self.grid_shape is not None:
            grid = tuple(int(v) for v in self.grid_shape)
            object.__setattr__(self, "grid_shape", grid)
            n_patches = grid[0] * grid[1]
            for name in ("attention", "keep_mask", "patch_features", "label_attention"):
                value = getattr(self, name)
                axis = 2 if name == "label_attention" else 1
                if value is not None and value.shape[axis] != n_patches:
                    raise ValueError(
                        f"{name} has {value.shape[axis]} patches but grid_shape {grid} "
                        f"has {n_patches}"
                    )
        if self.info is not None:
            object.__setattr__(self, "info", dict(self.info))

    # -- size and selection --------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int]:
        """``(n,)``, so scikit-learn's cross-validation can index a StudySet."""
        return (len(self),)

    @property
    def n_patches(self) -> int | None:
        """Number of patches per study (``P``), or None before scoring."""
        return None if self.grid_shape is None else self.grid_shape[0] * self.grid_shape[1]

    def __getitem__(self, key: Any) -> StudySet:
        if isinstance(key, tuple):  # sklearn's _safe_indexing uses X[key, ...]
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError("StudySet supports one index: int array, slice or mask")
        n = len(self)
        index = check_index(key, n, what="studies")
        fields = {}
        for name in PER_STUDY_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                fields[name] = value[index]
            elif isinstance(value, GraphList):
                fields[name] = value.take(index)
            else:
                fields[name] = [value[i] for i in index]
        return dataclasses.replace(self, **fields)

    def replace(self, **fields: Any) -> StudySet:
        """Return a new StudySet with ``fields`` set; this one is left unchanged.

        Parameters
        ----------
        **fields
            Field names and their new values (``keep_mask=...``, ``graphs=...``).

        Returns
        -------
        StudySet
        """
        unknown = set(fields) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown StudySet fields: {sorted(unknown)}")
        return dataclasses.replace(self, **fields)

    @property
    def fields(self) -> list[str]:
        """Names of the fields that are filled."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def nbytes_by_field(self) -> dict[str, int]:
        """Bytes held by each filled per-study field (graphs count their tensors).

        Returns
        -------
        dict of str to int
        """
        return {
            name: _field_nbytes(getattr(self, name))
            for name in PER_STUDY_FIELDS
            if getattr(self, name) is not None
        }

    @property
    def nbytes(self) -> int:
        """Total bytes held by the per-study fields."""
        return sum(self.nbytes_by_field().values())

    def __repr__(self) -> str:
        parts = [f"n={len(self)}"]
        if self.grid_shape is not None:
            parts.append(f"grid={self.grid_shape[0]}x{self.grid_shape[1]}")
        for name in PER_STUDY_FIELDS[1:]:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, np.ndarray):
                shape = "x".join(str(s) for s in value.shape)
                parts.append(f"{name}[{shape} {value.dtype}]")
            else:
                parts.append(f"{name}[{len(value)}]")
        parts.append(f"nbytes={_human_bytes(self.nbytes)}")
        return "StudySet(" + ", ".join(parts) + ")"

    def nbytes_each(self) -> np.ndarray:
        """Bytes each study holds across the per-study fields.

        Returns
        -------
        ndarray of shape (n,), int64
            One count per study; they add up to :attr:`nbytes`.
        """
        out = np.zeros(len(self), dtype=np.int64)
        for name in PER_STUDY_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, GraphList):
                out += value.nbytes_each()
            elif isinstance(value, np.ndarray) and value.dtype != object:
                out += value[0].nbytes if len(value) else 0
            else:
                out += [_field_nbytes(v) for v in value]
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per study: what a person checks first, as a pandas DataFrame.

        Columns appear when the fields behind them are filled: ``study_id``; ``error``;
        ``report``; ``top_patch`` (the highest-scoring patch, ``(row, col)``); ``kept``
        (patches kept); ``findings`` (the report graph's findings with their status, e.g.
        ``"consolidation (present); pleural-effusion (absent)"``) and ``anatomy``;
        ``visual_nodes``, ``report_nodes``, ``graph_nodes`` (nodes of each graph); and
        ``nbytes`` (what the study holds in memory, :meth:`nbytes_each`).

        Returns
        -------
        pandas.DataFrame
            ``len(self)`` rows, in study order.

        Examples
        --------
        >>> import numpy as np
        >>> from neural_sk import StudySet
        >>> s = StudySet(ids=["a", "b"], attention=np.array([[0.1, 0.9], [0.6, 0.4]]),
        ...              keep_mask=np.array([[False, True], [True, True]]), grid_shape=(1, 2))
        >>> s.to_frame()[["study_id", "top_patch", "kept"]]
          study_id top_patch  kept
        0        a    (0, 1)     1
        1        b    (0, 0)     2
        """
        columns: dict[str, Any] = {"study_id": self.ids}
        if self.errors is not None:
            columns["error"] = self.errors
        if self.reports is not None:
            columns["report"] = self.reports
        if self.attention is not None and self.grid_shape is not None:
            top = np.asarray(self.attention).argmax(1) if len(self) else np.zeros(0, int)
            columns["top_patch"] = [tuple(int(v) for v in divmod(int(t), self.grid_shape[1]))
                                    for t in top]
        if self.keep_mask is not None:
            columns["kept"] = np.asarray(self.keep_mask).sum(1)
        if self.report_graphs is not None:
            columns["findings"], columns["anatomy"] = _findings_text(self.report_graphs)
        for name in _GRAPH_FIELDS:
            graphs = getattr(self, name)
            if graphs is not None:
                label = "graph" if name == "graphs" else name.split("_")[0]
                columns[f"{label}_nodes"] = graphs.node_counts
        columns["nbytes"] = self.nbytes_each()
        return pd.DataFrame(columns)

    def _repr_html_(self) -> str:
        """A notebook's view: the summary line, then the first rows of :meth:`to_frame`."""
        import html

        head = self[np.arange(min(len(self), _HTML_ROWS))].to_frame()
        more = (f"<p>… {len(self) - _HTML_ROWS} more studies</p>"
                if len(self) > _HTML_ROWS else "")
        with pd.option_context("display.max_colwidth", 80):  # long reports, shortened
            table = head.to_html(index=False, escape=True)
        return f"<div><p><code>{html.escape(repr(self))}</code></p>{table}{more}</div>"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


def _findings_text(report_graphs: GraphList) -> tuple[list[str], list[str]]:
    """Per study, its findings as "name (status)" and its anatomy names, "; "-joined."""
    from .text.lexicon import STATUSES

    names, _ = report_graphs.flat("node_names") if "node_names" in report_graphs.keys \
        else ([None] * len(report_graphs), None)
    status, ptr = report_graphs.flat("node_status") if "node_status" in report_graphs.keys \
        else (None, None)
    findings, anatomy = [], []
    for i, graph_names in enumerate(names):
        graph_names = list(graph_names or [])
        codes = ([-1] * len(graph_names) if status is None
                 else status[ptr[i] : ptr[i + 1]].tolist())
        findings.append("; ".join(f"{name} ({STATUSES[c]})"
                                  for name, c in zip(graph_names, codes) if c >= 0))
        anatomy.append("; ".join(name for name, c in zip(graph_names, codes) if c < 0))
    return findings, anatomy


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def concat_study_sets(parts: Sequence[StudySet]) -> StudySet:
    """Join StudySets with the same filled fields and grid into one, in order."""
    if not parts:
        raise ValueError("nothing to concatenate")
    first = parts[0]
    fields: dict[str, Any] = {}
    for name in PER_STUDY_FIELDS:
        values = [getattr(p, name) for p in parts]
        if all(v is None for v in values):
            continue
        if any(v is None for v in values):
            raise ValueError(f"field {name!r} is filled in some parts and not others")
        if isinstance(values[0], np.ndarray):
            fields[name] = np.concatenate(values)
        elif name in _GRAPH_FIELDS:
            fields[name] = concat_graph_lists(values)
        else:
            fields[name] = [item for v in values for item in v]
    return dataclasses.replace(first, **fields)
