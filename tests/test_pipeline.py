import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

from neural_sk import StudySet, make_neural_pipeline
from neural_sk.datasets import make_synthetic_cxr

FAST = dict(scorer__vision_model="tiny-swin", scorer__image_size=64, scorer__epochs=1,
            scorer__batch_size=16, scorer__random_state=0, gnn__epochs=3, gnn__random_state=0,
            gnn__hidden_dim=16)


@pytest.fixture(scope="module")
def data():
    X, y = make_synthetic_cxr(24, image_size=64, random_state=1)
    return X, y


def test_steps_and_params():
    pipe = make_neural_pipeline(pruner__keep_ratio=0.05)
    assert [name for name, _ in pipe.steps] == ["scorer", "pruner", "reports", "fuser", "gnn"]
    assert pipe.get_params()["pruner__keep_ratio"] == 0.05
    with pytest.raises(TypeError, match="step__param"):
        make_neural_pipeline(keep_ratio=0.05)


def test_end_to_end_fit_predict_transform(data):
    X, y = data
    pipe = make_neural_pipeline(**FAST).fit(X, y)
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    studies = pipe[:-1].transform(X)
    assert isinstance(studies, StudySet) and len(studies) == len(X)
    assert len(studies.graphs) == len(X)
    kept = studies.keep_mask.sum(1)
    assert (kept == kept[0]).all() and kept[0] >= 1


def test_cached_sweep_fits_the_scorer_once_per_fold(data, tmp_path, scorer_fits):
    X, y = data
    calls = scorer_fits
    grid = {"pruner__keep_ratio": [0.0625, 0.125, 0.25, 0.5]}
    cv = GroupKFold(n_splits=3)
    cached = GridSearchCV(make_neural_pipeline(memory=str(tmp_path), **FAST), grid,
                          scoring="roc_auc", cv=cv, refit=False)
    cached.fit(X, y, groups=X["patient_id"])
    assert len(calls) == 3  # once per fold, not once per fold and keep ratio

    calls.clear()
    plain = GridSearchCV(make_neural_pipeline(**FAST), grid, scoring="roc_auc", cv=cv,
                         refit=False)
    plain.fit(X, y, groups=X["patient_id"])
    assert len(calls) == 12
    np.testing.assert_allclose(cached.cv_results_["mean_test_score"],
                               plain.cv_results_["mean_test_score"])


def test_string_labels(data):
    X, y = data
    labels = np.where(y == 1, "pneumonia", "normal")
    pipe = make_neural_pipeline(**FAST).fit(X, labels)
    assert set(pipe.predict(X)) <= {"pneumonia", "normal"}
    assert list(pipe.classes_) == ["normal", "pneumonia"]
