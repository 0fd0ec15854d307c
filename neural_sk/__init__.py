"""neural_sk: NEURAL (attention-guided pruning of chest X-rays into unified image + report
graphs, arXiv 2508.09715) as scikit-learn estimators.

The pipeline steps are imported lazily, so ``import neural_sk`` stays fast and does not
load torch until an estimator is used.
"""

from importlib import import_module
from typing import Any

from ._version import __version__
from .studies import StudySet

_LAZY = {
    "AttentionScorer": "neural_sk.attention",
    "PatchPruner": "neural_sk.pruning",
    "ReportGraphBuilder": "neural_sk.report_graph",
    "GraphFuser": "neural_sk.fusion",
    "GNNClassifier": "neural_sk.gnn",
    "make_neural_pipeline": "neural_sk.pipeline",
}

__all__ = ["StudySet", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neural_sk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
