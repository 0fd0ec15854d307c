"""Checks of fitting: the lifecycle, no study dropped, independent clones, seeds, pickling, inputs kept."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .compare import (
    PREDICT_METHODS,
    class_name,
    collect_outputs,
    fitted_attributes,
    fitted_or_clone,
    fitted_state,
    flatten,
    float_weights,
    is_fitted,
    mismatch,
    same_param,
    torch_modules,
)
from .data import default_input, take_rows

__all__ = ["check_fit_lifecycle", "check_n_samples_preserved", "check_clone",
           "check_fit_deterministic", "check_pickle_roundtrip", "check_input_not_mutated"]


def check_fit_lifecycle(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check NotFittedError before ``fit``, ``fit`` returning self, and fitted state after.

    Before ``fit``, every method that needs a fitted model (``transform``, ``predict``,
    ``predict_proba``, ``decision_function``, ``score`` ...) raises
    :class:`sklearn.exceptions.NotFittedError` (or a subclass); ``fit`` returns the
    estimator itself; afterwards :func:`sklearn.utils.validation.check_is_fitted` passes
    and the same methods run.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; an unfitted clone is used.
    X, y : object, default=None
        Input of ``fit``; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.pruning import PatchPruner
    >>> check_fit_lifecycle(PatchPruner(keep_ratio=0.25))
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    est = clone(estimator)
    methods = [m for m in (*PREDICT_METHODS, "score") if hasattr(est, m)]
    for method in methods:
        args = (X, y) if method == "score" else (X,)
        try:
            getattr(est, method)(*args)
        except NotFittedError:
            continue
        except Exception as exc:  # noqa: BLE001 - wrong error type is the failure
            raise AssertionError(
                f"unfitted {name}.{method} raised {type(exc).__name__} ({exc}) instead of "
                "sklearn.exceptions.NotFittedError"
            ) from exc
        raise AssertionError(f"unfitted {name}.{method} did not raise NotFittedError")
    returned = est.fit(X, y)
    assert returned is est, (
        f"{name}.fit returned {type(returned).__name__}, not self"
    )
    try:
        check_is_fitted(est)
    except NotFittedError as exc:
        raise AssertionError(f"check_is_fitted fails on a fitted {name}: {exc}") from exc
    for method in methods:
        args = (X, y) if method == "score" else (X,)
        getattr(est, method)(*args)


def check_n_samples_preserved(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that no study is dropped: every output has one entry per input study, in order.

    Checked on all of ``X`` and on a subset of 3 studies taken in reverse order (the
    output's ``ids``, when it has them, follow the input's).

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; fitted on ``X`` first when it is not.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> check_n_samples_preserved(ReportGraphBuilder())
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    fitted = fitted_or_clone(estimator, X, y)
    subset = np.arange(min(3, len(X)))[::-1]
    for part in (X, take_rows(X, subset)):
        n = len(part)
        for method in PREDICT_METHODS:
            if not hasattr(fitted, method):
                continue
            out = getattr(fitted, method)(part)
            assert len(out) == n, (
                f"{name}.{method} returned {len(out)} rows for {n} studies: a study was "
                "dropped or added"
            )
            in_ids = getattr(part, "ids", None)
            out_ids = getattr(out, "ids", None)
            if in_ids is not None and out_ids is not None:
                assert np.array_equal(np.asarray(in_ids), np.asarray(out_ids)), (
                    f"{name}.{method} changed the study ids or their order"
                )


def check_clone(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that a clone of a fitted estimator is unfitted, equal in parameters, independent.

    Fitting the clone (with another seed when there is a ``random_state``) must leave the
    original's weights, arrays and outputs exactly as they were, and the two must share no
    torch module.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; fitted on ``X`` first when it is not.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.gnn import GNNClassifier
    >>> check_clone(GNNClassifier(hidden_dim=4, epochs=1, random_state=0, device="cpu"))
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    fitted = fitted_or_clone(estimator, X, y)
    state, outputs = fitted_state(fitted), collect_outputs(fitted, X)
    copy = clone(fitted)
    assert not fitted_attributes(copy), (
        f"clone of a fitted {name} carries fitted attributes {sorted(fitted_attributes(copy))}"
    )
    try:
        check_is_fitted(copy)
    except NotFittedError:
        pass
    else:
        raise AssertionError(f"clone of a fitted {name} passes check_is_fitted")
    original, cloned = fitted.get_params(deep=False), copy.get_params(deep=False)
    for pname, value in original.items():
        assert same_param(cloned[pname], value), (
            f"clone of {name} has {pname}={cloned[pname]!r}, original {value!r}"
        )
    if "random_state" in original:
        seed = original["random_state"]
        copy.set_params(random_state=seed + 1 if isinstance(seed, int) else 1)
    copy.fit(X, y)
    problem = mismatch(state, fitted_state(fitted))
    assert problem is None, f"fitting a clone changed the original {name}'s state: {problem}"
    problem = mismatch(outputs, collect_outputs(fitted, X))
    assert problem is None, f"fitting a clone changed the original {name}'s outputs: {problem}"
    mine = {id(v) for v in torch_modules(fitted)}
    assert not any(id(v) in mine for v in torch_modules(copy)), (
        f"a fitted clone of {name} shares a torch module with the original"
    )


def check_fit_deterministic(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that one ``random_state`` reproduces outputs on CPU and another changes weights.

    Estimators without a ``random_state`` parameter are skipped; ``device`` is set to
    ``"cpu"`` when the estimator has one. "Other weights" is checked only for estimators
    whose fitted state holds a torch module (random initial weights).

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; when it is fitted on CPU with an int seed it is reused as
        the first of the two fits.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.gnn import GNNClassifier
    >>> check_fit_deterministic(GNNClassifier(hidden_dim=4, epochs=1))
    """
    name = class_name(estimator)
    params = estimator.get_params(deep=False)
    if "random_state" not in params:
        return
    X, y = default_input(estimator, X, y)
    settings = {}
    if not isinstance(params["random_state"], (int, np.integer)):
        settings["random_state"] = 0
    if "device" in params and params["device"] != "cpu":
        settings["device"] = "cpu"
    if not settings and is_fitted(estimator):
        first = estimator
    else:
        first = clone(estimator).set_params(**settings).fit(X, y)
    second = clone(first).fit(X, y)
    problem = mismatch(collect_outputs(first, X), collect_outputs(second, X))
    assert problem is None, (
        f"{name} fitted twice with random_state={first.random_state!r} on CPU gives "
        f"different outputs: {problem}"
    )
    if not torch_modules(first):
        return
    seed = int(first.random_state)
    other = clone(first).set_params(random_state=seed + 1).fit(X, y)
    assert mismatch(float_weights(fitted_state(first)), float_weights(fitted_state(other))), (
        f"{name} fitted with random_state={seed} and {seed + 1} has identical weights: "
        "the seed does not reach the model"
    )


def check_pickle_roundtrip(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that a fitted estimator survives pickle and joblib with identical outputs.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; fitted on ``X`` first when it is not.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.fusion import GraphFuser
    >>> check_pickle_roundtrip(GraphFuser())
    """
    import joblib

    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    fitted = fitted_or_clone(estimator, X, y)
    expected = collect_outputs(fitted, X)

    def via_joblib(obj: Any) -> Any:
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        buffer.seek(0)
        return joblib.load(buffer)

    for how, roundtrip in (("pickle", lambda o: pickle.loads(pickle.dumps(o))),
                           ("joblib", via_joblib)):
        loaded = roundtrip(fitted)
        assert type(loaded) is type(fitted), f"{how} round trip changed the type of {name}"
        assert is_fitted(loaded), f"{name} is no longer fitted after a {how} round trip"
        for pname, value in fitted.get_params(deep=False).items():
            assert same_param(loaded.get_params(deep=False)[pname], value), (
                f"{how} round trip of {name} changed parameter {pname!r}"
            )
        problem = mismatch(expected, collect_outputs(loaded, X))
        assert problem is None, (
            f"{how} round trip of a fitted {name} changed its outputs: {problem}"
        )


def check_input_not_mutated(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``fit`` and ``transform`` / ``predict`` leave ``X`` and ``y`` unchanged.

    Pipelines cache step outputs and reuse them: a step that edits its input in place
    corrupts every later use of it.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; a clone is fitted.
    X, y : object, default=None
        Input; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.pruning import PatchPruner
    >>> check_input_not_mutated(PatchPruner(keep_ratio=0.25))
    """
    name = class_name(estimator)
    X, y = default_input(estimator, X, y)
    before = flatten((X, y), "input", {})
    fitted = clone(estimator).fit(X, y)
    problem = mismatch(before, flatten((X, y), "input", {}))
    assert problem is None, f"{name}.fit modified its input: {problem}"
    collect_outputs(fitted, X)
    problem = mismatch(before, flatten((X, y), "input", {}))
    assert problem is None, f"{name}'s transform/predict modified its input: {problem}"
