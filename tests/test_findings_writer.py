"""Reports written from the findings head: read back as meant, placed and negated as learned."""

import numpy as np
import pytest

from neural_sk import AttentionScorer
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.models.conditioning import FINDINGS
from neural_sk.models.findings_writer import FindingsWriter
from neural_sk.text import extract_entities

GRID = (4, 4)


def _read(report: str) -> dict:
    """finding -> (status, anatomy) as the report reader reads it."""
    return {e.concept: (e.status, set(e.anatomy))
            for e in extract_entities([report])[0] if e.kind == "finding"}


def _one_hot_attention(n: int, patch: int, k: int = len(FINDINGS)) -> np.ndarray:
    """[n, 1, P, k]: one candidate map per finding, peaked at ``patch``."""
    attention = np.zeros((n, 1, GRID[0] * GRID[1], k))
    attention[:, :, patch, :] = 1.0
    return attention


def _training_writer() -> FindingsWriter:
    # Pneumonia is always placed, in the right lower lobe (peak bottom left of the image) or
    # the left lower lobe (bottom right); pneumothorax is stated absent in every report.
    right = ["Pneumonia in the right lower lobe. No pneumothorax."] * 4
    left = ["Left lower lobe pneumonia. No pneumothorax."] * 4
    attention = np.concatenate([_one_hot_attention(4, 12), _one_hot_attention(4, 15)])
    return FindingsWriter.from_training(FINDINGS, right + left, attention, GRID)


def test_every_finding_is_read_back_with_the_status_written():
    writer = FindingsWriter(findings=FINDINGS, negatives=FINDINGS, places=(),
                            peaks=np.zeros((1, 0, 2)), placement={})
    k = len(FINDINGS)
    attention = _one_hot_attention(k, 0)
    present, absent = writer.write(np.eye(k), attention, GRID), writer.write(np.zeros((k, k)),
                                                                            attention, GRID)
    for j, finding in enumerate(FINDINGS):
        assert _read(present[j])[finding][0] == "present", present[j]
        read = _read(absent[j])
        assert read.pop("no-finding")[0] == "present"
        assert read == {f: ("absent", read[f][1]) for f in FINDINGS}


def test_places_and_negatives_are_learned_from_training_reports():
    writer = _training_writer()
    assert writer.places == ("left-lower-lobe", "right-lower-lobe")
    assert writer.placed == ("pneumonia",) and writer.negatives == ("pneumothorax",)
    p = np.zeros((2, len(FINDINGS)))
    p[:, FINDINGS.index("pneumonia")] = 0.9
    attention = np.concatenate([_one_hot_attention(1, 8), _one_hot_attention(1, 11)])
    right, left = writer.write(p, attention, GRID)  # peaks one row above the training ones
    assert _read(right)["pneumonia"] == ("present", {"right-lower-lobe"})
    assert _read(left)["pneumonia"] == ("present", {"left-lower-lobe"})
    assert _read(right)["pneumothorax"][0] == "absent"
    # Nothing found: "no finding" and the pertinent negative, never a finding it did not see.
    (nothing,) = writer.write(np.zeros((1, len(FINDINGS))), attention[:1], GRID)
    assert _read(nothing) == {"no-finding": ("present", set()), "pneumothorax": ("absent", set())}


def test_a_finding_is_placed_by_the_map_that_localises_or_not_at_all():
    reports = ["Pneumonia in the right lower lobe."] * 4 + ["Left lower lobe pneumonia."] * 4
    # Map 0 peaks alike on both sides (nothing tells them apart); map 1 peaks on the side.
    blind = np.concatenate([_one_hot_attention(2, 12), _one_hot_attention(2, 15)] * 2)
    seeing = np.concatenate([_one_hot_attention(4, 12), _one_hot_attention(4, 15)])
    assert FindingsWriter.from_training(FINDINGS, reports, blind, GRID).placed == ()
    writer = FindingsWriter.from_training(FINDINGS, reports,
                                          np.concatenate([blind, seeing], 1), GRID)
    assert writer.placement["pneumonia"][0] == 1
    p = np.zeros((2, len(FINDINGS)))
    p[:, FINDINGS.index("pneumonia")] = 0.9
    right, left = writer.write(p, np.concatenate([blind, seeing], 1)[[0, 4]], GRID)
    assert _read(right)["pneumonia"] == ("present", {"right-lower-lobe"})
    assert _read(left)["pneumonia"] == ("present", {"left-lower-lobe"})
    unplaced = FindingsWriter.from_training(FINDINGS, reports, blind, GRID)
    assert _read(unplaced.write(p[:1], blind[:1], GRID)[0])["pneumonia"] == ("present", set())


def test_threshold_decides_what_is_present():
    writer = _training_writer()
    p = np.full((1, len(FINDINGS)), 0.6)
    attention = _one_hot_attention(1, 12)
    low = _read(writer.write(p, attention, GRID, threshold=0.5)[0])
    high = _read(writer.write(p, attention, GRID, threshold=0.7)[0])
    assert {f for f, (s, _) in low.items() if s == "present"} == set(FINDINGS)
    assert {f for f, (s, _) in high.items() if s == "present"} == {"no-finding"}


@pytest.mark.filterwarnings("ignore:the stage-1 classification head")
def test_scorer_writes_findings_reports_by_default_and_switches_without_refitting():
    X, y = make_synthetic_cxr(16, image_size=64, random_state=0)
    scorer = AttentionScorer(vision_model="tiny-swin", image_size=64, batch_size=8, epochs=2,
                             random_state=0).fit(X, y)
    written = scorer.generate_reports(X[:4])  # the default with the findings head
    decoded = scorer.set_params(report_decoder={"writer": "decoder"}).generate_reports(X[:4])
    assert len(written) == 4 and written != decoded
    scorer.set_params(report_decoder={"writer": "findings"})
    assert scorer.generate_reports(X[:4]) == written
    for report in written:  # every sentence states one finding the reader reads back
        sentences = [s for s in report.split(".") if s.strip()]
        assert sentences and all(_read(s + ".") for s in sentences), report
    out = scorer.set_params(report_source="generated").transform(X[:4])
    assert list(out.reports) == written
    # A model fitted before the writer existed: "auto" falls back to the decoder, and asking
    # for the writer says to refit.
    del scorer.model_.report_writer
    assert scorer.set_params(report_decoder=None).generate_reports(X[:4]) == decoded
    with pytest.raises(ValueError, match="refit"):
        scorer.set_params(report_decoder={"writer": "findings"}).generate_reports(X[:4])
    with pytest.raises(ValueError, match="conditioning"):
        AttentionScorer(vision_model="tiny-swin", image_size=64, epochs=0,
                        report_decoder={"writer": "findings", "conditioning": "head"}).fit(X, y)
