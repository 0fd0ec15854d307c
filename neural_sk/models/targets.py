"""What the stage-1 heads learn from: class indices of ``y``, per-study loss weights, and the
patches under each study's lesion mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_sample_weight

__all__ = ["encode_targets", "lesion_patches"]


def encode_targets(y, sample_weight, n: int, class_weight=None):
    """Classes, class indices and per-study loss weights of a fit.

    Parameters
    ----------
    y : array-like of shape (n,) or None
    sample_weight : array-like of shape (n,) or None
    n : int
        Number of studies.
    class_weight : None, "balanced" or dict
        Multiplies ``sample_weight``, as in scikit-learn.

    Returns
    -------
    classes : ndarray or None
    targets : Tensor [n] of int64 or None
    weights : Tensor [n] of float32 or None
        ``sample_weight`` x ``class_weight``; None when neither applies.
    """
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
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers, not all 0")
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
