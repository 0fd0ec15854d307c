"""``check_estimator``: every check of :mod:`neural_sk.testing` on one estimator."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from .compare import class_name
from .data import make_check_data
from .fitting import (
    check_clone,
    check_fit_deterministic,
    check_fit_lifecycle,
    check_input_not_mutated,
    check_n_samples_preserved,
    check_pickle_roundtrip,
)
from .parameters import check_get_set_params, check_init_stores_params, check_param_validation
from .sklearn_api import check_sklearn_data_free
from .tags import (
    check_string_labels,
    check_tags_classifier,
    check_tags_input,
    check_tags_non_deterministic,
    check_tags_requires_y,
    check_transform_output_config,
)

__all__ = ["check_estimator"]

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
    check_sklearn_data_free,
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
    non-tabular output; and scikit-learn's own checks that need no data
    (:func:`~neural_sk.testing.check_sklearn_data_free`).

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
    >>> from neural_sk.testing import check_estimator
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
            raise AssertionError(f"{check.__name__} failed for {class_name(est)}: {exc}") from exc
        passed.append(check.__name__)
    return passed
