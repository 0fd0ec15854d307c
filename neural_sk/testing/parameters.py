"""Checks of the parameter contract: ``__init__`` stores, ``get/set_params`` round-trip, ``fit`` validates."""

from __future__ import annotations

import re
from typing import Any

from sklearn.base import clone
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)

from .compare import FIT_METHODS, class_name, init_params, same_param
from .data import default_input

__all__ = ["check_init_stores_params", "check_get_set_params", "check_param_validation"]


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
    name = class_name(estimator)
    params = init_params(estimator)
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
    name = class_name(estimator)
    est = clone(estimator)
    params = est.get_params(deep=False)
    expected = set(init_params(est))
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
        assert same_param(again[pname], params[pname]), (
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
    name = class_name(estimator)
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
    X, y = default_input(estimator, X, y)
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
            for method in FIT_METHODS:
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
