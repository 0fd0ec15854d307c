"""Studies from fixed numbers, for archive tests (and the format-1 file in tests/data)."""

import numpy as np

from neural_sk import GraphFuser, PatchPruner, ReportGraphBuilder, StudySet

REPORTS = ["Right lower lobe consolidation. No effusion.", "No acute cardiopulmonary process.",
           "", "Small left pleural effusion; possible pneumonia. Heart size is normal.",
           "Cardiomegaly. Right upper lobe opacity, likely atelectasis.",
           "Moderate pneumothorax on the left. No consolidation."]


def hand_studies(strategy: str = "centrality") -> StudySet:
    """Six studies through the pruner, the report graphs and the fuser, from fixed numbers
    (no model: the same values under any neural_sk version)."""
    rng = np.random.default_rng(0)
    n, grid, d = len(REPORTS), (4, 4), 6
    attention = rng.random((n, 16)).astype(np.float32)
    attention /= attention.sum(1, keepdims=True)
    studies = StudySet(ids=[f"s{i}" for i in range(n)], reports=REPORTS, attention=attention,
                       patch_features=rng.normal(size=(n, 16, d)).astype(np.float32),
                       grid_shape=grid, info={"model_hash": "abc"})
    studies = PatchPruner(keep_ratio=0.25).fit_transform(studies)
    studies = ReportGraphBuilder().fit().transform(studies)
    return GraphFuser(strategy=strategy).fit_transform(studies)
