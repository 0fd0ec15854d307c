"""Generated reports: the decoder's options, its conditioning, and no repeated sentences."""

import pytest
import torch

from neural_sk import AttentionScorer
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.metrics import clinical_efficacy
from neural_sk.models.conditioning import FINDINGS, report_findings
from neural_sk.models.generation import DECODER_DEFAULTS, NoRepeatSentence, check_decoder_options

TINY = dict(vision_model="tiny-swin", image_size=64, batch_size=8, random_state=0)
# A report that states one sentence three times: a decoder fitted on it learns to repeat.
REPEATING = "FINDINGS: No consolidation. No consolidation. No consolidation."


@pytest.fixture(scope="module")
def data():
    return make_synthetic_cxr(8, image_size=64, random_state=0)


@pytest.fixture(scope="module")
def repeater(data):
    X, y = data
    X = X.assign(report=REPEATING)
    # every epoch trains (no validation split): the decoder must have learned to repeat
    return AttentionScorer(**TINY, epochs=12, learning_rate=3e-3,
                           validation_fraction=None).fit(X, y), X


def _repeats(report: str) -> bool:
    sentences = [s.strip() for s in report.replace("!", ".").split(".") if s.strip()]
    return len(sentences) != len(set(sentences))


def test_generated_reports_never_repeat_a_sentence(repeater):
    scorer, X = repeater
    free = scorer.set_params(report_decoder={"no_repeat_sentence": False, "writer": "decoder"}
                             ).generate_reports(X)
    assert any(_repeats(r) for r in free), free  # what it learned: repetition
    for options in ({"writer": "decoder"}, {"num_beams": 3, "writer": "decoder"}):
        reports = scorer.set_params(report_decoder=options).generate_reports(X)
        assert len(reports) == len(X)
        assert not any(_repeats(r) for r in reports), reports
        assert clinical_efficacy(reports, X["report"])["repeated_sentence_rate"] == 0.0
    scorer.set_params(report_decoder=None)


def test_no_repeat_sentence_bans_only_closing_a_finished_sentence():
    end, eos = 3, 1
    rule = NoRepeatSentence([end], eos)
    # [start] 5 6 . 5 6 -> closing now would repeat "5 6": "." and end-of-text are banned.
    scores = rule(torch.tensor([[0, 5, 6, end, 5, 6], [0, 5, 6, end, 5, 7]]), torch.zeros(2, 8))
    assert torch.isinf(scores[0, [end, eos]]).all() and torch.isfinite(scores[0, [5, 6, 7]]).all()
    assert torch.isfinite(scores[1]).all()  # "5 7" is a new sentence


def test_decoder_options_are_checked_in_fit(data):
    X, y = data
    for options, match in [({"beams": 2}, "unknown key"), ({"num_beams": 0}, "num_beams"),
                           ({"conditioning": "image"}, "conditioning"),
                           ({"repetition_penalty": -1.0}, "repetition_penalty"),
                           ({"no_repeat_sentence": "yes"}, "no_repeat_sentence")]:
        with pytest.raises(ValueError, match=match):
            AttentionScorer(**TINY, epochs=0, report_decoder=options).fit(X, y)
    with pytest.raises(ValueError, match="report_decoder"):
        AttentionScorer(**TINY, epochs=0, report_decoder="beam").fit(X, y)
    with pytest.raises(ValueError, match="needs the classification head"):
        AttentionScorer(**TINY, epochs=0, method="cross_attention",
                        report_decoder={"conditioning": "head"}).fit(X)
    assert check_decoder_options(None) == DECODER_DEFAULTS


@pytest.mark.filterwarnings("ignore:the stage-1 classification head")
@pytest.mark.parametrize("conditioning", ["none", "head", "findings"])
def test_every_conditioning_scores_patches_and_writes_reports(data, conditioning):
    X, y = data
    scorer = AttentionScorer(**TINY, epochs=1, method="cross_attention",
                             report_decoder={"conditioning": conditioning}).fit(X, y)
    out = scorer.set_params(report_source="generated").transform(X[:3])
    # Conditioning tokens join the decoder's memory, but the scores are over the patches.
    assert out.attention.shape == (3, 16)
    assert torch.allclose(torch.as_tensor(out.attention).sum(1), torch.ones(3), atol=1e-5)
    assert all(isinstance(r, str) for r in out.reports)


def test_report_findings_reads_present_findings_only():
    t = report_findings(["Small left pleural effusion. No pneumonia.", "Cardiomegaly."])
    assert t.shape == (2, len(FINDINGS))
    assert t[0, FINDINGS.index("pleural-effusion")] == 1
    assert t[0, FINDINGS.index("pneumonia")] == 0
    assert t[1, FINDINGS.index("cardiomegaly")] == 1 and t[1].sum() == 1
