"""The default input of each check: a tiny ``(X, y)`` suited to the step's place in the pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["make_check_data", "pipeline_stage", "default_input", "take_rows"]


def pipeline_stage(estimator: Any) -> str:
    """Which input the estimator takes: its place in the NEURAL pipeline."""
    from sklearn.pipeline import Pipeline

    from ..attention import AttentionScorer
    from ..baselines import CodecCompressor, ImageClassifier
    from ..fusion import GraphFuser
    from ..gnn import GNNClassifier
    from ..pruning import PatchPruner
    from ..report_graph import ReportGraphBuilder

    if isinstance(estimator, Pipeline):
        return pipeline_stage(estimator.steps[0][1])
    stages = (
        ((AttentionScorer, ImageClassifier, CodecCompressor), "frame"),
        ((PatchPruner,), "scored"),
        ((ReportGraphBuilder,), "pruned"),
        ((GraphFuser,), "report_graphs"),
        ((GNNClassifier,), "graphs"),
    )
    for classes, stage in stages:
        if isinstance(estimator, classes):
            return stage
    raise ValueError(
        f"cannot tell which input {type(estimator).__name__} takes: pass X and y to the "
        "check (a DataFrame of studies, or the StudySet the step before it returns)"
    )


def make_check_data(estimator: Any, *, n_samples: int = 16,
                    random_state: int = 0) -> tuple[Any, np.ndarray]:
    """Build a tiny input ``(X, y)`` suited to the estimator's place in the pipeline.

    Scorer-like steps (:class:`~neural_sk.AttentionScorer`, the baselines) get a DataFrame
    of synthetic 64 x 64 studies from :func:`neural_sk.datasets.make_synthetic_cxr`. Later
    steps get the :class:`~neural_sk.StudySet` that the steps before them would return,
    built without a vision model: random attention and 8-d patch features on a 4 x 4 grid
    (with a class signal), the synthetic reports, then :class:`~neural_sk.PatchPruner`
    (4 of 16 patches), :class:`~neural_sk.ReportGraphBuilder` and
    :class:`~neural_sk.GraphFuser` as far as the step needs.

    Parameters
    ----------
    estimator : estimator instance
        One of neural_sk's steps (or a subclass), or a Pipeline starting with one.
    n_samples : int, default=16
        Number of studies; both classes of ``y`` are present.
    random_state : int, default=0
        Seed of the synthetic studies.

    Returns
    -------
    X : DataFrame or StudySet
        The step's input.
    y : ndarray of shape (n_samples,)
        Integer labels (1 = pneumonia).

    Examples
    --------
    >>> from neural_sk.gnn import GNNClassifier
    >>> X, y = make_check_data(GNNClassifier(), n_samples=6)
    >>> len(X.graphs), y.shape
    (6, (6,))
    """
    from ..datasets import make_synthetic_cxr

    stage = pipeline_stage(estimator)
    frame, y = make_synthetic_cxr(n_samples, image_size=64, random_state=random_state)
    y = np.asarray(y).copy()
    if n_samples >= 2 and np.unique(y).size < 2:
        y[0] = 1 - y[0]
    if stage == "frame":
        return frame, y

    from ..fusion import GraphFuser
    from ..pruning import PatchPruner
    from ..report_graph import ReportGraphBuilder
    from ..studies import StudySet

    rng = np.random.RandomState(random_state)
    grid, dim = (4, 4), 8
    n_patches = grid[0] * grid[1]
    logits = rng.normal(size=(n_samples, n_patches))
    attention = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    features = rng.normal(size=(n_samples, n_patches, dim)) + y[:, None, None]
    X = StudySet(ids=frame["study_id"].to_numpy(), reports=frame["report"].tolist(),
                 attention=attention.astype(np.float32),
                 patch_features=features.astype(np.float32), grid_shape=grid,
                 info={"check_data": True})
    steps = {"pruned": 1, "report_graphs": 2, "graphs": 3}.get(stage, 0)
    chain = [PatchPruner(keep_ratio=0.25), ReportGraphBuilder(), GraphFuser()][:steps]
    for step in chain:
        X = step.fit_transform(X)
    return X, y


def default_input(estimator: Any, X: Any, y: Any) -> tuple[Any, Any]:
    if X is None:
        return make_check_data(estimator)
    return X, y


def take_rows(X: Any, index: np.ndarray) -> Any:
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[index]
    if isinstance(X, np.ndarray):
        return X[index]
    if isinstance(X, list):
        return [X[i] for i in index]
    return X[index]
