"""Shared test settings: one torch thread per worker keeps the 2-core CI machine responsive."""

import os
from pathlib import Path

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
