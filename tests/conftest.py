"""Shared test settings: one torch thread per worker keeps the 2-core CI machine responsive."""

import os
import warnings
from pathlib import Path

import joblib
import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IU_REPORTS = SHARED_DATA / "iu_reports" / "reports_train.csv"


@pytest.fixture(scope="session")
def iu_reports_path():
    """Path of the real IU reports, or skip when ../shared is not beside the clone."""
    if not IU_REPORTS.exists():
        pytest.skip(f"real IU reports not found at {IU_REPORTS}")
    return IU_REPORTS


TINY_N = 12  # studies the shared tiny pipeline is fitted on


@pytest.fixture(scope="session")
def tiny_pipeline_path(tmp_path_factory):
    """A fitted tiny pipeline, fitted once per test process and shared by the test modules."""
    from neural_sk import make_neural_pipeline
    from neural_sk.datasets import make_synthetic_cxr

    path = tmp_path_factory.getbasetemp() / "neural_sk_tiny_pipeline.joblib"
    if not path.exists():
        X, y = make_synthetic_cxr(TINY_N, image_size=64, random_state=0)
        pipe = make_neural_pipeline(
            scorer__vision_model="tiny-swin", scorer__text_model="tiny", scorer__image_size=64,
            scorer__epochs=1, scorer__max_report_tokens=32, scorer__random_state=0,
            pruner__keep_ratio=0.25,
            gnn__epochs=1, gnn__random_state=0)
        with warnings.catch_warnings():  # a 1-epoch model on 12 studies: noisy, and fine
            warnings.simplefilter("ignore")
            pipe.fit(X, y)
        tmp = path.with_suffix(".tmp")
        joblib.dump(pipe, tmp)
        tmp.replace(path)
    return path


@pytest.fixture
def scorer_fits(monkeypatch):
    """The sizes of the training sets every ``AttentionScorer.fit`` in the test sees."""
    from neural_sk import AttentionScorer

    calls = []
    original = AttentionScorer.fit

    def counting_fit(self, X, y=None):
        calls.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(AttentionScorer, "fit", counting_fit)
    return calls
