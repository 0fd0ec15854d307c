"""What the checks compare: fitted state, outputs and parameters, flattened into plain values.

These helpers are shared by the check modules; they are not part of the public API.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

# Methods that need a fitted estimator, in the order they are tried.
PREDICT_METHODS = ("transform", "predict", "predict_proba", "predict_log_proba",
                    "decision_function")


FIT_METHODS = ("fit", "fit_transform", "fit_predict")


class Opaque:
    """Stand-in for a value that is compared by type only (a tokenizer, a function...)."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.kind == self.kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


def flatten(value: Any, path: str, out: dict, *, estimators: bool = False) -> dict:
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
                flatten(item, f"{path}[{i}]", out, estimators=estimators)
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
            flatten(getattr(value, field.name), f"{path}.{field.name}", out,
                     estimators=estimators)
    elif isinstance(value, pd.DataFrame):
        out[f"{path}.index"] = np.asarray(value.index).copy()
        out[f"{path}.columns"] = tuple(value.columns)
        for column in value.columns:
            flatten(value[column], f"{path}[{column!r}]", out, estimators=estimators)
    elif isinstance(value, pd.Series):
        out[f"{path}.index"] = np.asarray(value.index).copy()
        for i, item in enumerate(value.tolist()):
            flatten(item, f"{path}[{i}]", out, estimators=estimators)
    elif isinstance(value, dict):
        for key in sorted(value, key=repr):
            flatten(value[key], f"{path}[{key!r}]", out, estimators=estimators)
    elif isinstance(value, (list, tuple)):
        out[f"{path}.len"] = len(value)
        for i, item in enumerate(value):
            flatten(item, f"{path}[{i}]", out, estimators=estimators)
    elif isinstance(value, BaseEstimator) and estimators:
        for key, item in fitted_attributes(value).items():
            flatten(item, f"{path}.{key}", out, estimators=estimators)
    elif hasattr(value, "keys") and hasattr(value, "__iter__") and hasattr(value, "edge_index"):
        # torch_geometric Data: iterate its (key, value) pairs.
        for key, item in sorted(value, key=lambda kv: kv[0]):
            flatten(item, f"{path}.{key}", out, estimators=estimators)
    else:
        out[path] = Opaque(value)
    return out


def fitted_attributes(estimator: Any) -> dict:
    return {k: v for k, v in vars(estimator).items()
            if k.endswith("_") and not k.startswith("_")}


def fitted_state(estimator: Any) -> dict:
    """Copies of everything the estimator learned (module weights, arrays, nested steps)."""
    return flatten(fitted_attributes(estimator), "", {}, estimators=True)


def float_weights(state: dict) -> dict:
    """The floating-point arrays of a fitted state: what a random seed initialises."""
    return {k: v for k, v in state.items()
            if isinstance(v, np.ndarray) and v.dtype.kind == "f"}


def mismatch(a: dict, b: dict) -> str | None:
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


def collect_outputs(estimator: Any, X: Any) -> dict:
    """Everything the fitted estimator returns for X, flattened."""
    out: dict = {}
    for method in PREDICT_METHODS:
        if hasattr(estimator, method):
            flatten(getattr(estimator, method)(X), method, out)
    return out


def is_fitted(estimator: Any) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def fitted_or_clone(estimator: Any, X: Any, y: Any) -> Any:
    """The estimator itself when fitted, else a fitted clone (the input is never refitted)."""
    if is_fitted(estimator):
        return estimator
    return clone(estimator).fit(X, y)


def same_param(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an object without a usable ==
        return False


def init_params(estimator: Any) -> dict[str, inspect.Parameter]:
    init = type(estimator).__init__
    if init is object.__init__:
        return {}
    params = dict(inspect.signature(init).parameters)
    params.pop("self", None)
    return params


def class_name(estimator: Any) -> str:
    return type(estimator).__name__


def torch_modules(estimator: Any) -> list:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return []
    found = []
    for value in fitted_attributes(estimator).values():
        if isinstance(value, torch.nn.Module):
            found.extend(value.modules())
        elif isinstance(value, BaseEstimator):
            found.extend(torch_modules(value))
    return found


def accepts(estimator: Any, X: Any, y: Any) -> Exception | None:
    """None when a clone fits on X and predicts/transforms it, else the error raised."""
    try:
        est = clone(estimator).fit(X, y)
        for method in PREDICT_METHODS:
            if hasattr(est, method):
                getattr(est, method)(X)
                break
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        return exc
    return None
