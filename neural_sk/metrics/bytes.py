"""Bytes: what an archive stores per study for a kept graph, and what the image itself costs.

:func:`graph_nbytes` / :func:`kept_graph_bytes` ask :mod:`neural_sk.io` what the archive
writes per study for a kept graph at a stated dtype (one count of bytes: no second model of
the format); :func:`image_nbytes` and :func:`source_nbytes` give the image's
own cost (as lossless PNG, and as the file on disk). The share of patches dropped is
:func:`neural_sk.metrics.patch_reduction`, which is not a byte count.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["graph_nbytes", "kept_graph_bytes", "archive_bytes_per_study", "image_nbytes",
           "source_nbytes"]


# Storage types a caller may name and the archive type that stores them (bfloat16 has the
# bytes of float16; 8-bit features are the archive's int8 with a per-study scale).
_ARCHIVE_DTYPES = {"float16": "float16", "bfloat16": "float16", "float32": "float32",
                   "int8": "int8", "uint8": "int8"}


def _archive_dtype(dtype: Any) -> str:
    name = dtype if isinstance(dtype, str) else getattr(np.dtype(dtype), "name", str(dtype))
    if name not in _ARCHIVE_DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; the archive stores features as "
                         f"{sorted(_ARCHIVE_DTYPES)}")
    return _ARCHIVE_DTYPES[name]


def graph_nbytes(graph: Any, dtype: Any = "float16", *, attrs: Iterable[str] | None = None) -> int:
    """Count the bytes an archive stores for one graph: what :func:`neural_sk.io.save_studies`
    writes for it (the same encoder, through :func:`neural_sk.io.studies_nbytes`).

    The archive stores node features ``x`` at ``dtype``; ``edge_index`` as local node
    indices in the smallest unsigned type (uint8 up to 256 nodes); integer-valued tensors
    (grid positions, patch ids) in the smallest integer type; other floats as they are; and
    each attribute's offsets. Strings count their UTF-8 bytes.

    Parameters
    ----------
    graph : torch_geometric.data.Data
        The graph (stored as a one-study archive's visual graphs).
    dtype : str or numpy dtype, default="float16"
        Storage type of ``x``: ``"float16"``, ``"float32"`` or ``"int8"`` (one scale per
        study); ``"bfloat16"`` counts as float16 and ``"uint8"`` as int8.
    attrs : iterable of str, default=None
        Only count the arrays of these attributes (each with its offsets); all when None.

    Returns
    -------
    int
        Bytes of the counted arrays.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.full((3, 8), 0.5), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    >>> graph_nbytes(g, attrs=("x",))                  # 3*8 float16, 2 uint8 offsets
    50
    >>> graph_nbytes(g, "float32", attrs=("x",))       # 3*8 float32, 2 uint8 offsets
    98
    """
    return int(kept_graph_bytes([graph], dtype, attrs=attrs)[0])


def _member_of(name: str, fields: tuple[str, ...], attrs: set[str] | None) -> bool:
    field, _, rest = name.partition("/")
    if field not in fields:
        return False
    return attrs is None or rest.split(".")[0] in attrs


def kept_graph_bytes(
    studies: Any,
    dtype: Any = "float16",
    *,
    field: str = "visual_graphs",
    attrs: Iterable[str] | None = None,
) -> np.ndarray:
    """Per-study bytes of the kept graphs in an archive: what
    :func:`neural_sk.io.save_studies` writes for them (:func:`neural_sk.io.studies_nbytes`).

    Parameters
    ----------
    studies : StudySet or list of graphs
        The pruned studies, or their graphs (counted as visual graphs).
    dtype : str or numpy dtype, default="float16"
        Storage type of the node features, as in :func:`graph_nbytes`.
    field : {"visual_graphs", "graphs", "report_graphs"}, default="visual_graphs"
        Which StudySet field to count (ignored for a list). The visual graph is the image's
        compressed form. The fused ``graphs`` cost what storing them takes: with the visual
        and report graphs they are rebuilt from, those graphs' bytes (the fused ones add
        none); alone, their own.
    attrs : iterable of str, default=None
        As in :func:`graph_nbytes`.

    Returns
    -------
    ndarray of shape (n,), int64
        Bytes per study.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.full((2, 4), 0.5), edge_index=torch.tensor([[0, 1], [1, 0]]))
    >>> kept_graph_bytes([g, g], dtype="float32")  # x 32, edges 4, offsets 3 / 2 studies
    array([38, 38])
    """
    from ..io import studies_nbytes
    from ..studies import StudySet

    if isinstance(studies, (list, tuple)):
        studies, field = StudySet(visual_graphs=list(studies)), "visual_graphs"
    elif getattr(studies, field, None) is None:
        raise ValueError(
            f"the StudySet has no {field!r}; run the step that builds them first"
        )
    fields: tuple[str, ...] = (field,)
    if field == "graphs":
        fields = tuple(f for f in ("visual_graphs", "report_graphs")
                       if getattr(studies, f) is not None) + fields
    frame = studies_nbytes(studies, fields=fields, feature_dtype=_archive_dtype(dtype),
                           members=True)
    wanted = None if attrs is None else set(attrs)
    columns = [c for c in frame.columns if _member_of(c, fields, wanted)]
    return frame[columns].sum(axis=1).to_numpy(dtype=np.int64)


def archive_bytes_per_study(studies: Any, *, fields: Iterable[str] | None = None,
                            feature_dtype: str = "float16") -> dict:
    """Mean bytes per study of the archive file that :func:`neural_sk.io.save_studies` writes
    for ``studies`` (written to a temporary folder and measured, then removed).

    Parameters
    ----------
    studies : StudySet
    fields : iterable of str, default=None
        The fields stored; by default what ``neural-sk compress`` stores (the graphs, from
        which the keep mask and the fused graphs are rebuilt).
    feature_dtype : {"float16", "float32", "int8"}, default="float16"

    Returns
    -------
    dict
        ``file`` (the file's bytes per study, headers and metadata included), ``payload``
        (the studies' arrays only) and one entry per stored field, each a mean per study.

    Examples
    --------
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> s = StudySet(attention=np.full((4, 16), 1 / 16, np.float32))
    >>> got = archive_bytes_per_study(s)
    >>> got["attention"], got["file"] > got["payload"]
    (64.0, True)
    """
    import tempfile

    from ..io import archive_nbytes, save_studies
    from ..io.format import lean_fields

    n = max(len(studies), 1)
    with tempfile.TemporaryDirectory(prefix="neural_sk_bytes_") as tmp:
        path = os.path.join(tmp, "studies.npz")
        save_studies(path, studies, feature_dtype=feature_dtype,
                     fields=lean_fields(studies) if fields is None else fields)
        acc = archive_nbytes(path)
    out = {"file": acc["file_bytes"] / n, "payload": acc["payload_bytes"] / n}
    out.update({field: value / n for field, value in acc["fields"].items()})
    return out


def image_nbytes(image: Any, format: str = "png") -> int:
    """Count the bytes of one image stored losslessly, as an archive of whole images would.

    Parameters
    ----------
    image : ndarray or path
        A uint8 or uint16 (H, W) array is stored as it is (8 or 16 bits); anything else (a
        path, floats, colour) is read with
        :func:`neural_sk.datasets.images.read_image_uint8` and stored as 8-bit grey, as the
        pipeline sees it.
    format : {"png", "raw"}, default="png"
        ``"png"``: Pillow's PNG encoder with its default compression level and no
        ``optimize`` pass. ``"raw"``: uncompressed pixels (``H * W`` bytes at 8 bits).

    Returns
    -------
    int
        Encoded size in bytes.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.zeros((64, 64), dtype=np.uint8)
    >>> image_nbytes(flat, "raw")
    4096
    >>> image_nbytes(flat) < 200               # a constant image compresses well
    True
    """
    if format not in ("png", "raw"):
        raise ValueError(f"format must be 'png' or 'raw', got {format!r}")
    from PIL import Image

    # Imported here so that importing the metrics does not load the data sets.
    from ..datasets.images import read_image_uint8

    # 8- and 16-bit grey arrays are stored as they are; anything else as the pipeline sees it.
    pil = Image.fromarray(read_image_uint8(image, keep_uint16=True))
    if format == "raw":
        return int(pil.width * pil.height * (2 if pil.mode.startswith("I") else 1))
    buf = io.BytesIO()
    pil.save(buf, format="PNG", optimize=False)
    return buf.tell()


def source_nbytes(path: str | os.PathLike) -> int:
    """Size of the image file as stored (DICOM, PNG, JPEG...), in bytes.

    Parameters
    ----------
    path : str or path-like
        The image file.

    Returns
    -------
    int
        File size in bytes.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"12345")
    >>> source_nbytes(f.name)
    5
    >>> os.remove(f.name)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"source_nbytes needs a file path, got {type(path).__name__}; "
            "use image_nbytes for in-memory images"
        )
    return int(os.path.getsize(path))
