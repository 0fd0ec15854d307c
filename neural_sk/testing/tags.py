"""Checks that the tags tell the truth, and of the classifier and output contracts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.base import clone, is_classifier
from sklearn.utils import get_tags

from .compare import accepts, class_name, fitted_or_clone
from .data import default_input

__all__ = ["check_tags_input", "check_tags_non_deterministic", "check_tags_requires_y",
           "check_tags_classifier", "check_string_labels", "check_transform_output_config"]


def check_tags_input(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that the input tags tell the truth about 2-D arrays (and dicts).

    ``input_tags.two_d_array`` must be True exactly when the estimator fits and
    transforms / predicts a 2-D numeric array. When ``input_tags.dict`` is set and ``X``
    is a DataFrame, the same columns given as a dict must be accepted.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; clones are fitted.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> check_tags_input(ReportGraphBuilder())
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    tags = get_tags(estimator)
    n = len(X)
    array = np.random.RandomState(0).uniform(size=(n, 5))
    error = accepts(estimator, array, y)
    if tags.input_tags.two_d_array:
        assert error is None, (
            f"{name}'s tags say input_tags.two_d_array=True but it rejects a 2-D array: "
            f"{type(error).__name__}: {error}"
        )
    else:
        assert error is not None, (
            f"{name}'s tags say input_tags.two_d_array=False but it accepts a 2-D array"
        )
    if tags.input_tags.dict and isinstance(X, pd.DataFrame):
        error = accepts(estimator, {c: X[c].tolist() for c in X.columns}, y)
        assert error is None, (
            f"{name}'s tags say input_tags.dict=True but it rejects a dict of columns: {error}"
        )


def check_tags_non_deterministic(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``non_deterministic`` is set exactly when ``device`` is not ``"cpu"``.

    GPU kernels (scatter-add, cuDNN) do not promise bitwise reproducibility, so an
    estimator with a ``device`` parameter is non-deterministic unless it runs on CPU
    (``"auto"`` counts as not CPU: it picks CUDA when present). Estimators without a
    ``device`` parameter are skipped.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check (nothing is fitted).
    X : object, default=None
        Unused.
    y : object, default=None
        Unused.

    Examples
    --------
    >>> from neural_sk import AttentionScorer
    >>> check_tags_non_deterministic(AttentionScorer())
    """
    name = class_name(estimator)
    if "device" not in estimator.get_params(deep=False):
        return
    for device, expected in (("cpu", False), ("cuda", True), ("auto", True)):
        tags = get_tags(clone(estimator).set_params(device=device))
        assert tags.non_deterministic is expected, (
            f"{name}(device={device!r}) has tags.non_deterministic="
            f"{tags.non_deterministic}; expected {expected}"
        )


def check_tags_requires_y(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``target_tags.required`` is True exactly when ``fit(X)`` without y fails.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; a clone is fitted without y.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.fusion import GraphFuser
    >>> check_tags_requires_y(GraphFuser())
    """
    name = class_name(estimator)
    X, _ = default_input(estimator, X, y)
    required = get_tags(estimator).target_tags.required
    try:
        clone(estimator).fit(X)
    except (TypeError, ValueError) as exc:
        assert required, (
            f"{name}'s tags say target_tags.required=False but fit(X) without y raises "
            f"{type(exc).__name__}: {exc}"
        )
    else:
        assert not required, (
            f"{name}'s tags say target_tags.required=True but fit(X) without y works"
        )


def check_tags_classifier(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check the classifier contract: tags, ``classes_``, ``predict`` and ``predict_proba``.

    An estimator that predicts labels from ``classes_`` must be tagged a classifier (so
    ``cross_val_score`` stratifies and scores it as one); a classifier's probabilities have
    one column per class in ``classes_`` order and rows that sum to 1.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; fitted on ``X`` first when it is not.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.gnn import GNNClassifier
    >>> check_tags_classifier(GNNClassifier(hidden_dim=4, epochs=1, random_state=0))
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    tags = get_tags(estimator)
    predicts_classes = hasattr(estimator, "predict")
    if not is_classifier(estimator):
        if predicts_classes and y is not None:
            fitted = fitted_or_clone(estimator, X, y)
            assert not hasattr(fitted, "classes_"), (
                f"{name} predicts one of classes_ but is not tagged a classifier "
                "(use ClassifierMixin)"
            )
        return
    assert tags.classifier_tags is not None, f"{name} is a classifier without classifier_tags"
    assert predicts_classes, f"{name} is tagged a classifier but has no predict"
    fitted = fitted_or_clone(estimator, X, y)
    classes = getattr(fitted, "classes_", None)
    assert classes is not None, f"fitted classifier {name} has no classes_"
    assert np.array_equal(np.asarray(classes), np.unique(y)), (
        f"{name}.classes_ = {classes!r}, expected the sorted labels {np.unique(y)!r}"
    )
    predicted = np.asarray(fitted.predict(X))
    assert np.isin(predicted, classes).all(), f"{name}.predict returns labels not in classes_"
    if hasattr(fitted, "predict_proba"):
        proba = np.asarray(fitted.predict_proba(X))
        assert proba.shape == (len(X), len(classes)), (
            f"{name}.predict_proba has shape {proba.shape}, expected {(len(X), len(classes))}"
        )
        assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5), (
            f"{name}.predict_proba rows do not sum to 1"
        )
        assert np.array_equal(predicted, np.asarray(classes)[proba.argmax(axis=1)]), (
            f"{name}.predict disagrees with the argmax of predict_proba"
        )


def check_string_labels(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that an estimator that learns classes handles string labels.

    Skipped when the fitted estimator has no ``classes_`` (it ignores y). Otherwise a clone
    fitted with the labels as strings has string ``classes_``, and its ``predict`` returns
    those strings.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; a clone is fitted with string labels.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.gnn import GNNClassifier
    >>> check_string_labels(GNNClassifier(hidden_dim=4, epochs=1, random_state=0))
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    if y is None or not hasattr(fitted_or_clone(estimator, X, y), "classes_"):
        return
    y = np.asarray(y)
    words = np.array([f"class {value}" for value in y], dtype=object)
    fitted = clone(estimator).fit(X, words)
    classes = np.asarray(fitted.classes_)
    assert classes.tolist() == sorted(set(words.tolist())), (
        f"{name} fitted on string labels has classes_ {classes!r}"
    )
    if hasattr(fitted, "predict"):
        predicted = np.asarray(fitted.predict(X))
        assert all(isinstance(v, str) for v in predicted.tolist()), (
            f"{name}.predict after fitting on string labels returns {predicted.dtype}"
        )
        assert set(predicted.tolist()) <= set(classes.tolist()), (
            f"{name}.predict returns labels it was not trained on"
        )


def check_transform_output_config(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``transform`` keeps its output type under ``transform_output="pandas"``.

    A step whose output is not a 2-D table (a StudySet) must not be wrapped by
    scikit-learn's ``set_output`` machinery, even when a user sets it globally.
    Estimators without ``transform`` are skipped.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; fitted on ``X`` first when it is not.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> check_transform_output_config(ReportGraphBuilder())
    """
    name = class_name(estimator)
    if not hasattr(estimator, "transform"):
        return
    X, y = default_input(estimator, X, y)
    fitted = fitted_or_clone(estimator, X, y)
    expected = type(fitted.transform(X))
    with config_context(transform_output="pandas"):
        got = type(fitted.transform(X))
    assert got is expected, (
        f"{name}.transform returns {got.__name__} under transform_output='pandas' but "
        f"{expected.__name__} by default: opt out of set_output wrapping"
    )
