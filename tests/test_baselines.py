"""ImageClassifier, the full-image baseline: sample weights reach its training loss."""

import inspect

import numpy as np
import pytest
from sklearn import config_context
from sklearn.pipeline import Pipeline

from neural_sk import AttentionScorer
from neural_sk.baselines import ImageClassifier
from neural_sk.datasets import make_synthetic_cxr

# ImageClassifier trains through AttentionScorer.fit, whose sample_weight lands with issue 17.
pytestmark = pytest.mark.skipif(
    "sample_weight" not in inspect.signature(AttentionScorer.fit).parameters,
    reason="AttentionScorer.fit takes no sample_weight on this branch",
)

TINY = dict(vision_model="tiny-swin", image_size=64, epochs=2, batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_synthetic_cxr(16, image_size=64, random_state=0)


@pytest.fixture(scope="module")
def plain(data):
    X, y = data
    return ImageClassifier(**TINY).fit(X, y).predict_proba(X)


def test_unit_weights_change_nothing_and_zero_weights_silence_studies(data, plain):
    X, y = data
    ones = ImageClassifier(**TINY).fit(X, y, sample_weight=np.ones(len(y))).predict_proba(X)
    np.testing.assert_allclose(ones, plain, atol=1e-5)
    # With every positive study weighted 0 the loss only ever pushes towards class 0.
    no_positives = np.where(y == 1, 0.0, 1.0)
    biased = ImageClassifier(**TINY).fit(X, y, sample_weight=no_positives).predict_proba(X)
    assert biased[:, 1].mean() < plain[:, 1].mean()


def test_sample_weight_reaches_the_classifier_through_a_pipeline(data):
    X, y = data
    w = np.where(y == 1, 0.5, 1.0)
    direct = ImageClassifier(**TINY).fit(X, y, sample_weight=w).predict_proba(X)
    pipe = Pipeline([("clf", ImageClassifier(**TINY))]).fit(X, y, clf__sample_weight=w)
    np.testing.assert_allclose(pipe.predict_proba(X), direct, atol=1e-5)
    with config_context(enable_metadata_routing=True):
        clf = ImageClassifier(**TINY).set_fit_request(sample_weight=True)
        routed = Pipeline([("clf", clf)]).fit(X, y, sample_weight=w)
        np.testing.assert_allclose(routed.predict_proba(X), direct, atol=1e-5)
