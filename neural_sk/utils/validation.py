"""Input checks that name the bad row, the bad column or the bad parameter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from numbers import Integral

import warnings

import numpy as np
import pandas as pd


def check_study_frame(X: object, required: Sequence[str], *, name: str = "X",
                      min_rows: int = 0) -> pd.DataFrame:
    """Check that ``X`` is a DataFrame with the ``required`` columns and return it.

    A ``dict`` of equal-length columns is accepted too. ``min_rows`` is the fewest studies
    the caller can work with (``fit`` needs one).

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
    if len(X) < min_rows:
        raise ValueError(f"{name} has {len(X)} studies; at least {min_rows} needed")
    return X


_REPORT_LIKE = ("report", "reports", "report_text", "text", "findings", "impression")


def warn_missing_report_column(columns: Iterable[object], *, generated: bool) -> None:
    """Warn that a study frame has no ``report`` column, when that silently changes results.

    Without the column a scorer with a decoder writes the reports itself (the report-free
    mode: quiet, unless a column looks like a misspelled ``report``), and one without a
    decoder scores every study with no report, so the report half of every graph is empty.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_missing_report_column(["image", "Report"], generated=True)
    >>> print(caught[0].message)
    X has no 'report' column but has 'Report'; reports are written from the images by the fitted decoder instead. Rename the column to 'report' to use the given reports.
    """
    near = [c for c in columns if str(c).strip().lower() in _REPORT_LIKE and c != "report"]
    if generated and not near:
        return
    hint = f" but has {near[0]!r}" if near else ""
    what = ("reports are written from the images by the fitted decoder instead" if generated
            else "every study is scored without a report, so the report graphs will be empty")
    fix = " Rename the column to 'report' to use the given reports." if near else ""
    warnings.warn(f"X has no 'report' column{hint}; {what}.{fix}", UserWarning, stacklevel=3)


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


def check_index(key: object, n: int, *, what: str = "items") -> np.ndarray:
    """Positions selected by ``key`` in a sequence of ``n``: int, slice, int array or mask.

    Parameters
    ----------
    key : int, slice, array-like of int or bool mask of shape (n,)
    n : int
        Length of the sequence.
    what : str, default="items"
        What the sequence holds, for error messages ("studies", "graphs").

    Returns
    -------
    ndarray of int64
        Non-negative positions, in the order ``key`` gives them.

    Examples
    --------
    >>> check_index(-1, 4).tolist(), check_index(slice(1, 3), 4).tolist()
    ([3], [1, 2])
    >>> check_index(np.array([True, False, True, False]), 4).tolist()
    [0, 2]
    """
    if isinstance(key, slice):
        return np.arange(n)[key]
    if isinstance(key, (int, np.integer)):
        if not -n <= key < n:
            raise IndexError(f"{key} is out of range for {n} {what}")
        return np.array([key % n])
    key = np.asarray(key)
    if key.dtype == bool:
        if key.shape != (n,):
            raise IndexError(f"boolean mask of shape {key.shape} for {n} {what}")
        return np.flatnonzero(key)
    if key.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(key.dtype, np.integer):
        raise IndexError(f"indices into {what} must be integers, a slice or a boolean mask, "
                         f"got {key.dtype}")
    index = key.ravel().astype(np.int64)
    if index.min() < -n or index.max() >= n:
        raise IndexError(f"index out of range for {n} {what}")
    return index % n


def check_seed(random_state: object) -> int:
    """An int seed for local generators, from an int, a RandomState, a Generator or None.

    Touches no global generator: None draws fresh entropy from the operating system, a
    RandomState or Generator instance gives one draw (as scikit-learn's estimators use it).

    Examples
    --------
    >>> check_seed(7)
    7
    >>> check_seed(np.random.RandomState(0)) == check_seed(np.random.RandomState(0))
    True
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        if int(random_state) < 0:
            raise ValueError(f"random_state must be a non-negative int, got {random_state!r}")
        return int(random_state)
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be an int, a RandomState, a Generator or None, "
                     f"got {random_state!r}")
