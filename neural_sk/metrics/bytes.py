"""Bytes: what an archive stores per study for a kept graph, and what the image itself costs.

:func:`graph_nbytes` / :func:`kept_graph_bytes` count what an archive stores per study for a
kept graph at a stated dtype; :func:`image_nbytes` and :func:`source_nbytes` give the image's
own cost (as lossless PNG, and as the file on disk). The share of patches dropped is
:func:`neural_sk.metrics.patch_reduction`, which is not a byte count.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["graph_nbytes", "kept_graph_bytes", "image_nbytes", "source_nbytes"]


_FLOAT_SIZES = {"bfloat16": 2}


def _itemsize(dtype: Any) -> int:
    if isinstance(dtype, str) and dtype in _FLOAT_SIZES:
        return _FLOAT_SIZES[dtype]
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        raise ValueError(f"unknown dtype {dtype!r}") from None


def _uint_size(max_value: int) -> int:
    """Bytes of the smallest unsigned type holding ``max_value`` (uint8/uint16/uint32/uint64)."""
    for size in (1, 2, 4):
        if max_value < 256**size:
            return size
    return 8


def _int_size(lo: int, hi: int) -> int:
    if lo >= 0:
        return _uint_size(hi)
    for size in (1, 2, 4):
        bound = 2 ** (8 * size - 1)
        if -bound <= lo and hi < bound:
            return size
    return 8


def graph_nbytes(graph: Any, dtype: Any = "float16", *, attrs: Iterable[str] | None = None) -> int:
    """Count the bytes an archive stores for one graph, with compact types.

    Counts the graph's tensors (torch or NumPy) as they would be written:

    - floating-point tensors (``x``, ``attention``...) at ``dtype``, except ``pos``;
    - ``edge_index`` in the smallest integer type that holds a node index (uint8 up to 256
      nodes, uint16 up to 65,536, then uint32);
    - ``pos`` (integer grid coordinates, even when stored as floats) in the smallest
      unsigned type holding the largest coordinate (uint8 for any grid up to 256 x 256);
      non-integer positions are counted at ``dtype``;
    - other integer tensors (``patch_id``, ``node_type``...) in the smallest type
      holding their range; booleans as one byte each.

    Strings (``node_names``) and scalars are not counted: report text is accounted for
    separately.

    Parameters
    ----------
    graph : torch_geometric.data.Data or mapping of name -> array
        The graph (visual, report or fused).
    dtype : str or numpy dtype, default="float16"
        Storage type of floating-point tensors (``"float32"``, ``"float16"``,
        ``"bfloat16"``, ``"uint8"`` for 8-bit quantised features...).
    attrs : iterable of str, default=None
        Only count these attributes (e.g. ``("x", "edge_index", "pos")``); all tensors
        when None.

    Returns
    -------
    int
        Bytes of the counted tensors.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.zeros(3, 8), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
    ...          pos=torch.tensor([[0., 0.], [0., 1.], [0., 2.]]))
    >>> graph_nbytes(g)                     # 3*8*2 + 8*1 + 6*1
    62
    >>> graph_nbytes(g, dtype="float32")    # 3*8*4 + 8 + 6
    110
    """
    float_size = _itemsize(dtype)
    wanted = None if attrs is None else set(attrs)
    items = graph.items() if hasattr(graph, "items") else iter(graph)
    num_nodes = getattr(graph, "num_nodes", None)
    total = 0
    for name, value in items:
        if wanted is not None and name not in wanted:
            continue
        if hasattr(value, "detach"):  # torch tensor
            value = value.detach().cpu().numpy()
        if not isinstance(value, np.ndarray) or value.dtype == object:
            continue
        size = value.size
        if size == 0:
            continue
        if name == "edge_index":
            nodes = int(num_nodes) if num_nodes is not None else int(value.max()) + 1
            total += size * _uint_size(max(nodes - 1, 0))
        elif name == "pos" and np.all(value >= 0) and np.all(np.mod(value, 1) == 0):
            total += size * _uint_size(int(value.max()))
        elif value.dtype == bool:
            total += size
        elif np.issubdtype(value.dtype, np.integer):
            total += size * _int_size(int(value.min()), int(value.max()))
        else:
            total += size * float_size
    return int(total)


def kept_graph_bytes(
    studies: Any,
    dtype: Any = "float16",
    *,
    field: str = "visual_graphs",
    attrs: Iterable[str] | None = None,
) -> np.ndarray:
    """Per-study bytes of the kept graphs, as :func:`graph_nbytes` counts them.

    Parameters
    ----------
    studies : StudySet or list of graphs
        The pruned studies, or their graphs.
    dtype : str or numpy dtype, default="float16"
        Storage type of floating-point tensors, as in :func:`graph_nbytes`.
    field : {"visual_graphs", "graphs", "report_graphs"}, default="visual_graphs"
        Which StudySet field to count (ignored for a list). The visual graph is the image's
        compressed form; the fused ``graphs`` add the report nodes.
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
    >>> g = Data(x=torch.zeros(2, 4), edge_index=torch.tensor([[0, 1], [1, 0]]))
    >>> kept_graph_bytes([g, g], dtype="float32")
    array([36, 36])
    """
    if isinstance(studies, (list, tuple)):
        graphs = studies
    else:
        graphs = getattr(studies, field, None)
        if graphs is None:
            raise ValueError(
                f"the StudySet has no {field!r}; run the step that builds them first"
            )
    return np.array([graph_nbytes(g, dtype, attrs=attrs) for g in graphs], dtype=np.int64)


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
