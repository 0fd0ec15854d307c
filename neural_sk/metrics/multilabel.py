"""Many findings at once: an AUC per label, and per finding whether the kept patches touch it.

:func:`per_label_auc` scores each column of a multi-label prediction on the studies whose
label is known (NaN, unknown, and -1, uncertain, are left out, as the losses leave them
out). :func:`per_finding_hit_rate` asks, for each localised finding, whether the kept patches
touch its mask in the studies that have it, beside the chance level of as many random
patches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .localization import hit_rate_chance, lesion_hit_rate

__all__ = ["per_finding_hit_rate", "per_label_auc"]


def _names(y: Any, k: int, labels: Sequence | None) -> list:
    if labels is not None:
        labels = list(labels)
        if len(labels) != k:
            raise ValueError(f"labels has {len(labels)} names for {k} columns")
        return labels
    columns = getattr(y, "columns", None)
    return list(columns) if columns is not None else list(range(k))


def per_label_auc(y_true: Any, y_score: Any, labels: Sequence | None = None) -> dict:
    """ROC AUC of each label, over the studies where that label is known.

    Parameters
    ----------
    y_true : DataFrame or array-like of shape (n, k)
        1, 0, or NaN / -1 (unknown / uncertain: left out of that label's AUC).
    y_score : array-like of shape (n, k)
        Scores or probabilities per label (``predict_proba`` of a multi-label fit).
    labels : sequence of k names, default=None
        Keys of the result; a DataFrame's columns, else ``0..k-1``.

    Returns
    -------
    dict
        Label -> AUC; NaN for a label whose known studies are all of one class. Their
        plain mean is scikit-learn's ``roc_auc_score(..., average="macro")`` when no label
        is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 0], [0, 1], [1, np.nan], [0, 0]])
    >>> s = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.5], [0.3, 0.1]])
    >>> per_label_auc(y, s, labels=["effusion", "cardiomegaly"])
    {'effusion': 1.0, 'cardiomegaly': 1.0}
    """
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(y_true, dtype=np.float64)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.ndim != 2 or truth.shape != score.shape:
        raise ValueError(f"y_true {truth.shape} and y_score {score.shape} must be the same "
                         "(n, k) shape")
    out = {}
    for j, name in enumerate(_names(y_true, truth.shape[1], labels)):
        known = np.isin(truth[:, j], (0.0, 1.0))
        column = truth[known, j]
        out[name] = (float(roc_auc_score(column, score[known, j]))
                     if 0 < column.sum() < column.size else float("nan"))
    return out


def per_finding_hit_rate(keep_mask: np.ndarray, lesion_patches: np.ndarray, y: Any = None,
                         labels: Sequence | None = None) -> dict:
    """Per finding: the share of the studies with it whose kept patches touch its mask.

    Parameters
    ----------
    keep_mask : ndarray of shape (n, P), bool
        Kept patches (``StudySet.keep_mask``).
    lesion_patches : ndarray of shape (n, k, P), bool
        The patches each finding's mask touches (:func:`patch_lesion_masks` of each
        finding's masks); all False where a study does not have the finding.
    y : array-like of shape (n, k), default=None
        Labels; when given, the studies with a finding are those with ``y == 1`` (a positive
        without mask patches counts as a miss).
    labels : sequence of k names, default=None
        Keys of the result; ``y``'s columns when it is a DataFrame, else ``0..k-1``.

    Returns
    -------
    dict
        Finding -> ``{"hit_rate", "chance", "n_positive"}``; the chance is that of as many
        random patches (:func:`hit_rate_chance`). NaN rates for a finding no study has.

    Examples
    --------
    >>> import numpy as np
    >>> lesion = np.zeros((2, 2, 4), dtype=bool)
    >>> lesion[0, 0, 0] = lesion[1, 0, 3] = True     # finding 0 in both studies
    >>> lesion[1, 1, 1] = True                       # finding 1 in study 1
    >>> keep = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    >>> out = per_finding_hit_rate(keep, lesion, labels=["effusion", "pneumonia"])
    >>> out["effusion"]["hit_rate"], out["pneumonia"]["hit_rate"], round(out["pneumonia"]["chance"], 3)
    (0.5, 1.0, 0.25)
    """
    lesion = np.asarray(lesion_patches, dtype=bool)
    keep = np.asarray(keep_mask, dtype=bool)
    if lesion.ndim != 3 or keep.shape != (lesion.shape[0], lesion.shape[2]):
        raise ValueError(f"lesion_patches must be (n, k, P) and keep_mask (n, P); got "
                         f"{lesion.shape} and {keep.shape}")
    truth = None if y is None else np.asarray(y, dtype=np.float64)
    if truth is not None and truth.shape != lesion.shape[:2]:
        raise ValueError(f"y has shape {truth.shape}; expected {lesion.shape[:2]}")
    out = {}
    for j, name in enumerate(_names(y, lesion.shape[1], labels)):
        col = None if truth is None else truth[:, j]
        positive = lesion[:, j].any(1) if col is None else col == 1
        out[name] = {"hit_rate": lesion_hit_rate(keep, lesion[:, j], col),
                     "chance": hit_rate_chance(keep, lesion[:, j], col),
                     "n_positive": int(positive.sum())}
    return out
