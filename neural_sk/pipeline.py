"""make_neural_pipeline: the whole NEURAL chain as one scikit-learn Pipeline."""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline

__all__ = ["make_neural_pipeline"]


def make_neural_pipeline(*, memory: Any = None, verbose: bool = False, **step_params: Any) -> Pipeline:
    """Chain scorer, pruner, report graphs, fusion and GNN into a Pipeline.

    The steps are named ``scorer``, ``pruner``, ``reports``, ``fuser`` and ``gnn``, so a
    sweep reads ``GridSearchCV(pipe, {"pruner__keep_ratio": [0.01, 0.023, 0.05]})``. With
    ``memory`` (a folder or a :class:`joblib.Memory`), the fitted scorer is cached: a sweep
    over pruning settings fits the expensive vision-language model once per fold.

    Parameters
    ----------
    memory : str, joblib.Memory or None, default=None
        Where the Pipeline caches fitted transformers.
    verbose : bool, default=False
        Print the time each step takes to fit (scikit-learn's Pipeline verbosity).
    **step_params
        Step parameters in ``step__param`` form, e.g. ``scorer__epochs=3``.

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> from neural_sk import make_neural_pipeline
    >>> pipe = make_neural_pipeline(scorer__vision_model="tiny-swin", pruner__keep_ratio=0.05)
    >>> [name for name, _ in pipe.steps]
    ['scorer', 'pruner', 'reports', 'fuser', 'gnn']
    >>> pipe.get_params()["pruner__keep_ratio"]
    0.05
    """
    from .attention import AttentionScorer
    from .fusion import GraphFuser
    from .gnn import GNNClassifier
    from .pruning import PatchPruner
    from .report_graph import ReportGraphBuilder

    pipe = Pipeline(
        [
            ("scorer", AttentionScorer()),
            ("pruner", PatchPruner()),
            ("reports", ReportGraphBuilder()),
            ("fuser", GraphFuser()),
            ("gnn", GNNClassifier()),
        ],
        memory=memory,
        verbose=verbose,
    )
    unknown = [key for key in step_params if "__" not in key]
    if unknown:
        raise TypeError(
            f"make_neural_pipeline takes step parameters as step__param, got {unknown}; "
            "steps are scorer, pruner, reports, fuser, gnn"
        )
    return pipe.set_params(**step_params)
