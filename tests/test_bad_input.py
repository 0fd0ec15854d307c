"""Bad input, table-driven: a clear error naming the row (and path), or a valid result with the
reason recorded where a step offers ``on_error="skip"``; never a study silently lost."""

import copy
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import joblib
import numpy as np
import pytest
from PIL import Image

from neural_sk.compress import compress
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.report_graph import ReportGraphBuilder

N = 12
ROWS = [10, 11, 12, 13]  # the row labels of X; the bad study is always row 12
BAD = 12


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_path):
    return joblib.load(tiny_pipeline_path)


@pytest.fixture(scope="module")
def skip_scorer(pipe):
    scorer = copy.copy(pipe[0])
    return scorer.set_params(on_error="skip")


@pytest.fixture(scope="module")
def clean():
    X, _ = make_synthetic_cxr(4, image_size=64, random_state=1)
    X.index = ROWS
    return X.astype({"image": object, "report": object})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad and odd image files, written once."""
    d = tmp_path_factory.mktemp("bad_images")
    good = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(good).save(d / "good.png")
    raw = (d / "good.png").read_bytes()
    (d / "truncated.png").write_bytes(raw[: len(raw) // 2])
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20)
    (d / "empty.png").write_bytes(b"")
    Image.fromarray((good.astype(np.uint16) * 257)).save(d / "sixteen_bit.png")
    rgba = np.dstack([good, good, good, np.full_like(good, 128)])
    Image.fromarray(rgba, mode="RGBA").save(d / "rgba.png")
    (d / "a_folder.png").mkdir()
    return d


@dataclass
class Case:
    name: str
    image: Callable[[Any], Any] | None = None  # files folder -> the bad study's image
    report: Any = "unchanged"
    error: str | None = None  # regex of the reason; None: a valid study
    path: str | None = None  # a file name the error must name
    skip_bug: str | None = None  # the scorer's skip mode does not record it (a known bug)


CASES = [
    Case("missing file", image=lambda d: str(d / "absent.png"), error="file not found",
         path="absent.png"),
    Case("corrupt file", image=lambda d: str(d / "corrupt.png"), error="corrupt",
         path="corrupt.png"),
    Case("truncated file", image=lambda d: str(d / "truncated.png"), error="truncated",
         path="truncated.png"),
    Case("zero-byte file", image=lambda d: str(d / "empty.png"), error="not an image format",
         path="empty.png"),
    Case("a folder", image=lambda d: str(d / "a_folder.png"), error="is a directory",
         path="a_folder.png"),
    Case("zero-size array", image=lambda d: np.zeros((0, 0), np.uint8), error="empty"),
    Case("NaN in the image array", image=lambda d: np.full((64, 64), np.nan, np.float32),
         error="non-finite"),
    Case("no image", image=lambda d: None, error="must be a path"),
    Case("constant image", image=lambda d: np.full((64, 64), 128, np.uint8)),
    Case("huge image", image=lambda d: np.full((6000, 6000), 77, np.uint8)),
    Case("16-bit PNG", image=lambda d: str(d / "sixteen_bit.png")),
    Case("RGBA PNG", image=lambda d: str(d / "rgba.png")),
    Case("float image outside [0, 1]", image=lambda d: np.linspace(-5, 300, 64 * 64
                                                                  ).reshape(64, 64)),
    Case("empty report", report=""),
    Case("None report", report=None),
    Case("NaN report", report=float("nan")),
    Case("report with no findings", report="Lorem ipsum dolor sit amet."),
    Case("report that is not text", report=42, error="report of row 12 is int, not str"),
]


def _bad_frame(clean, files, case):
    X = clean.copy()
    if case.image is not None:
        X.at[BAD, "image"] = case.image(files)
    if case.report != "unchanged":
        X.at[BAD, "report"] = case.report
    return X


def _check_message(message, case):
    assert re.search(r"row 12\b", message), message
    assert re.search(case.error, message), message
    if case.path:
        assert case.path in message, message


def _check_valid(studies):
    assert len(studies) == len(ROWS)
    assert np.isfinite(studies.attention).all()
    np.testing.assert_allclose(studies.attention.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_scorer_names_the_row_or_scores_the_study(pipe, clean, files, case):
    X = _bad_frame(clean, files, case)
    if case.error:
        with pytest.raises((ValueError, TypeError, OSError)) as err:
            pipe[0].transform(X)
        _check_message(str(err.value), case)
    else:
        _check_valid(pipe[0].transform(X))


def _skip_params():
    return [pytest.param(case, id=case.name, marks=[pytest.mark.xfail(
        strict=True, reason=case.skip_bug)] if case.skip_bug else []) for case in CASES]


@pytest.mark.parametrize("case", _skip_params())
def test_scorer_skip_mode_records_the_reason(skip_scorer, clean, files, case):
    studies = skip_scorer.transform(_bad_frame(clean, files, case))
    _check_valid(studies)
    errors = studies.errors
    assert [e is None for i, e in enumerate(errors) if ROWS[i] != BAD] == [True] * 3
    if case.error:
        _check_message(errors[ROWS.index(BAD)], case)
        np.testing.assert_allclose(studies.attention[ROWS.index(BAD)], 1 / 16)
    else:
        assert errors[ROWS.index(BAD)] is None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_whole_pipeline_keeps_n_in_equal_n_out(pipe, clean, files, case):
    X = _bad_frame(clean, files, case)
    if case.error:
        with pytest.raises((ValueError, TypeError, OSError)) as err:
            pipe.predict(X)
        _check_message(str(err.value), case)
        return
    studies = pipe[:-1].transform(X)
    for field in ("visual_graphs", "report_graphs", "graphs"):
        assert len(getattr(studies, field)) == len(ROWS)
    assert len(pipe[-1].predict(studies)) == len(ROWS)
    if case.report == "Lorem ipsum dolor sit amet.":
        assert studies.report_graphs[ROWS.index(BAD)].num_nodes == 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_compress_accounts_for_every_study(pipe, clean, files, case, tmp_path):
    X = _bad_frame(clean, files, case)
    manifest = compress(X, pipe, tmp_path / "out", batch_size=4, verbose=0)
    kept = [i for s in manifest["shards"] for i in s["ids"]]
    failed = manifest["failed"]
    assert sorted(kept + [f["id"] for f in failed]) == sorted(X["study_id"])
    if case.error:
        assert [f["row"] for f in failed] == [ROWS.index(BAD)]
        assert failed[0]["id"] == X.at[BAD, "study_id"]
        assert re.search(case.error, failed[0]["reason"]), failed[0]["reason"]
        if case.path:
            assert case.path in failed[0]["image"]
    else:
        assert failed == [] and len(kept) == len(ROWS)


@pytest.mark.parametrize("missing", ["image", "report"])
def test_a_missing_column_is_named(pipe, clean, missing, tmp_path):
    X = clean.drop(columns=[missing])
    with pytest.raises(ValueError, match=rf"missing column\(s\) \['{missing}'\]"):
        compress(X, pipe, tmp_path / "out", verbose=0)
    if missing == "image":
        with pytest.raises(ValueError, match=r"missing column\(s\) \['image'\]"):
            pipe.predict(X)
    else:  # the scorer writes the reports it is not given: still one prediction per study
        assert len(pipe.predict(X)) == len(ROWS)


def test_a_report_longer_than_the_decoder_warns_at_fit(clean):
    from neural_sk import AttentionScorer

    X = clean.copy()
    X.at[BAD, "report"] = "consolidation " * 300
    with pytest.warns(UserWarning, match=r"truncated \(rows \[12\]\)"):
        AttentionScorer(vision_model="tiny-swin", image_size=64, epochs=0,
                        max_report_tokens=64, random_state=0).fit(X, [0, 1, 0, 1])


def test_a_report_longer_than_the_decoder_warns_when_scored(pipe, clean):
    scorer = copy.copy(pipe[0]).set_params(method="cross_attention")
    X = clean.copy()
    X.at[BAD, "report"] = "consolidation " * 300
    with pytest.warns(UserWarning, match="truncated"):
        studies = scorer.transform(X)
    _check_valid(studies)


def test_non_finite_attention_is_named_by_the_pruner(pipe, clean):
    studies = pipe[0].transform(clean)
    attention = studies.attention.copy()
    attention[ROWS.index(BAD), 3] = np.nan
    study = studies.ids[ROWS.index(BAD)]
    with pytest.raises(ValueError, match=rf"study '{study}' \(row 2\) has non-finite"):
        pipe[1].transform(studies.replace(attention=attention))


def test_non_finite_patch_features_are_named_by_the_pruner(pipe, clean):
    studies = pipe[0].transform(clean)
    features = studies.patch_features.copy()
    features[ROWS.index(BAD)] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        pipe[1].transform(studies.replace(patch_features=features))


def test_non_finite_graph_features_are_named_by_the_classifier(pipe, clean):
    studies = pipe[:-1].transform(clean)
    graphs = [g.clone() for g in studies.graphs]
    graphs[ROWS.index(BAD)].x[0, 0] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="row 2|study"):
            pipe[-1].predict_proba(studies.replace(graphs=graphs))


@pytest.mark.parametrize("report, expected", [
    (None, "empty"), ("", "empty"), ("   ", "empty"), ("No acute findings.", "valid"),
    ("Lorem ipsum.", "empty"), ("x" * 20000, "valid"), (42, "error"), (b"bytes", "error"),
])
def test_report_graph_builder_takes_any_report(report, expected):
    builder = ReportGraphBuilder().fit()
    reports = ["Right lower lobe consolidation.", report, "No pneumothorax."]
    if expected == "error":
        with pytest.raises(TypeError, match="report of row 1 is"):
            builder.transform(reports)
        return
    graphs = builder.transform(reports).report_graphs
    assert len(graphs) == 3
    assert graphs[1].x.shape[1] == builder.n_features_out_
    if expected == "empty":
        assert graphs[1].num_nodes == 0
