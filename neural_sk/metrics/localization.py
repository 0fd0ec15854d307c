"""Localisation: do the kept (or top-scored) patches touch the lesion, beside chance?

:func:`lesion_hit_rate`, :func:`top_fraction_hit_rate`, :func:`hit_at_k` and
:func:`enrichment` say whether the kept (or top-scored) patches touch the lesion, and
:func:`hit_rate_chance` and friends give the level that the same number of *random* patches
would reach. A hit rate means nothing without its chance level beside it.
:func:`patch_reduction` is the paper's "reduction" figure (share of patches dropped), which
is *not* a byte count. The lesion patches come from
:func:`neural_sk.patches.patch_lesion_masks`.

Conventions
-----------
Patches are numbered row-major over the grid ``(h, w)``: patch ``p`` sits at row ``p // w``
and column ``p % w``. A *positive* study is one with at least one lesion patch, or, when a
label vector ``y`` is given, one with ``y == 1`` (a positive study without any lesion patch
then counts as a miss, never as a hit).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import gammaln

from ..graphs import top_k_mask

__all__ = [
    "lesion_hit_rate",
    "hit_rate_chance",
    "top_fraction_hit_rate",
    "top_fraction_chance",
    "hit_at_k",
    "hit_at_k_chance",
    "enrichment",
    "patch_reduction",
]

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
