"""Check that a NEURAL pipeline step behaves like a scikit-learn estimator.

scikit-learn's own :func:`sklearn.utils.estimator_checks.check_estimator` feeds 2-D numeric
arrays to every estimator, so for steps whose input is a DataFrame of images or a
:class:`~neural_sk.StudySet` it can prove almost nothing. The checks here test the same
contract with inputs that suit each step's place in the pipeline: parameters are only
stored by ``__init__`` and validated in ``fit``, clones are independent, seeds reproduce,
fitted estimators pickle, the tags tell the truth and no study is ever dropped.

Each check is a function ``check_<name>(estimator, X=None, y=None)`` that raises an
``AssertionError`` saying what is wrong. ``estimator`` may be fitted or not: a check never
refits the estimator it is given (it fits clones), so one fitted estimator can be shared by
all checks. Without ``X``, :func:`make_check_data` builds a tiny input for the estimator's
step (a few synthetic studies); a step that is not one of neural_sk's needs ``X`` and ``y``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import pickle
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn import config_context
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils import get_tags
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "check_estimator",
    "make_check_data",
    "check_init_stores_params",
    "check_get_set_params",
    "check_param_validation",
    "check_fit_lifecycle",
    "check_n_samples_preserved",
    "check_clone",
    "check_fit_deterministic",
    "check_pickle_roundtrip",
    "check_tags_input",
    "check_tags_non_deterministic",
    "check_tags_requires_y",
    "check_tags_classifier",
    "check_string_labels",
    "check_input_not_mutated",
    "check_transform_output_config",
]

# Methods that need a fitted estimator, in the order they are tried.
_PREDICT_METHODS = ("transform", "predict", "predict_proba", "predict_log_proba",
                    "decision_function")
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")


# ======================================================================================
# Inputs
# ======================================================================================
def _stage(estimator: Any) -> str:
    """Which input the estimator takes: its place in the NEURAL pipeline."""
    from sklearn.pipeline import Pipeline

    from ..attention import AttentionScorer
    from ..baselines import CodecCompressor, ImageClassifier
    from ..fusion import GraphFuser
    from ..gnn import GNNClassifier
    from ..pruning import PatchPruner
    from ..report_graph import ReportGraphBuilder

    if isinstance(estimator, Pipeline):
        return _stage(estimator.steps[0][1])
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

    stage = _stage(estimator)
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


def _data(estimator: Any, X: Any, y: Any) -> tuple[Any, Any]:
    if X is None:
        return make_check_data(estimator)
    return X, y


def _take(X: Any, index: np.ndarray) -> Any:
    if isinstance(X, (pd.DataFrame, pd.Series)):
        return X.iloc[index]
    if isinstance(X, np.ndarray):
        return X[index]
    if isinstance(X, list):
        return [X[i] for i in index]
    return X[index]


# ======================================================================================
# Comparing outputs and fitted state
# ======================================================================================
class _Opaque:
    """Stand-in for a value that is compared by type only (a tokenizer, a function...)."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Opaque) and other.kind == self.kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


def _flatten(value: Any, path: str, out: dict, *, estimators: bool = False) -> dict:
    """Flatten nested outputs into ``{path: ndarray or scalar}`` copies."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        out[path] = value
    elif isinstance(value, np.ndarray):
        if value.dtype == object:
            for i, item in enumerate(value.ravel()):
                _flatten(item, f"{path}[{i}]", out, estimators=estimators)
            out[f"{path}.shape"] = value.shape
        else:
            out[path] = value.copy()
    elif torch is not None and isinstance(value, torch.Tensor):
        out[path] = value.detach().cpu().clone().numpy()
    elif torch is not None and isinstance(value, torch.nn.Module):
        for key, tensor in value.state_dict().items():
            out[f"{path}.{key}"] = tensor.detach().cpu().clone().numpy()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _flatten(getattr(value, field.name), f"{path}.{field.name}", out,
                     estimators=estimators)
    elif isinstance(value, pd.DataFrame):
        out[f"{path}.index"] = np.asarray(value.index).copy()
        out[f"{path}.columns"] = tuple(value.columns)
        for column in value.columns:
            _flatten(value[column], f"{path}[{column!r}]", out, estimators=estimators)
    elif isinstance(value, pd.Series):
        out[f"{path}.index"] = np.asarray(value.index).copy()
        for i, item in enumerate(value.tolist()):
            _flatten(item, f"{path}[{i}]", out, estimators=estimators)
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            _flatten(value[key], f"{path}[{key!r}]", out, estimators=estimators)
    elif isinstance(value, (list, tuple)):
        out[f"{path}.len"] = len(value)
        for i, item in enumerate(value):
            _flatten(item, f"{path}[{i}]", out, estimators=estimators)
    elif isinstance(value, BaseEstimator) and estimators:
        for key, item in _fitted_attributes(value).items():
            _flatten(item, f"{path}.{key}", out, estimators=estimators)
    elif hasattr(value, "keys") and hasattr(value, "__iter__") and hasattr(value, "edge_index"):
        # torch_geometric Data: iterate its (key, value) pairs.
        for key, item in sorted(value, key=lambda kv: kv[0]):
            _flatten(item, f"{path}.{key}", out, estimators=estimators)
    else:
        out[path] = _Opaque(value)
    return out


def _fitted_attributes(estimator: Any) -> dict:
    return {k: v for k, v in vars(estimator).items()
            if k.endswith("_") and not k.startswith("_")}


def _fitted_state(estimator: Any) -> dict:
    """Copies of everything the estimator learned (module weights, arrays, nested steps)."""
    return _flatten(_fitted_attributes(estimator), "", {}, estimators=True)


def _weights(state: dict) -> dict:
    """The floating-point arrays of a fitted state: what a random seed initialises."""
    return {k: v for k, v in state.items()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"}


def _mismatch(a: dict, b: dict) -> str | None:
    """Where two flattened values differ, or None."""
    if a.keys() != b.keys():
        extra, missing = sorted(set(b) - set(a))[:5], sorted(set(a) - set(b))[:5]
        return f"different entries: only in first {missing}, only in second {extra}"
    for key in a:
        u, v = a[key], b[key]
        if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
            u, v = np.asarray(u), np.asarray(v)
            if u.shape != v.shape or u.dtype != v.dtype:
                return f"{key}: shape/dtype {u.shape} {u.dtype} != {v.shape} {v.dtype}"
            equal_nan = u.dtype.kind in "fc"
            if not np.array_equal(u, v, equal_nan=equal_nan):
                return f"{key}: values differ"
        elif isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v):
            continue
        elif not (u is v or u == v):
            return f"{key}: {u!r} != {v!r}"
    return None


def _outputs(estimator: Any, X: Any) -> dict:
    """Everything the fitted estimator returns for X, flattened."""
    out: dict = {}
    for method in _PREDICT_METHODS:
        if hasattr(estimator, method):
            _flatten(getattr(estimator, method)(X), method, out)
    return out


def _is_fitted(estimator: Any) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _fitted(estimator: Any, X: Any, y: Any) -> Any:
    """The estimator itself when fitted, else a fitted clone (the input is never refitted)."""
    if _is_fitted(estimator):
        return estimator
    return clone(estimator).fit(X, y)


def _same_param(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable ==
        return False


def _init_params(estimator: Any) -> dict[str, inspect.Parameter]:
    init = type(estimator).__init__
    if init is object.__init__:
        return {}
    params = dict(inspect.signature(init).parameters)
    params.pop("self", None)
    return params


def _name(estimator: Any) -> str:
    return type(estimator).__name__


# ======================================================================================
# The checks
# ======================================================================================
def check_init_stores_params(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``__init__`` only stores its keyword arguments.

    Every ``__init__`` argument has a default and no ``*args``/``**kwargs``; a fresh
    instance holds exactly its parameters (no fitted ``_`` attributes, no model built), the
    very objects passed in; and constructing with values that ``fit`` would reject does
    not raise: validation happens in ``fit``.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check (its class and parameters are used; fitted or not).
    X : object, default=None
        Unused; accepted so that every check has the same signature.
    y : object, default=None
        Unused.

    Examples
    --------
    >>> from neural_sk.pruning import PatchPruner
    >>> check_init_stores_params(PatchPruner(top_k=3, keep_ratio=None))
    """
    name = _name(estimator)
    params = _init_params(estimator)
    for pname, p in params.items():
        assert p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD), (
            f"{name}.__init__ takes *{pname}: scikit-learn estimators list every parameter"
        )
        assert p.default is not p.empty, (
            f"{name}.__init__ parameter {pname!r} has no default; every parameter needs one"
        )
    values = estimator.get_params(deep=False)
    sentinels = {pname: object() for pname in params}
    fresh = type(estimator)(**sentinels)
    stored = vars(fresh)
    extra = sorted(set(stored) - set(params))
    assert not extra, (
        f"{name}.__init__ sets attributes that are not its parameters: {extra} "
        "(fitted state and models belong in fit)"
    )
    for pname, sentinel in sentinels.items():
        assert stored.get(pname) is sentinel, (
            f"{name}.__init__ does not store argument {pname!r} unchanged as self.{pname}"
        )
    fresh = type(estimator)(**values)
    for pname, value in values.items():
        assert getattr(fresh, pname) is value, (
            f"{name}.__init__ changed {pname}={value!r} (it must store it as given)"
        )
    bad_type = type("BadType", (), {})()
    for pname in getattr(estimator, "_parameter_constraints", {}):
        try:
            type(estimator)(**{**values, pname: bad_type})
        except Exception as exc:  # noqa: BLE001 - any error here is the failure
            raise AssertionError(
                f"{name}({pname}=<invalid>) raised {type(exc).__name__} at construction: "
                "validate parameters in fit, not in __init__"
            ) from exc


def check_get_set_params(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that ``get_params`` returns the constructor arguments and ``set_params`` round-trips.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; it is not modified (a clone is used).
    X : object, default=None
        Unused.
    y : object, default=None
        Unused.

    Examples
    --------
    >>> from neural_sk.fusion import GraphFuser
    >>> check_get_set_params(GraphFuser(grounding_k=2))
    """
    name = _name(estimator)
    est = clone(estimator)
    params = est.get_params(deep=False)
    expected = set(_init_params(est))
    assert set(params) == expected, (
        f"{name}.get_params() keys {sorted(params)} != __init__ arguments {sorted(expected)}"
    )
    for pname, value in params.items():
        assert getattr(est, pname) is value, (
            f"{name}.get_params()[{pname!r}] is not the stored attribute"
        )
    assert est.set_params(**params) is est, f"{name}.set_params does not return self"
    again = est.get_params(deep=False)
    for pname in params:
        assert _same_param(again[pname], params[pname]), (
            f"{name}.set_params(**get_params()) changed {pname!r}"
        )
    for pname in params:
        sentinel = object()
        est.set_params(**{pname: sentinel})
        assert est.get_params(deep=False)[pname] is sentinel, (
            f"{name}.set_params({pname}=...) is not reflected by get_params()"
        )
        est.set_params(**{pname: params[pname]})
    deep = clone(estimator).get_params(deep=True)
    clone(estimator).set_params(**deep)


def check_param_validation(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Check that every parameter is validated in ``fit`` with an informative message.

    As scikit-learn's ``check_param_validation``: every ``__init__`` parameter has an entry
    in ``_parameter_constraints``; a value of a wrong type, and a value of the right type
    outside what each constraint allows, make every fit method raise
    :class:`~sklearn.utils._param_validation.InvalidParameterError` naming the parameter
    and what is allowed. A generated bad value that another constraint of the same
    parameter accepts (e.g. any string as a local model directory) is skipped.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check; clones are fitted.
    X, y : object, default=None
        Input of ``fit``; built by :func:`make_check_data` when None.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> check_param_validation(ReportGraphBuilder())
    """
    name = _name(estimator)
    constraints = getattr(estimator, "_parameter_constraints", None)
    assert constraints is not None, (
        f"{name} has no _parameter_constraints: parameters are not validated in fit"
    )
    params = set(estimator.get_params(deep=False))
    assert set(constraints) == params, (
        f"{name}._parameter_constraints covers {sorted(constraints)} but the parameters "
        f"are {sorted(params)}: missing {sorted(params - set(constraints))}, unknown "
        f"{sorted(set(constraints) - params)}"
    )
    X, y = _data(estimator, X, y)
    bad_type = type("BadType", (), {})()
    for pname in sorted(params):
        if constraints[pname] == "no_validation":
            continue
        made = [make_constraint(c) for c in constraints[pname]]
        bad_values = [("a value of the wrong type", bad_type)]
        for constraint in made:
            try:
                bad = generate_invalid_param_val(constraint)
            except NotImplementedError:
                continue
            if not any(c.is_satisfied_by(bad) for c in made):
                bad_values.append((repr(bad), bad))
        pattern = re.compile(rf"The '{re.escape(pname)}' parameter of \w+ must be .* Got .*")
        for label, bad in bad_values:
            for method in _FIT_METHODS:
                est = clone(estimator).set_params(**{pname: bad})
                if not hasattr(est, method):
                    continue
                try:
                    getattr(est, method)(X, y)
                except InvalidParameterError as exc:
                    assert pattern.search(str(exc)), (
                        f"{name}.{method} with {pname}={label}: the message does not name "
                        f"the parameter and what is allowed: {exc}"
                    )
                except Exception as exc:  # noqa: BLE001 - wrong error type is the failure
                    raise AssertionError(
                        f"{name}.{method} with {pname}={label} raised {type(exc).__name__} "
                        f"({exc}) instead of InvalidParameterError naming {pname!r}"
                    ) from exc
                else:
                    raise AssertionError(
                        f"{name}.{method} accepted {pname}={label}; it must raise "
                        f"InvalidParameterError naming {pname!r} and what is allowed"
                    )


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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    est = clone(estimator)
    methods = [m for m in (*_PREDICT_METHODS, "score") if hasattr(est, m)]
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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    fitted = _fitted(estimator, X, y)
    subset = np.arange(min(3, len(X)))[::-1]
    for part in (X, _take(X, subset)):
        n = len(part)
        for method in _PREDICT_METHODS:
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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    fitted = _fitted(estimator, X, y)
    state, outputs = _fitted_state(fitted), _outputs(fitted, X)
    copy = clone(fitted)
    assert not _fitted_attributes(copy), (
        f"clone of a fitted {name} carries fitted attributes {sorted(_fitted_attributes(copy))}"
    )
    try:
        check_is_fitted(copy)
    except NotFittedError:
        pass
    else:
        raise AssertionError(f"clone of a fitted {name} passes check_is_fitted")
    original, cloned = fitted.get_params(deep=False), copy.get_params(deep=False)
    for pname, value in original.items():
        assert _same_param(cloned[pname], value), (
            f"clone of {name} has {pname}={cloned[pname]!r}, original {value!r}"
        )
    if "random_state" in original:
        seed = original["random_state"]
        copy.set_params(random_state=seed + 1 if isinstance(seed, int) else 1)
    copy.fit(X, y)
    problem = _mismatch(state, _fitted_state(fitted))
    assert problem is None, f"fitting a clone changed the original {name}'s state: {problem}"
    problem = _mismatch(outputs, _outputs(fitted, X))
    assert problem is None, f"fitting a clone changed the original {name}'s outputs: {problem}"
    mine = {id(v) for v in _modules(fitted)}
    assert not any(id(v) in mine for v in _modules(copy)), (
        f"a fitted clone of {name} shares a torch module with the original"
    )


def _modules(estimator: Any) -> list:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return []
    found = []
    for value in _fitted_attributes(estimator).values():
        if isinstance(value, torch.nn.Module):
            found.extend(value.modules())
        elif isinstance(value, BaseEstimator):
            found.extend(_modules(value))
    return found


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
    name = _name(estimator)
    params = estimator.get_params(deep=False)
    if "random_state" not in params:
        return
    X, y = _data(estimator, X, y)
    settings = {}
    if not isinstance(params["random_state"], (int, np.integer)):
        settings["random_state"] = 0
    if "device" in params and params["device"] != "cpu":
        settings["device"] = "cpu"
    if not settings and _is_fitted(estimator):
        first = estimator
    else:
        first = clone(estimator).set_params(**settings).fit(X, y)
    second = clone(first).fit(X, y)
    problem = _mismatch(_outputs(first, X), _outputs(second, X))
    assert problem is None, (
        f"{name} fitted twice with random_state={first.random_state!r} on CPU gives "
        f"different outputs: {problem}"
    )
    if not _modules(first):
        return
    seed = int(first.random_state)
    other = clone(first).set_params(random_state=seed + 1).fit(X, y)
    assert _mismatch(_weights(_fitted_state(first)), _weights(_fitted_state(other))), (
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

    name = _name(estimator)
    X, y = _data(estimator, X, y)
    fitted = _fitted(estimator, X, y)
    expected = _outputs(fitted, X)

    def via_joblib(obj: Any) -> Any:
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        buffer.seek(0)
        return joblib.load(buffer)

    for how, roundtrip in (("pickle", lambda o: pickle.loads(pickle.dumps(o))),
                           ("joblib", via_joblib)):
        loaded = roundtrip(fitted)
        assert type(loaded) is type(fitted), f"{how} round trip changed the type of {name}"
        assert _is_fitted(loaded), f"{name} is no longer fitted after a {how} round trip"
        for pname, value in fitted.get_params(deep=False).items():
            assert _same_param(loaded.get_params(deep=False)[pname], value), (
                f"{how} round trip of {name} changed parameter {pname!r}"
            )
        problem = _mismatch(expected, _outputs(loaded, X))
        assert problem is None, (
            f"{how} round trip of a fitted {name} changed its outputs: {problem}"
        )


def _accepts(estimator: Any, X: Any, y: Any) -> Exception | None:
    """None when a clone fits on X and predicts/transforms it, else the error raised."""
    try:
        est = clone(estimator).fit(X, y)
        for method in _PREDICT_METHODS:
            if hasattr(est, method):
                getattr(est, method)(X)
                break
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        return exc
    return None


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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    tags = get_tags(estimator)
    n = len(X)
    array = np.random.RandomState(0).uniform(size=(n, 5))
    error = _accepts(estimator, array, y)
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
        error = _accepts(estimator, {c: X[c].tolist() for c in X.columns}, y)
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
    name = _name(estimator)
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
    name = _name(estimator)
    X, _ = _data(estimator, X, y)
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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    tags = get_tags(estimator)
    predicts_classes = hasattr(estimator, "predict")
    if not is_classifier(estimator):
        if predicts_classes and y is not None:
            fitted = _fitted(estimator, X, y)
            assert not hasattr(fitted, "classes_"), (
                f"{name} predicts one of classes_ but is not tagged a classifier "
                "(use ClassifierMixin)"
            )
        return
    assert tags.classifier_tags is not None, f"{name} is a classifier without classifier_tags"
    assert predicts_classes, f"{name} is tagged a classifier but has no predict"
    fitted = _fitted(estimator, X, y)
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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    if y is None or not hasattr(_fitted(estimator, X, y), "classes_"):
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
    name = _name(estimator)
    X, y = _data(estimator, X, y)
    before = _flatten((X, y), "input", {})
    fitted = clone(estimator).fit(X, y)
    problem = _mismatch(before, _flatten((X, y), "input", {}))
    assert problem is None, f"{name}.fit modified its input: {problem}"
    _outputs(fitted, X)
    problem = _mismatch(before, _flatten((X, y), "input", {}))
    assert problem is None, f"{name}'s transform/predict modified its input: {problem}"


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
    name = _name(estimator)
    if not hasattr(estimator, "transform"):
        return
    X, y = _data(estimator, X, y)
    fitted = _fitted(estimator, X, y)
    expected = type(fitted.transform(X))
    with config_context(transform_output="pandas"):
        got = type(fitted.transform(X))
    assert got is expected, (
        f"{name}.transform returns {got.__name__} under transform_output='pandas' but "
        f"{expected.__name__} by default: opt out of set_output wrapping"
    )


_CHECKS: tuple[Callable[..., None], ...] = (
    check_init_stores_params,
    check_get_set_params,
    check_param_validation,
    check_fit_lifecycle,
    check_n_samples_preserved,
    check_clone,
    check_fit_deterministic,
    check_pickle_roundtrip,
    check_tags_input,
    check_tags_non_deterministic,
    check_tags_requires_y,
    check_tags_classifier,
    check_string_labels,
    check_input_not_mutated,
    check_transform_output_config,
)


def _yield_checks(estimator: Any, X: Any, y: Any) -> Iterator[tuple[Any, Callable]]:
    for check in _CHECKS:
        bound = functools.partial(check, X=X, y=y)
        functools.update_wrapper(bound, check)
        yield estimator, bound


def check_estimator(estimator: Any, X: Any = None, y: Any = None, *,
                    generate_only: bool = False) -> Any:
    """Run the scikit-learn contract checks of neural_sk on one estimator.

    The checks cover what users of a scikit-learn estimator rely on in Pipelines,
    ``GridSearchCV``, ``cross_val_score`` and joblib jobs: ``__init__`` only stores
    parameters; ``get_params`` / ``set_params``; validation in ``fit`` with messages that
    name the parameter; ``NotFittedError`` before ``fit``; ``fit`` returns self; no study
    dropped; independent clones; reproducible seeds; pickle and joblib round trips; tags
    that tell the truth (input type, non-determinism off CPU, whether y is needed,
    classifier); string labels; inputs left unchanged; no ``set_output`` wrapping of
    non-tabular output.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check, fitted or not. It is never refitted: the checks fit
        clones, and reuse a fitted ``estimator`` where they can. Set small settings
        (tiny models, few epochs, ``device="cpu"``) for a fast run.
    X : DataFrame, StudySet or other, default=None
        Input of the estimator. None builds a tiny one with :func:`make_check_data`, for
        neural_sk's steps and their subclasses; a step of your own needs ``X`` (and
        ``y``).
    y : array-like of shape (n_samples,), default=None
        Labels, used with ``X``.
    generate_only : bool, default=False
        Return a generator of ``(estimator, check)`` pairs instead of running them;
        ``check(estimator)`` runs one check (``X`` and ``y`` are bound), e.g. to
        parametrize a pytest test.

    Returns
    -------
    list of str or generator
        The names of the checks that ran, or with ``generate_only`` the generator.

    Raises
    ------
    AssertionError
        At the first failing check, naming it and what is wrong.

    See Also
    --------
    make_check_data : The default input of each step.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> from neural_sk.utils.estimator_checks import check_estimator
    >>> passed = check_estimator(ReportGraphBuilder())
    >>> "check_clone" in passed
    True
    >>> est, check = next(check_estimator(ReportGraphBuilder(), generate_only=True))
    >>> check.__name__
    'check_init_stores_params'
    """
    if X is None:
        X, y = make_check_data(estimator)
    checks = _yield_checks(estimator, X, y)
    if generate_only:
        return checks
    passed = []
    for est, check in checks:
        try:
            check(est)
        except AssertionError as exc:
            raise AssertionError(f"{check.__name__} failed for {_name(est)}: {exc}") from exc
        passed.append(check.__name__)
    return passed
