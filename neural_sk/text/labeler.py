"""CheXpert-style labels (1 / 0 / -1 / NaN for 14 observations) from report text.

Aggregation rules (per report, over every mention of an observation that
:func:`neural_sk.text.extract_entities` finds in the sections read):

- ``1`` when at least one mention is present; else ``-1`` when at least one is uncertain;
  else ``0`` when every mention is absent; ``NaN`` when the observation is not mentioned.
  (Present beats uncertain beats absent: "no effusion on the left; small right effusion"
  is 1, "no consolidation; pneumonia cannot be excluded" gives pneumonia -1.)
- ``no-finding`` is derived, never read: ``1`` when no observation other than
  ``support-devices`` is present or uncertain (explicit normal statements, negated
  findings and silence alike), else ``0``. The CheXpert labeler leaves it blank in the
  second case; 0 says the same thing in this column's own terms.
- An empty or missing report has every observation NaN and ``no-finding`` 1.

:func:`labels_from_reports` turns these labels into training targets: a 0/1 indicator per
observation and a mask of the entries the report settles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .entities import extract_entities
from .lexicon import OBSERVATIONS, normalize_observation

__all__ = ["label_reports", "labels_from_reports"]

_VALUE = {"present": 1.0, "uncertain": -1.0, "absent": 0.0}
_RANK = {1.0: 2, -1.0: 1, 0.0: 0}
_UNCERTAIN_POLICIES = ("ones", "zeros", "ignore")


def label_reports(
    reports: Sequence[str] | pd.Series,
    *,
    sections: str | Sequence[str] = "all",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Label reports with the 14 CheXpert observations.

    Parameters
    ----------
    reports : sequence of str, pandas Series or DataFrame with a ``report`` column
        Report texts; ``None``/NaN count as empty. A Series (or frame) keeps its index.
    sections : "all", section name or sequence of names, default="all"
        Sections to read, as in :func:`neural_sk.text.extract_entities`.
    batch_size : int, default=256
        Texts per spaCy batch.

    Returns
    -------
    pandas.DataFrame of shape (n_reports, 14)
        Columns :data:`neural_sk.text.OBSERVATIONS`; values 1 (present), 0 (absent),
        -1 (uncertain) or NaN (not mentioned), float dtype. One row per report.

    Examples
    --------
    >>> labels = label_reports(["Right lower lobe pneumonia. No effusion.",
    ...                         "Pneumonia cannot be excluded.",
    ...                         "No acute cardiopulmonary abnormality."])
    >>> labels[["pneumonia", "pleural-effusion", "no-finding"]]
       pneumonia  pleural-effusion  no-finding
    0        1.0               0.0         0.0
    1       -1.0               NaN         0.0
    2        NaN               NaN         1.0
    """
    if isinstance(reports, pd.DataFrame):
        if "report" not in reports.columns:
            raise ValueError(
                f"reports is a DataFrame without a 'report' column; it has {list(reports.columns)}"
            )
        reports = reports["report"]
    if isinstance(reports, str):
        raise TypeError("reports must be a sequence of str, not one str; wrap it in a list")
    index = reports.index if isinstance(reports, pd.Series) else None
    reports = list(reports)
    entities = extract_entities(reports, sections=sections, batch_size=batch_size)
    column = {name: j for j, name in enumerate(OBSERVATIONS)}
    values = np.full((len(reports), len(OBSERVATIONS)), np.nan)
    for i, mentions in enumerate(entities):
        row = values[i]
        for e in mentions:
            if e.kind != "finding" or e.concept == "no-finding":
                continue
            j = column[e.concept]
            value = _VALUE[e.status]
            if np.isnan(row[j]) or _RANK[value] > _RANK[row[j]]:
                row[j] = value
    others = [column[name] for name in OBSERVATIONS if name not in ("no-finding",
                                                                    "support-devices")]
    positive = np.isin(values[:, others], (1.0, -1.0)).any(axis=1)
    values[:, column["no-finding"]] = np.where(positive, 0.0, 1.0)
    return pd.DataFrame(values, columns=list(OBSERVATIONS), index=index)


def labels_from_reports(
    reports: Sequence[str] | pd.Series,
    observations: str | Sequence[str] | None = None,
    uncertain: str = "ignore",
    *,
    sections: str | Sequence[str] = "all",
    batch_size: int = 256,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training targets read from reports, with the mask of the entries they settle.

    For users without labels: the reports' own findings become multi-label targets, the way
    MIMIC-CXR's and CheXpert's labels are made. A present finding is 1 and an absent one 0;
    one the report does not mention is unknown, and an uncertain one ("possible effusion")
    follows ``uncertain``.

    Parameters
    ----------
    reports : sequence of str, pandas Series or DataFrame with a ``report`` column
        Report texts; ``None``/NaN count as empty. A Series (or frame) keeps its index.
    observations : str or sequence of str, default=None
        The observations to return, in this order, any spelling of the
        :data:`~neural_sk.text.OBSERVATIONS` (``"pleural-effusion"``, ``"Pleural Effusion"``).
        None gives all 14.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        An uncertain mention is masked out (``"ignore"``), counted positive (``"ones"``, the
        CheXpert U-Ones policy) or negative (``"zeros"``, U-Zeros).
    sections : "all", section name or sequence of names, default="all"
        Sections to read, as in :func:`neural_sk.text.extract_entities`.
    batch_size : int, default=256
        Texts per spaCy batch.

    Returns
    -------
    y : pandas.DataFrame of int64, shape (n_reports, n_observations)
        1 or 0 per report and observation; 0 where ``mask`` is False. Columns are the
        observations, the index that of ``reports``.
    mask : pandas.DataFrame of bool, same shape
        True where the target is known: mentioned, and not uncertain under ``"ignore"``.
        ``no-finding`` is always known (see :func:`label_reports`). ``y.where(mask)`` gives
        the targets with NaN for the unknown ones.

    See Also
    --------
    label_reports : The raw labels (1, 0, -1, NaN) these targets come from.

    Examples
    --------
    >>> y, mask = labels_from_reports(
    ...     ["Right lower lobe pneumonia. No pleural effusion.",
    ...      "Possible small left pleural effusion.",
    ...      "Heart size is normal."],
    ...     observations=["pneumonia", "Pleural Effusion"])
    >>> y
       pneumonia  pleural-effusion
    0          1                 0
    1          0                 0
    2          0                 0
    >>> mask
       pneumonia  pleural-effusion
    0       True              True
    1      False             False
    2      False             False
    >>> labels_from_reports(["Possible small left pleural effusion."], "pleural-effusion",
    ...                     uncertain="ones")[0].to_numpy().tolist()
    [[1]]
    """
    if uncertain not in _UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {list(_UNCERTAIN_POLICIES)}, "
                         f"got {uncertain!r}")
    names = _observation_names(observations)
    labels = label_reports(reports, sections=sections, batch_size=batch_size)[names]
    values = labels.to_numpy()
    known = ~np.isnan(values)
    hedged = values == -1.0
    if uncertain == "ignore":
        known &= ~hedged
    positive = (values == 1.0) | (hedged & (uncertain == "ones"))
    y = pd.DataFrame((positive & known).astype(np.int64), index=labels.index, columns=names)
    return y, pd.DataFrame(known, index=labels.index, columns=names)


def _observation_names(observations: str | Sequence[str] | None) -> list[str]:
    """The asked observations in :data:`OBSERVATIONS` spelling; unknown or repeated ones raise."""
    if observations is None:
        return list(OBSERVATIONS)
    asked = [observations] if isinstance(observations, str) else list(observations)
    if not asked:
        raise ValueError("observations must be None or a non-empty list of observation names")
    names = [normalize_observation(name) for name in asked]
    unknown = [a for a, name in zip(asked, names) if name not in OBSERVATIONS]
    if unknown:
        raise ValueError(f"observations {unknown} are not among the observations the reader "
                         f"knows: {list(OBSERVATIONS)}")
    if len(set(names)) < len(names):
        raise ValueError(f"observations has repeated names: {asked}")
    return names
