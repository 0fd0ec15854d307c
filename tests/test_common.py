"""The scikit-learn contract, for every public estimator of neural_sk.

Users put these estimators in their own Pipelines, GridSearchCV, cross_val_score and joblib
jobs. This suite discovers every public estimator, runs the checks of
:mod:`neural_sk.testing` on each (one fitted instance per estimator, shared),
checks hand-picked invalid parameter values, runs the whole pipeline under
cross-validation, a parallel grid search and string labels, and validates the numpydoc
docstrings and doctests of the public API.

A known defect of a file this suite does not own is an ``xfail(strict=True)`` case whose
reason names the file and function: fixing the defect turns it into an XPASS failure, the
signal to delete the mark.
"""

from __future__ import annotations

import doctest
import functools
import importlib
import inspect
import io
import pkgutil

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin, clone, is_classifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils import get_tags

import neural_sk
from neural_sk.fusion import GraphFuser
from neural_sk.gnn import GNNClassifier
from neural_sk.pruning import PatchPruner
from neural_sk.report_graph import ReportGraphBuilder
from neural_sk import testing
from neural_sk.testing import check_estimator, make_check_data
from neural_sk.testing.estimator_checks import _CHECKS

# ======================================================================================
# The one table of small, fast settings (64 px tiny Swin, 1 epoch, 8 hidden units...)
# ======================================================================================
PARAMS = {
    "AttentionScorer": dict(vision_model="tiny-swin", image_size=64, epochs=1, batch_size=8,
                            device="cpu", random_state=0),
    "PatchPruner": dict(keep_ratio=0.25),
    "ReportGraphBuilder": dict(),
    "GraphFuser": dict(),
    "GNNClassifier": dict(hidden_dim=8, epochs=2, batch_size=8, device="cpu",
                          random_state=0),
    "CodecCompressor": dict(codec="jpeg", quality=20),
    "ImageClassifier": dict(vision_model="tiny-swin", image_size=64, epochs=1, batch_size=8,
                            device="cpu", random_state=0),
}
# Pipeline step name -> estimator, as make_neural_pipeline names them.
STEPS = {"scorer": "AttentionScorer", "pruner": "PatchPruner", "reports": "ReportGraphBuilder",
         "fuser": "GraphFuser", "gnn": "GNNClassifier"}
N_PIPELINE_STUDIES = 24


def _discover() -> dict[str, type]:
    """Every BaseEstimator subclass defined in a public module of neural_sk."""
    found = {}
    modules = [neural_sk] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(neural_sk.__path__, "neural_sk.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    for module in modules:
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseEstimator)
                    and obj.__module__.startswith("neural_sk")
                    and not name.startswith("_")):
                found[obj.__name__] = obj
    return found


ESTIMATORS = _discover()


def _make(name: str, **overrides) -> BaseEstimator:
    return ESTIMATORS[name](**{**PARAMS[name], **overrides})


def _pipeline(**overrides):
    params = {f"{step}__{key}": value for step, name in STEPS.items()
              for key, value in PARAMS[name].items()}
    return neural_sk.make_neural_pipeline(**{**params, **overrides})


def test_every_public_estimator_has_an_entry_in_the_table():
    assert set(ESTIMATORS) == set(PARAMS), (
        f"estimators without settings in PARAMS: {sorted(set(ESTIMATORS) - set(PARAMS))}; "
        f"entries for estimators that do not exist: {sorted(set(PARAMS) - set(ESTIMATORS))}"
    )
    for name in STEPS.values():
        assert name in ESTIMATORS


# ======================================================================================
# The common checks, one fitted estimator per class shared by all of them
# ======================================================================================
@pytest.fixture(scope="module")
def fitted():
    """``fitted(name) -> (estimator, X, y)``: each estimator fitted once, on first use."""

    @functools.cache
    def get(name):
        est = _make(name)
        X, y = make_check_data(est)
        assert est.fit(X, y) is est
        return est, X, y

    return get


_REASONS: dict = {}  # (estimator, check) -> why it is a known defect, while one exists
CHECK_NAMES = [check.__name__ for check in _CHECKS]


def _check_cases():
    for name in sorted(PARAMS):
        for check in CHECK_NAMES:
            reason = _REASONS.get((name, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, check, id=f"{name}-{check}", marks=marks)


@pytest.mark.parametrize("name, check", list(_check_cases()))
def test_common_check(fitted, name, check):
    est, X, y = fitted(name)
    getattr(testing, check)(est, X, y)


def test_xfail_table_names_real_checks():
    for name, check in _REASONS:
        assert name in PARAMS and check in CHECK_NAMES, (name, check)


# ======================================================================================
# Invalid values: construction accepts them, fit names the parameter and what is allowed
# ======================================================================================
_INVALID = [
    ("AttentionScorer", {"method": "bogus"}, ["'method'", "'mil'", "'cross_attention'"], None),
    ("AttentionScorer", {"image_size": 16}, ["'image_size'", "[32, inf)"], None),
    ("AttentionScorer", {"device": "gpu"}, ["device='gpu'", "'cpu'"], None),
    ("AttentionScorer", {"feature_stage": 20}, ["'feature_stage'", "16", "32"], None),
    ("PatchPruner", {"connectivity": 6}, ["'connectivity'", "4", "8"], None),
    ("PatchPruner", {"keep_ratio": 1.5}, ["'keep_ratio'", "(0.0, 1.0]"], None),
    ("PatchPruner", {"keep_ratio": 0.5, "top_k": 3}, ["keep_ratio", "top_k", "exactly one"],
     None),
    ("ReportGraphBuilder", {"section": "middle"}, ["'section'", "'impression'"], None),
    ("GraphFuser", {"strategy": "both"}, ["'strategy'", "'grounded'"], None),
    ("GraphFuser", {"grounding_k": 0}, ["'grounding_k'", "[1, inf)"], None),
    ("GNNClassifier", {"conv": "transformer"}, ["'conv'", "'gat'"], None),
    ("GNNClassifier", {"dropout": 1.0}, ["'dropout'", "[0.0, 1.0)"], None),
    ("GNNClassifier", {"device": "gpu"}, ["device='gpu'", "'cpu'"], None),
    ("CodecCompressor", {"codec": "png"}, ["'codec'", "'webp'"], None),
    ("CodecCompressor", {"quality": 200}, ["quality", "[1, 100]"], None),
    ("ImageClassifier", {"train_encoder": "some"}, ["'train_encoder'", "'last_stage'"], None),
    ("ImageClassifier", {"feature_stage": 20}, ["'feature_stage'", "16", "32"], None),
]


def _invalid_cases():
    for name, params, fragments, reason in _INVALID:
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        label = "-".join(f"{k}={v}" for k, v in params.items())
        yield pytest.param(name, params, fragments, id=f"{name}-{label}", marks=marks)


@pytest.mark.parametrize("name, params, fragments", list(_invalid_cases()))
def test_invalid_value_fails_at_fit_naming_parameter(fitted, name, params, fragments):
    _, X, y = fitted(name)
    est = _make(name, **params)  # __init__ does not validate
    for key, value in params.items():
        assert getattr(est, key) == value
    with pytest.raises(ValueError) as info:
        est.fit(X, y)
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"the error does not say {missing}: {message}"


# ======================================================================================
# scikit-learn's own checks do not apply: no estimator takes a 2-D array
# ======================================================================================
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_sklearn_parametrize_with_checks_does_not_apply(name):
    """Every estimator takes studies (a DataFrame of images or a StudySet), never a 2-D array.

    ``sklearn.utils.estimator_checks.parametrize_with_checks`` builds all of its inputs as
    2-D numeric arrays, so for these estimators it would only test that they reject them.
    Should an estimator ever accept a 2-D array (for example precomputed feature tables),
    this test fails: then run ``parametrize_with_checks`` on it, with
    ``expected_failed_checks`` naming each expected failure and its reason.
    """
    est = _make(name)
    X = np.random.RandomState(0).uniform(size=(16, 5))
    y = np.arange(16) % 2
    with pytest.raises((TypeError, ValueError)):
        fitted = est.fit(X, y)
        for method in ("transform", "predict"):
            if hasattr(fitted, method):
                getattr(fitted, method)(X)
                break


def test_classifier_tags():
    for name in ("GNNClassifier", "ImageClassifier"):
        est = _make(name)
        assert is_classifier(est), name
        assert get_tags(est).target_tags.required, name
    # sklearn's Pipeline takes its estimator type from the last step (its input tags
    # are not taken from the first step, so two_d_array is not checked here).
    assert is_classifier(_pipeline())


# ======================================================================================
# The helper catches what it claims to catch
# ======================================================================================
class _FitReturnsNone(PatchPruner):
    def fit(self, X, y=None):
        super().fit(X, y)


class _DropsAStudy(ReportGraphBuilder):
    def transform(self, X):
        return super().transform(X)[1:]


class _EditsItsInput(PatchPruner):
    def transform(self, X):
        X.attention[:, 0] = 0.0
        return super().transform(X)


class _BuildsInInit(PatchPruner):
    def __init__(self, *, keep_ratio=0.25, top_k=None, threshold=None, min_patches=1,
                 connectivity=4, rank_by="attention", node_features="features+attention",
                 random_state=None):
        super().__init__(keep_ratio=keep_ratio, top_k=top_k, threshold=threshold,
                         min_patches=min_patches, connectivity=connectivity, rank_by=rank_by,
                         node_features=node_features, random_state=random_state)
        self.grid_shape_ = (4, 4)


class _UnvalidatedParam(GraphFuser):
    def __init__(self, *, strategy="centrality", grounding_k=1, extra=0):
        super().__init__(strategy=strategy, grounding_k=grounding_k)
        self.extra = extra


class _IgnoresSeed(GNNClassifier):
    def fit(self, X, y):
        seed, self.random_state = self.random_state, None
        try:
            return super().fit(X, y)
        finally:
            self.random_state = seed


class _SharesItsModel(GNNClassifier):
    _last = None

    def fit(self, X, y):
        super().fit(X, y)
        # A module cached on the class: every fit trains the same object further.
        if type(self)._last is not None:
            type(self)._last.load_state_dict(self.module_.state_dict())
            self.module_ = type(self)._last
        type(self)._last = self.module_
        return self


class _ClaimsToTake2DArrays(ReportGraphBuilder):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


class _MixinAfterBase(BaseEstimator, TransformerMixin):
    """Mixins after BaseEstimator: scikit-learn's tags and repr come out wrong."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


@pytest.mark.parametrize("broken, check, message", [
    (_FitReturnsNone(keep_ratio=0.25), "check_fit_lifecycle", "not self"),
    (_DropsAStudy(), "check_n_samples_preserved", "15 rows for 16 studies"),
    (_EditsItsInput(keep_ratio=0.25), "check_input_not_mutated", "modified its input"),
    (_BuildsInInit(), "check_init_stores_params", "grid_shape_"),
    (_UnvalidatedParam(), "check_param_validation", r"missing \['extra'\]"),
    (_IgnoresSeed(hidden_dim=4, epochs=1, device="cpu", random_state=0),
     "check_fit_deterministic", "different outputs"),
    (_SharesItsModel(hidden_dim=4, epochs=1, device="cpu", random_state=0), "check_clone",
     "changed the original"),
    (_ClaimsToTake2DArrays(), "check_tags_input", "rejects a 2-D array"),
    (_MixinAfterBase(), "check_sklearn_data_free", "check_mixin_order fails"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("check_") else (
    None if isinstance(v, str) else type(v).__name__))
def test_each_check_catches_what_it_is_for(broken, check, message):
    with pytest.raises(AssertionError, match=message):
        getattr(testing, check)(broken)


def test_check_estimator_runs_every_check_and_names_the_failure():
    assert check_estimator(ReportGraphBuilder()) == CHECK_NAMES
    pairs = list(check_estimator(ReportGraphBuilder(), generate_only=True))
    assert [check.__name__ for _, check in pairs] == CHECK_NAMES
    with pytest.raises(AssertionError, match="check_n_samples_preserved failed for _DropsAStudy"):
        check_estimator(_DropsAStudy())
    with pytest.raises(ValueError, match="pass X and y"):
        check_estimator(BaseEstimator())


# ======================================================================================
# The whole pipeline: nested parameters, cross-validation, parallel search, string labels
# ======================================================================================
@pytest.fixture(scope="module")
def pipeline_data():
    from neural_sk.datasets import make_synthetic_cxr

    return make_synthetic_cxr(N_PIPELINE_STUDIES, image_size=64, random_state=0)


def test_pipeline_nested_params_round_trip():
    pipe = _pipeline()
    assert pipe.set_params(scorer__epochs=3, gnn__hidden_dim=16) is pipe
    assert pipe.named_steps["scorer"].epochs == 3
    assert pipe.named_steps["gnn"].hidden_dim == 16
    params = pipe.get_params()
    assert params["scorer__epochs"] == 3 and params["gnn__hidden_dim"] == 16
    copy = clone(pipe)
    assert copy.get_params()["scorer__epochs"] == 3
    assert copy.get_params()["gnn__hidden_dim"] == 16
    assert copy.named_steps["scorer"] is not pipe.named_steps["scorer"]
    again = clone(pipe).set_params(**{k: v for k, v in params.items() if "__" in k})
    for key, value in params.items():
        if "__" in key:
            assert again.get_params()[key] == value, key
    made = neural_sk.make_neural_pipeline(scorer__epochs=3, gnn__hidden_dim=16)
    assert made.get_params()["scorer__epochs"] == 3
    assert made.get_params()["gnn__hidden_dim"] == 16


def test_pipeline_under_cross_val_score(pipeline_data):
    X, y = pipeline_data
    scores = cross_val_score(_pipeline(), X, y, cv=2, error_score="raise")
    assert scores.shape == (2,)
    assert np.all((scores >= 0) & (scores <= 1))


def test_pipeline_under_parallel_grid_search(pipeline_data):
    X, y = pipeline_data
    grid = {"pruner__keep_ratio": [0.125, 0.25]}
    search = GridSearchCV(_pipeline(), grid, cv=2, n_jobs=2, error_score="raise")
    search.fit(X, y)
    assert search.best_params_["pruner__keep_ratio"] in grid["pruner__keep_ratio"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == (len(X),)


def test_pipeline_with_string_labels(pipeline_data):
    X, y = pipeline_data
    words = np.where(np.asarray(y) == 1, "pneumonia", "normal")
    pipe = _pipeline().fit(X, words)
    assert pipe.classes_.tolist() == ["normal", "pneumonia"]
    assert pipe.named_steps["scorer"].classes_.tolist() == ["normal", "pneumonia"]
    predicted = pipe.predict(X)
    assert set(predicted.tolist()) <= {"normal", "pneumonia"}
    assert pipe.predict_proba(X).shape == (len(X), 2)
    assert 0.0 <= pipe.score(X, words) <= 1.0


# ======================================================================================
# On a GPU: non-deterministic tag, and a model fitted on CUDA loads and predicts on a CPU
# ======================================================================================
def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


_GPU_STEPS = ["AttentionScorer", "GNNClassifier", "ImageClassifier"]
_CPU_SIDE = """
import sys, joblib, numpy as np, torch
assert not torch.cuda.is_available()
est, X = joblib.load(sys.argv[1])
est.set_params(device="cpu")
out = est.transform(X).attention if hasattr(est, "transform") else est.predict_proba(X)
np.save(sys.argv[2], np.asarray(out, dtype=np.float64))
"""


def _gpu_cases():
    for name in _GPU_STEPS:
        yield pytest.param(name, id=name)


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", list(_gpu_cases()))
def test_fitted_on_gpu_loads_and_predicts_on_a_cpu_machine(name, tmp_path):
    import os
    import subprocess
    import sys

    import joblib

    est = _make(name, device="cuda")
    assert get_tags(est).non_deterministic or name == "GNNClassifier"  # see check_tags_*
    if name == "GNNClassifier":
        # The visual graphs alone, the GNN's other input: no report parser needed.
        X, y = make_check_data(PatchPruner())
        X = PatchPruner(keep_ratio=0.25).fit_transform(X)
    else:
        X, y = make_check_data(est)
    est.fit(X, y)
    on_gpu = est.transform(X).attention if hasattr(est, "transform") else est.predict_proba(X)
    path = tmp_path / "fitted.joblib"
    joblib.dump((est, X), path)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _CPU_SIDE, str(path), str(tmp_path / "o.npy")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_cpu = np.load(tmp_path / "o.npy")
    np.testing.assert_allclose(on_cpu, np.asarray(on_gpu, dtype=np.float64), atol=1e-3)


# ======================================================================================
# Docstrings: numpydoc validation and doctests
# ======================================================================================
# Enforced everywhere: structure, summary, parameters, returns.
_DOC_CODES = {"GL02", "GL03", "GL05", "GL06", "GL07", "GL08", "GL10", "SS01", "SS02", "SS03",
              "SS04", "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR10", "RT01", "YD01"}
# Public classes and top-level functions also need an Examples section.
_EXAMPLE_CODES = {"EX01"}
_DOC_MODULES = ["neural_sk.datasets", "neural_sk.text", "neural_sk.metrics", "neural_sk.patches",
                "neural_sk.codecs", "neural_sk.datasets.images",
                "neural_sk.plotting", "neural_sk.io", "neural_sk.baselines",
                "neural_sk.testing"]
_DOC_REASONS: dict = {}  # qualified name -> why its docstring is a known defect


def _qualified(obj) -> str:
    obj = inspect.unwrap(obj)
    return f"{obj.__module__}.{obj.__qualname__}"


def _public_methods(cls) -> list[str]:
    """Public methods and properties that neural_sk itself defines on ``cls``."""
    names = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("neural_sk"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in names:
                continue
            if inspect.isfunction(value) or isinstance(value, property):
                names.append(name)
    return names


def _doc_objects() -> dict[str, bool]:
    """Qualified name -> whether it needs an Examples section."""
    objects = {}
    tops = [getattr(neural_sk, name) for name in neural_sk.__all__ if name != "__version__"]
    tops += list(ESTIMATORS.values())
    for module_name in _DOC_MODULES:
        module = importlib.import_module(module_name)
        tops += [getattr(module, name) for name in module.__all__]
    for obj in tops:
        if not (inspect.isclass(obj) or callable(obj)):
            continue  # constants
        objects[_qualified(obj)] = True
        if inspect.isclass(obj):
            for method in _public_methods(obj):
                objects[f"{_qualified(obj)}.{method}"] = False
    return objects


_DOC_OBJECTS = _doc_objects()


def _doc_cases():
    for name, examples in sorted(_DOC_OBJECTS.items()):
        reason = _DOC_REASONS.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, examples, id=name, marks=marks)


@pytest.mark.parametrize("name, needs_examples", list(_doc_cases()))
def test_numpydoc_docstring(name, needs_examples):
    from numpydoc.validate import validate

    codes = _DOC_CODES | (_EXAMPLE_CODES if needs_examples else set())
    errors = [(code, message) for code, message in validate(name)["errors"] if code in codes]
    assert not errors, f"{name}:\n" + "\n".join(f"  {c}: {m}" for c, m in errors)


def test_numpydoc_covers_the_public_api():
    for expected in ("neural_sk.attention.AttentionScorer.transform",
                     "neural_sk.gnn.GNNClassifier.predict_proba",
                     "neural_sk.pipeline.make_neural_pipeline",
                     "neural_sk.datasets.synthetic.make_synthetic_cxr",
                     "neural_sk.baselines.ImageClassifier.predict",
                     "neural_sk.testing.estimator_checks.check_estimator",
                     "neural_sk.testing.sklearn_api.check_sklearn_data_free"):
        assert expected in _DOC_OBJECTS, expected
    assert set(_DOC_REASONS) <= set(_DOC_OBJECTS)


def _doctest_modules() -> list[str]:
    """Every public module of the package: a moved module keeps its examples tested."""
    import neural_sk

    names = ["neural_sk"]
    for info in pkgutil.walk_packages(neural_sk.__path__, "neural_sk."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module_name", _doctest_modules())
def test_doctests(module_name):
    import matplotlib.pyplot as plt

    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    try:
        for test in doctest.DocTestFinder().find(module, module_name):
            runner.run(test, out=report.write)
    finally:
        plt.close("all")
    result = runner.summarize(verbose=False)
    assert result.failed == 0, report.getvalue()[-6000:]
