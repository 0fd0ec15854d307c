"""Evidence metrics: does the pruning keep the lesion, and how many bytes does a study cost?

Two families live here, both pure NumPy and vectorised over studies:

- **Localisation.** :func:`patch_lesion_masks` maps pixel lesion masks onto the patch grid;
  :func:`lesion_hit_rate`, :func:`top_fraction_hit_rate`, :func:`hit_at_k` and
  :func:`enrichment` say whether the kept (or top-scored) patches touch the lesion, and
  :func:`hit_rate_chance` and friends give the level that the same number of *random*
  patches would reach. A hit rate means nothing without its chance level beside it.
- **Bytes.** :func:`graph_nbytes` / :func:`kept_graph_bytes` count what an archive stores per
  study for a kept graph at a stated dtype; :func:`image_nbytes` and :func:`source_nbytes`
  give the image's own cost (as lossless PNG, and as the file on disk);
  :func:`patch_reduction` is the paper's "reduction" figure (share of patches dropped),
  which is *not* a byte count.

Conventions
-----------
Patches are numbered row-major over the grid ``(h, w)``: patch ``p`` sits at row ``p // w``
and column ``p % w``. A *positive* study is one with at least one lesion patch, or, when a
label vector ``y`` is given, one with ``y == 1`` (a positive study without any lesion patch
then counts as a miss, never as a hit).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

from .graphs import top_k_mask

__all__ = [
    "patch_lesion_masks",
    "lesion_hit_rate",
    "hit_rate_chance",
    "top_fraction_hit_rate",
    "top_fraction_chance",
    "hit_at_k",
    "hit_at_k_chance",
    "enrichment",
    "graph_nbytes",
    "kept_graph_bytes",
    "image_nbytes",
    "source_nbytes",
    "patch_reduction",
]


# --------------------------------------------------------------------------------------
# Localisation
# --------------------------------------------------------------------------------------
def _cell_bounds(size: int, cells: int) -> np.ndarray:
    """Boundaries ``floor(i * size / cells)`` for ``i = 0..cells`` (integer arithmetic)."""
    # Integer floor division avoids float round-off putting a boundary one pixel off.
    return (np.arange(cells + 1, dtype=np.int64) * size) // cells


def _grid(grid_shape: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in grid_shape)
    except (TypeError, ValueError):
        raise ValueError(f"grid_shape must be a pair (h, w), got {grid_shape!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"grid_shape must be positive, got {(h, w)}")
    return h, w


def _lesion_counts(masks: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Lesion pixel count and pixel count of every grid cell, for a stack [n, H, W]."""
    n, H, W = masks.shape
    rows, cols = _cell_bounds(H, h), _cell_bounds(W, w)
    # An integral image gives every cell's count with two subtractions and copes with
    # empty cells (H < h), which np.add.reduceat would get wrong.
    integral = np.zeros((n, H + 1, W + 1), dtype=np.int64)
    np.cumsum(np.cumsum(masks, axis=1, dtype=np.int64), axis=2, out=integral[:, 1:, 1:])
    counts = (
        integral[:, rows[1:, None], cols[None, 1:]]
        - integral[:, rows[:-1, None], cols[None, 1:]]
        - integral[:, rows[1:, None], cols[None, :-1]]
        + integral[:, rows[:-1, None], cols[None, :-1]]
    )
    sizes = np.diff(rows)[:, None] * np.diff(cols)[None, :]
    return counts.reshape(n, h * w), sizes.reshape(h * w)


def patch_lesion_masks(
    masks: np.ndarray | Sequence[np.ndarray | None],
    grid_shape: Sequence[int],
    *,
    min_fraction: float = 0.0,
) -> np.ndarray:
    """Which patches of the grid touch the lesion, per study.

    The ``H x W`` image is cut into ``h x w`` cells the way a strided CNN maps pixels to its
    feature grid: cell ``i`` covers rows ``[floor(i*H/h), floor((i+1)*H/h))`` and likewise for
    columns, so cells differ by at most one pixel when ``H`` is not divisible by ``h``.

    Parameters
    ----------
    masks : ndarray of shape (n, H, W) or list of (H_i, W_i) arrays or None
        Lesion pixels (truthy = lesion). A list may mix image sizes; ``None`` means no
        lesion (all patches False).
    grid_shape : tuple of int (h, w)
        The patch grid.
    min_fraction : float, default=0.0
        A patch touches the lesion when the share of its pixels that are lesion is
        greater than zero and at least ``min_fraction``. ``0`` means any lesion pixel.

    Returns
    -------
    ndarray of shape (n, h * w), bool
        Row-major over the grid.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 4, 4), dtype=bool)
    >>> m[0, 0, 3] = True                      # top-right pixel
    >>> patch_lesion_masks(m, (2, 2)).astype(int)
    array([[0, 1, 0, 0]])
    >>> m[0, :2, 2:] = True                    # the whole top-right cell
    >>> m[0, 3, 0] = True                      # one pixel of the bottom-left cell
    >>> patch_lesion_masks(m, (2, 2), min_fraction=0.5).astype(int)
    array([[0, 1, 0, 0]])
    """
    h, w = _grid(grid_shape)
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction!r}")

    def decide(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / np.maximum(sizes, 1)
        return (counts > 0) & (share >= min_fraction)

    if isinstance(masks, np.ndarray) and masks.dtype != object:
        if masks.ndim == 2:
            raise ValueError(
                f"masks must be a stack (n, H, W) or a list of masks; got one {masks.shape} "
                "mask: wrap it as masks[None]"
            )
        if masks.ndim != 3:
            raise ValueError(f"masks must have shape (n, H, W), got {masks.shape}")
        return decide(*_lesion_counts(masks.astype(bool, copy=False), h, w))

    masks = list(masks)
    out = np.zeros((len(masks), h * w), dtype=bool)
    # Group studies by image size so each size is one vectorised pass.
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(masks):
        if m is None:
            continue
        shape = np.shape(m)
        if len(shape) != 2:
            raise ValueError(f"mask of study {i} must be 2-D (H, W), got shape {shape}")
        by_shape.setdefault(shape, []).append(i)
    for index in by_shape.values():
        stack = np.stack([np.asarray(masks[i], dtype=bool) for i in index])
        out[index] = decide(*_lesion_counts(stack, h, w))
    return out


def _check_pair(
    name: str, a: np.ndarray, lesion_patches: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    lesion = np.asarray(lesion_patches, dtype=bool)
    if lesion.ndim != 2:
        raise ValueError(f"lesion_patches must be 2-D (n, P), got shape {lesion.shape}")
    if a.shape != lesion.shape:
        raise ValueError(
            f"{name} has shape {a.shape} but lesion_patches has shape {lesion.shape}"
        )
    return a, lesion


def _positives(lesion: np.ndarray, y: Any) -> np.ndarray:
    if y is None:
        return lesion.any(axis=1)
    y = np.asarray(y).ravel()
    if y.shape[0] != lesion.shape[0]:
        raise ValueError(f"y has {y.shape[0]} entries for {lesion.shape[0]} studies")
    return y == 1


def _mean_over(values: np.ndarray, positive: np.ndarray) -> float:
    # No positive study: the rate is undefined, not zero.
    return float(values[positive].mean()) if positive.any() else float("nan")


def lesion_hit_rate(
    keep_mask: np.ndarray, lesion_patches: np.ndarray, y: Any = None
) -> float:
    """Share of positive studies whose kept patches touch the lesion.

    Parameters
    ----------
    keep_mask : ndarray of shape (n, P), bool
        Kept patches (e.g. ``StudySet.keep_mask``).
    lesion_patches : ndarray of shape (n, P), bool
        From :func:`patch_lesion_masks`.
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` instead of the studies with a
        lesion patch.

    Returns
    -------
    float
        NaN when there is no positive study.

    See Also
    --------
    hit_rate_chance : The same rate for the same number of random patches.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=bool)
    >>> keep = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)
    >>> lesion_hit_rate(keep, lesion)           # study 2 has no lesion: not counted
    0.5
    """
    keep, lesion = _check_pair("keep_mask", keep_mask, lesion_patches)
    hits = (keep.astype(bool) & lesion).any(axis=1)
    return _mean_over(hits, _positives(lesion, y))


def _log_comb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return gammaln(a + 1.0) - gammaln(b + 1.0) - gammaln(a - b + 1.0)


def _chance_per_study(n_kept: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """P(at least one lesion patch among k uniform draws without replacement), per study."""
    n_patches = lesion.shape[1]
    n_lesion = lesion.sum(axis=1).astype(np.float64)
    k = np.clip(n_kept.astype(np.float64), 0, n_patches)
    clean = n_patches - n_lesion
    # 1 - C(P-L, k) / C(P, k) in log space; when k > P - L every draw set hits.
    feasible = k <= clean
    log_miss = np.where(
        feasible,
        _log_comb(clean, np.where(feasible, k, 0.0)) - _log_comb(float(n_patches), k),
        -np.inf,
    )
    return -np.expm1(log_miss)


def _as_n_kept(n_kept: Any, n: int) -> np.ndarray:
    arr = np.asarray(n_kept)
    if arr.ndim == 2:  # a keep mask
        if arr.shape[0] != n:
            raise ValueError(f"keep mask has {arr.shape[0]} rows for {n} studies")
        return arr.astype(bool).sum(axis=1)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.shape != (n,):
        raise ValueError(f"n_kept must be an int, (n,) counts or an (n, P) mask; got {arr.shape}")
    if np.any(arr < 0):
        raise ValueError("n_kept must be non-negative")
    return arr


def hit_rate_chance(n_kept: Any, lesion_patches: np.ndarray, y: Any = None) -> float:
    """Expected hit rate if each study kept the same number of patches uniformly at random.

    For a study with ``P`` patches of which ``L`` touch the lesion, ``k`` random patches miss
    the lesion with the hypergeometric probability ``C(P-L, k) / C(P, k)``; the chance level
    is one minus that, averaged over the positive studies (computed with log-gamma, so it is
    stable for any grid size).

    Parameters
    ----------
    n_kept : int, array-like of shape (n,) or keep mask of shape (n, P)
        Patches kept per study; a boolean mask is counted row by row.
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` (see the module notes).

    Returns
    -------
    float
        The chance hit rate; NaN when there is no positive study.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.zeros((1, 10), dtype=bool); lesion[0, :2] = True
    >>> round(hit_rate_chance(1, lesion), 3)     # 2 of 10 patches
    0.2
    >>> round(hit_rate_chance(2, lesion), 3)     # 1 - C(8,2)/C(10,2) = 1 - 28/45
    0.378
    """
    lesion = np.asarray(lesion_patches, dtype=bool)
    if lesion.ndim != 2:
        raise ValueError(f"lesion_patches must be 2-D (n, P), got shape {lesion.shape}")
    k = _as_n_kept(n_kept, lesion.shape[0])
    positive = _positives(lesion, y)
    return _mean_over(_chance_per_study(k, lesion), positive)


def _n_top(fraction: float, n_patches: int) -> int:
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    # A small epsilon keeps e.g. 0.05 * 200 = 10.000000000000002 at 10 patches.
    return max(1, math.ceil(float(fraction) * n_patches - 1e-9))


def top_fraction_hit_rate(
    scores: np.ndarray, lesion_patches: np.ndarray, fraction: float = 0.05, y: Any = None
) -> float:
    """Hit rate of the top ``fraction`` of patches by score.

    Each study keeps its ``k = max(1, ceil(fraction * P))`` highest-scored patches (ties go to
    the lower patch index, as in the pruner) and counts a hit when one of them touches the lesion.

    Parameters
    ----------
    scores : ndarray of shape (n, P)
        Patch scores, e.g. ``StudySet.attention``.
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.
    fraction : float in (0, 1], default=0.05
        Share of the patches kept per study (rounded up, at least one).
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` (see the module notes).

    Returns
    -------
    float
        The hit rate; NaN when there is no positive study.

    See Also
    --------
    top_fraction_chance : Its chance level.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.zeros((1, 100), dtype=bool); lesion[0, 42] = True
    >>> scores = np.zeros((1, 100)); scores[0, 42] = 1.0
    >>> top_fraction_hit_rate(scores, lesion, fraction=0.05)
    1.0
    """
    scores, lesion = _check_pair("scores", scores, lesion_patches)
    keep = top_k_mask(scores, _n_top(fraction, lesion.shape[1]))
    return lesion_hit_rate(keep, lesion, y)


def top_fraction_chance(
    lesion_patches: np.ndarray, fraction: float = 0.05, y: Any = None
) -> float:
    """Chance level of :func:`top_fraction_hit_rate` (random patches, same ``k``).

    Parameters
    ----------
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.
    fraction : float in (0, 1], default=0.05
        Share of the patches kept per study (rounded up, at least one).
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` (see the module notes).

    Returns
    -------
    float
        The expected hit rate of ``k`` random patches per study.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.zeros((1, 100), dtype=bool); lesion[0, 42] = True
    >>> round(top_fraction_chance(lesion, fraction=0.05), 3)
    0.05
    """
    lesion = np.asarray(lesion_patches, dtype=bool)
    return hit_rate_chance(_n_top(fraction, lesion.shape[1]), lesion, y)


def hit_at_k(scores: np.ndarray, lesion_patches: np.ndarray, k: int = 1, y: Any = None) -> float:
    """Share of positive studies where one of the ``k`` top-scored patches touches the lesion.

    Parameters
    ----------
    scores : ndarray of shape (n, P)
        Patch scores, e.g. ``StudySet.attention``.
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.
    k : int, default=1
        Number of top-scored patches per study (ties go to the lower patch index).
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` (see the module notes).

    Returns
    -------
    float
        The hit rate; NaN when there is no positive study.

    See Also
    --------
    hit_at_k_chance : Its chance level.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.array([[0, 1, 0, 0], [0, 0, 0, 1]], dtype=bool)
    >>> scores = np.array([[0.1, 0.7, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1]])
    >>> hit_at_k(scores, lesion, k=1)
    0.5
    """
    scores, lesion = _check_pair("scores", scores, lesion_patches)
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    return lesion_hit_rate(top_k_mask(scores, int(k)), lesion, y)


def hit_at_k_chance(lesion_patches: np.ndarray, k: int = 1, y: Any = None) -> float:
    """Chance level of :func:`hit_at_k`.

    Parameters
    ----------
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.
    k : int, default=1
        Number of random patches per study.
    y : array-like of shape (n,), default=None
        Labels; when given, the positives are ``y == 1`` (see the module notes).

    Returns
    -------
    float
        The expected hit rate of ``k`` random patches per study.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.array([[0, 1, 0, 0], [0, 0, 1, 1]], dtype=bool)
    >>> round(hit_at_k_chance(lesion, k=1), 6)   # (1/4 + 2/4) / 2
    0.375
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    return hit_rate_chance(int(k), lesion_patches, y)


def enrichment(scores: np.ndarray, lesion_patches: np.ndarray) -> np.ndarray:
    """Mean score on lesion patches divided by the mean score elsewhere, per study.

    1 means the scores ignore the lesion, above 1 that they favour it. The array is
    aligned with the studies so it can be indexed; studies without a lesion patch (or whose
    every patch is lesion) get NaN, so summarise with ``np.nanmedian``. A study whose scores
    are zero off the lesion and positive on it gets ``inf``.

    Parameters
    ----------
    scores : ndarray of shape (n, P)
        Patch scores, e.g. ``StudySet.attention``.
    lesion_patches : ndarray of shape (n, P), bool
        Patches that touch the lesion, from :func:`patch_lesion_masks`.

    Returns
    -------
    ndarray of shape (n,), float64
        Enrichment of each study; NaN where undefined.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    >>> scores = np.array([[0.4, 0.2, 0.2, 0.2], [0.25, 0.25, 0.25, 0.25]])
    >>> enrichment(scores, lesion).round(6)
    array([ 2., nan])
    >>> round(float(np.nanmedian(enrichment(scores, lesion))), 6)
    2.0
    """
    scores, lesion = _check_pair("scores", scores, lesion_patches)
    scores = scores.astype(np.float64)
    n_lesion = lesion.sum(axis=1)
    n_other = lesion.shape[1] - n_lesion
    with np.errstate(invalid="ignore", divide="ignore"):
        on = np.where(lesion, scores, 0.0).sum(axis=1) / n_lesion
        off = np.where(lesion, 0.0, scores).sum(axis=1) / n_other
        ratio = on / off
    ratio[(n_lesion == 0) | (n_other == 0)] = np.nan
    return ratio


# --------------------------------------------------------------------------------------
# Bytes
# --------------------------------------------------------------------------------------
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


def _to_pil(image: Any) -> Any:
    from PIL import Image

    arr = image if isinstance(image, np.ndarray) else None
    if arr is not None and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    # 8- and 16-bit grey arrays are stored as they are; everything else (paths, floats,
    # colour) is read the way the pipeline reads it, as 8-bit grey.
    if arr is not None and arr.ndim == 2 and arr.dtype in (np.uint8, np.uint16):
        return Image.fromarray(arr)
    from neural_sk.datasets import read_image

    return Image.fromarray(np.round(read_image(image) * 255.0).astype(np.uint8))


def image_nbytes(image: Any, format: str = "png") -> int:
    """Count the bytes of one image stored losslessly, as an archive of whole images would.

    Parameters
    ----------
    image : ndarray or path
        A uint8 or uint16 (H, W) array is stored as it is (8 or 16 bits); anything else (a
        path, floats, colour) is read with :func:`neural_sk.datasets.read_image` and stored
        as 8-bit grey, as the pipeline sees it.
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
    pil = _to_pil(image)
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


def patch_reduction(keep_mask: np.ndarray, *, per_study: bool = False) -> float | np.ndarray:
    """Share of image patches dropped: the paper's "reduction in image data size".

    This counts patches, not bytes; see :func:`kept_graph_bytes` and :func:`image_nbytes`
    for the byte-level picture.

    Parameters
    ----------
    keep_mask : ndarray of shape (n, P), bool
        Kept patches, e.g. ``StudySet.keep_mask``.
    per_study : bool, default=False
        Return one value per study instead of the overall share.

    Returns
    -------
    float or ndarray of shape (n,)
        Share of patches dropped, overall or per study.

    Examples
    --------
    >>> import numpy as np
    >>> keep = np.zeros((2, 100), dtype=bool); keep[0, :2] = True; keep[1, :4] = True
    >>> patch_reduction(keep)
    0.97
    >>> patch_reduction(keep, per_study=True)
    array([0.98, 0.96])
    """
    keep = np.asarray(keep_mask, dtype=bool)
    if keep.ndim != 2:
        raise ValueError(f"keep_mask must be 2-D (n, P), got shape {keep.shape}")
    kept = keep.mean(axis=1)
    return 1.0 - kept if per_study else float(1.0 - kept.mean())
