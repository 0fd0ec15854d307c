"""Input checks that name the bad row, the bad column or the bad parameter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


def check_study_frame(X: object, required: Sequence[str], *, name: str = "X") -> pd.DataFrame:
    """Check that ``X`` is a DataFrame with the ``required`` columns and return it.

    A ``dict`` of equal-length columns is accepted too.

    Examples
    --------
    >>> check_study_frame({"image": [1], "report": ["ok"]}, ["image"]).shape
    (1, 2)
    """
    if isinstance(X, dict):
        X = pd.DataFrame(X)
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{name} must be a pandas DataFrame with columns {list(required)}, "
            f"got {type(X).__name__}"
        )
    missing = [c for c in required if c not in X.columns]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; it has {list(X.columns)}"
        )
    return X


def check_reports(reports: Iterable[object], *, allow_empty: bool = False,
                  index: Sequence[object] | None = None) -> list[str]:
    """Return the reports as a list of str; a non-string or empty report raises naming its row.

    ``None`` and NaN count as empty. With ``allow_empty`` they become ``""``.

    Examples
    --------
    >>> check_reports(["No acute findings.", None], allow_empty=True)
    ['No acute findings.', '']
    """
    out = []
    for i, report in enumerate(reports):
        row = i if index is None else index[i]
        if report is None or (isinstance(report, float) and np.isnan(report)):
            report = ""
        if not isinstance(report, str):
            raise TypeError(f"report of row {row!r} is {type(report).__name__}, not str")
        if not report.strip() and not allow_empty:
            raise ValueError(f"report of row {row!r} is empty")
        out.append(report)
    return out
