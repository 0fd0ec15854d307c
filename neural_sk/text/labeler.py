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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .entities import extract_entities
from .lexicon import OBSERVATIONS

__all__ = ["label_reports"]

_VALUE = {"present": 1.0, "uncertain": -1.0, "absent": 0.0}
_RANK = {1.0: 2, -1.0: 1, 0.0: 0}


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
