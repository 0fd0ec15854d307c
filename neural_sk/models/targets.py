"""What the heads learn from: class indices of ``y`` (or multi-label targets with their mask),
per-study loss weights, and the patches under each study's lesion mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight

__all__ = ["UNCERTAIN_POLICIES", "encode_multilabel", "encode_targets", "is_multilabel",
           "label_names", "lesion_patches", "resolve_label"]

# What an uncertain mention (-1) becomes: CheXpert's U-Ones, U-Zeros, or left out of the loss.
UNCERTAIN_POLICIES = {"ones": 1.0, "zeros": 0.0, "ignore": np.nan}


def is_multilabel(y) -> bool:
    """True for a 2-D ``y`` (a DataFrame of observations or an (n, k) array, k > 1).

    An (n, 1) array is a column vector of one label, as in scikit-learn; a DataFrame is
    always read column by column, so one observation read from reports stays multi-label.
    """
    if y is None:
        return False
    if isinstance(y, pd.DataFrame):
        return True
    shape = np.shape(y)
    return len(shape) == 2 and shape[1] > 1


def _sample_weights(sample_weight, n: int) -> np.ndarray:
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers, not all 0")
    return w


def _balanced(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Per entry, n_known / (2 n_class) of its label's known entries (scikit-learn's rule)."""
    pos = (values == 1) & known
    n_known, n_pos = known.sum(0), pos.sum(0)
    n_neg = n_known - n_pos
    w_pos = np.where(n_pos > 0, n_known / (2.0 * np.maximum(n_pos, 1)), 0.0)
    w_neg = np.where(n_neg > 0, n_known / (2.0 * np.maximum(n_neg, 1)), 0.0)
    return np.where(pos, w_pos, w_neg) * known


def encode_multilabel(y, sample_weight, n: int, class_weight=None, uncertain: str = "ignore"):
    """Names, targets and per-study weights of a multi-label fit (a 2-D ``y``).

    Parameters
    ----------
    y : DataFrame or array-like of shape (n, k)
        1 present, 0 absent, NaN unknown (never in the loss), -1 uncertain (see
        ``uncertain``); ``labels_from_reports(...)[0].where(mask)`` is such a frame.
    sample_weight : array-like of shape (n,) or None
    n : int
        Number of studies.
    class_weight : None or "balanced"
        "balanced" weighs each label's positives and negatives by ``n_known / (2 n_class)``.
    uncertain : {"ignore", "ones", "zeros"}
        What -1 becomes: left out of the loss, 1 (U-Ones) or 0 (U-Zeros).

    Returns
    -------
    names : ndarray of shape (k,)
        The DataFrame's columns, else ``0..k-1``.
    targets : Tensor [n, 2, k] of float32
        ``[:, 0]`` the 0/1 targets, ``[:, 1]`` each entry's weight in the loss (0 where
        unknown; the class weight where known).
    weights : Tensor [n] of float32 or None
        ``sample_weight``; None when not given.

    Examples
    --------
    >>> import numpy as np
    >>> names, t, w = encode_multilabel(np.array([[1, np.nan], [0, -1], [1, 0]]), None, 3)
    >>> t[:, 0].tolist(), t[:, 1].tolist(), w
    ([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]], None)
    """
    names = label_names(y)
    try:
        values = np.array(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"multi-label y must hold 1, 0, -1 or NaN: {exc}") from None
    if values.ndim != 2 or values.shape[0] != n:
        raise ValueError(f"X has {n} studies but y has shape {values.shape}")
    bad = ~(np.isnan(values) | np.isin(values, (0.0, 1.0, -1.0)))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"multi-label y must hold 1, 0, -1 (uncertain) or NaN (unknown); "
                         f"row {i}, label {names[j]!r} holds {values[i, j]!r}")
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {sorted(UNCERTAIN_POLICIES)}, "
                         f"got {uncertain!r}")
    values[values == -1] = UNCERTAIN_POLICIES[uncertain]
    known = ~np.isnan(values)
    if isinstance(class_weight, dict):
        raise ValueError("class_weight as a dict applies to 1-D y; multi-label y takes "
                         "None or 'balanced'")
    entry = _balanced(values, known) if class_weight == "balanced" else known.astype(float)
    targets = torch.as_tensor(np.stack([np.nan_to_num(values), entry], axis=1),
                              dtype=torch.float32)
    weights = (None if sample_weight is None
               else torch.as_tensor(_sample_weights(sample_weight, n), dtype=torch.float32))
    return names, targets, weights


def label_names(y):
    """The names of a multi-label ``y``'s labels (a DataFrame's columns, else 0..k-1); None
    for a 1-D ``y``."""
    if not is_multilabel(y):
        return None
    return (np.asarray(y.columns, dtype=object) if isinstance(y, pd.DataFrame)
            else np.arange(np.shape(y)[1]))


def encode_targets(y, sample_weight, n: int, class_weight=None, uncertain: str = "ignore"):
    """Classes, class indices and per-study loss weights of a fit.

    Parameters
    ----------
    y : array-like of shape (n,), multi-label (n, k) or None
        A 2-D ``y`` (see :func:`is_multilabel`) goes to :func:`encode_multilabel`.
    sample_weight : array-like of shape (n,) or None
    n : int
        Number of studies.
    class_weight : None, "balanced" or dict
        Multiplies ``sample_weight``, as in scikit-learn.
    uncertain : {"ignore", "ones", "zeros"}
        Multi-label only: what -1 becomes.

    Returns
    -------
    classes : ndarray or None
        The labels of a 1-D ``y``; ``0..k-1`` for a multi-label one (as scikit-learn's
        ``MLPClassifier``).
    targets : Tensor [n] of int64, Tensor [n, 2, k] of float32 (multi-label) or None
    weights : Tensor [n] of float32 or None
        ``sample_weight`` x ``class_weight``; None when neither applies. In the multi-label
        case the class weights are in ``targets[:, 1]``.
    """
    if is_multilabel(y):
        names, targets, weights = encode_multilabel(y, sample_weight, n, class_weight, uncertain)
        return np.arange(len(names)), targets, weights
    classes = targets = None
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"X has {n} studies but y has {len(y)} labels")
        encoder = LabelEncoder().fit(y)
        classes = encoder.classes_
        if len(classes) < 2:
            raise ValueError(f"y has one class ({classes[0]!r}); need at least two")
        targets = torch.as_tensor(encoder.transform(y), dtype=torch.long)
    if sample_weight is None and (class_weight is None or y is None):
        return classes, targets, None
    w = _sample_weights(sample_weight, n)
    if class_weight is not None and y is not None:
        w = w * compute_sample_weight(class_weight, y)
    return classes, targets, torch.as_tensor(w, dtype=torch.float32)


def lesion_patches(X: pd.DataFrame, grid_shape: tuple[int, int]) -> torch.Tensor | None:
    """[n, P] bool: the patches each study's ``lesion`` mask touches (None without the column)."""
    if "lesion" not in X.columns:
        return None
    from ..patches import patch_lesion_masks

    h, w = grid_shape
    out = torch.zeros((len(X), h * w), dtype=torch.bool)
    for i, mask in enumerate(X["lesion"]):
        if mask is not None and np.asarray(mask).any():
            out[i] = torch.as_tensor(patch_lesion_masks([np.asarray(mask, bool)], (h, w))[0])
    return out


def resolve_label(label, names, param: str = "attention_label"):
    """``"max"``/``"mean"`` as they are, a label name or column index as the column index.

    Examples
    --------
    >>> resolve_label("effusion", np.array(["pneumonia", "effusion"], dtype=object))
    1
    """
    if isinstance(label, str) and label in ("max", "mean"):
        return label
    names = list(names)
    if label in names:
        return names.index(label)
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) \
            and 0 <= label < len(names):
        return int(label)
    raise ValueError(f"{param}={label!r} is not 'max', 'mean' or one of the labels seen in "
                     f"fit: {names}")
