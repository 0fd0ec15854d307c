"""No silent fallback: a call whose report half is empty says so, and why (issue 16)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from neural_sk.report_graph import ReportGraphBuilder
from neural_sk.utils.validation import check_study_frame, warn_missing_report_column


def _warnings_of(func):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        func()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


@pytest.fixture(scope="module")
def builder():
    return ReportGraphBuilder().fit()


def test_all_empty_reports_warn_once(builder):
    messages = _warnings_of(lambda: builder.transform(["", None, "  "]))
    assert len(messages) == 1 and "all 3 reports are empty" in messages[0]


def test_unreadable_reports_warn_with_an_example(builder):
    messages = _warnings_of(lambda: builder.transform(["Pas de pneumonie.", "!!! ???"]))
    assert len(messages) == 1
    assert "no finding could be read in any of the 2" in messages[0]
    assert "Pas de pneumonie" in messages[0]


def test_mostly_unreadable_reports_warn_with_the_share(builder):
    reports = ["Right lower lobe pneumonia.", "Keine Auffälligkeiten.", "Sin hallazgos.", ""]
    messages = _warnings_of(lambda: builder.transform(reports))
    assert len(messages) == 1 and "2 of 3 non-empty reports (67%)" in messages[0]


def test_readable_reports_are_quiet(builder):
    assert _warnings_of(lambda: builder.transform(["No pneumothorax.", "Small effusion."])) == []


def test_a_misspelled_report_column_is_named():
    messages = _warnings_of(lambda: warn_missing_report_column(["image", "Report"], generated=True))
    assert len(messages) == 1 and "'Report'" in messages[0] and "Rename" in messages[0]
    # the report-free mode (a decoder writes the reports) is otherwise quiet
    assert _warnings_of(lambda: warn_missing_report_column(["image"], generated=True)) == []
    messages = _warnings_of(lambda: warn_missing_report_column(["image"], generated=False))
    assert len(messages) == 1 and "without a report" in messages[0]


def test_scorer_without_report_column_warns(tiny_pipeline_path):
    import joblib

    from neural_sk.datasets import make_synthetic_cxr

    scorer = joblib.load(tiny_pipeline_path)[0]
    X, _ = make_synthetic_cxr(2, image_size=64, random_state=1)
    messages = _warnings_of(lambda: scorer.transform(X.rename(columns={"report": "Report"})))
    assert any("'Report'" in m for m in messages)


def test_fit_on_no_studies_says_so():
    from neural_sk.attention import AttentionScorer

    empty = pd.DataFrame({"image": [], "report": []})
    with pytest.raises(ValueError, match="X has 0 studies; at least 1 needed"):
        AttentionScorer(vision_model="tiny-swin", image_size=64).fit(empty, np.array([]))
    assert len(check_study_frame(empty, ["image"])) == 0  # transform keeps n in = n out
