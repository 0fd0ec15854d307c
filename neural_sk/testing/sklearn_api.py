"""scikit-learn's own API checks that need no data, run on a neural_sk step."""

from __future__ import annotations

from typing import Any

from sklearn.base import clone
from sklearn.utils import estimator_checks as sklearn_checks

from .compare import class_name

__all__ = ["SKLEARN_DATA_FREE_CHECKS", "check_sklearn_data_free"]

# The checks of sklearn.utils.estimator_checks that build no X: they look at the constructor,
# the parameters, the tags, the class hierarchy and the repr. Every other check there fits on
# a 2-D numeric array (or a sparse matrix), which no step of neural_sk takes, so it would only
# test that the step rejects one; check_tags_input checks that the tags say so instead.
SKLEARN_DATA_FREE_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_tags_renamed",
    "check_valid_tag_types",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
)


def check_sklearn_data_free(estimator: Any, X: Any = None, y: Any = None) -> None:
    """Run scikit-learn's own checks that need no data (``SKLEARN_DATA_FREE_CHECKS``).

    They cover cloning, tag names and types, the repr, ``__init__`` storing its
    parameters, ``set_params`` with unusual values, mixins placed before
    ``BaseEstimator``, default-constructible parameters and ``get_params`` /
    ``set_params`` invariance, each on a clone.

    Parameters
    ----------
    estimator : estimator instance
        The estimator to check (its clones are used; fitted or not).
    X : object, default=None
        Unused; accepted so that every check has the same signature.
    y : object, default=None
        Unused.

    Examples
    --------
    >>> from neural_sk.pruning import PatchPruner
    >>> check_sklearn_data_free(PatchPruner(keep_ratio=0.25))
    """
    name = class_name(estimator)
    for check_name in SKLEARN_DATA_FREE_CHECKS:
        try:
            getattr(sklearn_checks, check_name)(name, clone(estimator))
        except Exception as exc:  # noqa: BLE001 - any error of scikit-learn's check fails it
            raise AssertionError(
                f"scikit-learn's {check_name} fails for {name}: {type(exc).__name__}: {exc}"
            ) from exc
