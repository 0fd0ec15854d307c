"""Check that a NEURAL pipeline step behaves like a scikit-learn estimator.

scikit-learn's own :func:`sklearn.utils.estimator_checks.check_estimator` feeds 2-D numeric
arrays to every estimator, so for steps whose input is a DataFrame of images or a
:class:`~neural_sk.StudySet` it can prove almost nothing. The checks here test the same
contract with inputs that suit each step's place in the pipeline: parameters are only
stored by ``__init__`` and validated in ``fit``, clones are independent, seeds reproduce,
fitted estimators pickle, the tags tell the truth and no study is ever dropped. scikit-learn's
checks that need no data run too (:func:`check_sklearn_data_free`).

Each check is a function ``check_<name>(estimator, X=None, y=None)`` that raises an
``AssertionError`` saying what is wrong. ``estimator`` may be fitted or not: a check never
refits the estimator it is given (it fits clones), so one fitted estimator can be shared by
all checks. Without ``X``, :func:`make_check_data` builds a tiny input for the estimator's
step (a few synthetic studies); a step that is not one of neural_sk's needs ``X`` and ``y``.

This package sits on top of the estimators it checks: nothing in neural_sk imports it.
"""

from .data import make_check_data
from .estimator_checks import check_estimator
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
    "check_sklearn_data_free",
]
