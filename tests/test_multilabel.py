"""Many findings at once (issue 15): multi-label targets through the scorer, the GNN, the image
baseline, the metrics and a cached GridSearchCV; binary use is left as it was."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold
from torch_geometric.data import Data

from neural_sk import AttentionScorer, StudySet, make_neural_pipeline
from neural_sk.baselines import ImageClassifier
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.gnn import GNNClassifier
from neural_sk.metrics import per_finding_hit_rate, per_label_auc
from neural_sk.models.losses import masked_bce
from neural_sk.models.targets import encode_targets

FINDINGS = ("pneumonia", "pleural-effusion", "cardiomegaly")
# one epoch on 24 studies teaches the head nothing: these tests are about shapes and plumbing
pytestmark = pytest.mark.filterwarnings("ignore:the stage-1 classification head")
TINY = dict(vision_model="tiny-swin", image_size=64, epochs=1, batch_size=8, device="cpu",
            random_state=0)


@pytest.fixture(scope="module")
def data():
    X, Y = make_synthetic_cxr(24, image_size=64, random_state=3, findings=FINDINGS)
    frame = pd.DataFrame(Y, columns=FINDINGS, index=X.index).astype(float)
    frame.iloc[0, 0] = np.nan  # not mentioned
    frame.iloc[1, 1] = -1  # uncertain
    return X, Y, frame


@pytest.fixture(scope="module")
def scorer(data):
    X, _, frame = data
    return AttentionScorer(**TINY).fit(X, frame)


# -- targets and the loss -----------------------------------------------------------------
def test_targets_mask_unknown_and_follow_the_uncertain_policy():
    y = np.array([[1, np.nan], [0, -1], [1, 0]])
    for policy, value, weight in (("ignore", 0.0, 0.0), ("ones", 1.0, 1.0), ("zeros", 0.0, 1.0)):
        classes, t, w = encode_targets(y, None, 3, uncertain=policy)
        assert classes.tolist() == [0, 1] and w is None
        assert t.shape == (3, 2, 2)
        assert t[0, 1, 1] == 0  # NaN never counts
        assert (t[1, 0, 1], t[1, 1, 1]) == (value, weight)


def test_targets_name_the_bad_entry():
    frame = pd.DataFrame({"effusion": [1, 0, 2]})
    with pytest.raises(ValueError, match="row 2, label 'effusion'"):
        encode_targets(frame, None, 3)
    with pytest.raises(ValueError, match="3 studies"):
        encode_targets(np.zeros((4, 2)), None, 3)


def test_masked_entries_do_not_move_the_loss():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    _, t, _ = encode_targets(np.array([[1, np.nan], [0, 1]]), None, 2)
    moved = logits.clone()
    moved[0, 1] = 50.0  # the unknown entry
    assert torch.equal(masked_bce(logits, t), masked_bce(moved, t))
    assert masked_bce(logits, t) != masked_bce(logits.flip(1), t)


# -- the scorer ---------------------------------------------------------------------------
def test_scorer_keeps_one_map_per_label_and_one_row_per_study(data, scorer):
    X, _, frame = data
    studies = scorer.transform(X)
    assert scorer.classes_.tolist() == [0, 1, 2]
    assert list(scorer.label_names_) == list(FINDINGS)
    assert studies.attention.shape == (len(X), 16)
    assert studies.label_attention.shape == (len(X), 3, 16)
    np.testing.assert_allclose(studies.label_attention.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(studies.attention.sum(-1), 1.0, rtol=1e-5)
    joint = studies.label_attention.max(1)
    np.testing.assert_allclose(studies.attention, joint / joint.sum(1, keepdims=True), rtol=1e-5)
    assert studies[[2, 0]].label_attention.shape == (2, 3, 16)  # selection keeps the field
    proba = scorer.predict_proba(X)
    assert proba.shape == (len(X), 3) and ((proba > 0) & (proba < 1)).all()


def test_attention_label_picks_a_label_by_name_or_column(data, scorer):
    X, _, _ = data
    est = AttentionScorer(**TINY)
    est.__dict__.update({k: v for k, v in scorer.__dict__.items() if k.endswith("_")})
    maps = scorer.transform(X[:4]).label_attention
    for label in ("pleural-effusion", 1):
        att = est.set_params(attention_label=label).transform(X[:4]).attention
        np.testing.assert_allclose(att, maps[:, 1], rtol=1e-5)
    mean = est.set_params(attention_label="mean").transform(X[:4]).attention
    np.testing.assert_allclose(mean, maps.mean(1), rtol=1e-5)
    with pytest.raises(ValueError, match="attention_label='edema'.*pneumonia"):
        est.set_params(attention_label="edema").transform(X[:4])


def test_binary_scorer_has_no_label_maps(data):
    X, Y, _ = data
    studies = AttentionScorer(**TINY).fit(X, Y[:, 0]).transform(X[:3])
    assert studies.label_attention is None and studies.attention.shape == (3, 16)


def test_study_set_checks_label_attention_against_the_grid():
    with pytest.raises(ValueError, match="label_attention has 5 patches"):
        StudySet(label_attention=np.full((2, 3, 5), 0.2), grid_shape=(2, 2))


# -- the GNN and the image baseline -------------------------------------------------------
def _graphs(Y):
    g = torch.Generator().manual_seed(0)
    return [Data(x=0.5 * torch.randn(4, len(row), generator=g) + 2 * torch.tensor(row, dtype=torch.float32),
                 edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]])) for row in Y]


GNN = dict(hidden_dim=8, epochs=30, batch_size=8, device="cpu", random_state=0)


def test_gnn_multi_output_follows_mlp_classifier():
    Y = np.array([[i % 2, (i // 2) % 2, (i // 4) % 2] for i in range(32)])
    graphs = _graphs(Y)
    clf = GNNClassifier(**GNN).fit(graphs, pd.DataFrame(Y, columns=list("abc")))
    proba = clf.predict_proba(graphs)
    assert clf.classes_.tolist() == [0, 1, 2] and list(clf.label_names_) == ["a", "b", "c"]
    assert proba.shape == (32, 3) and clf.decision_function(graphs).shape == (32, 3)
    np.testing.assert_array_equal(clf.predict(graphs), (proba > 0.5).astype(int))
    assert min(per_label_auc(Y, proba).values()) > 0.9


def test_gnn_unknown_and_uncertain_entries():
    Y = np.array([[i % 2, (i // 2) % 2] for i in range(24)], dtype=float)
    graphs = _graphs(Y)
    unknown, uncertain = Y.copy(), Y.copy()
    unknown[0, 0], uncertain[0, 0] = np.nan, -1
    p_nan = GNNClassifier(**GNN).fit(graphs, unknown).predict_proba(graphs)
    p_ign = GNNClassifier(**GNN).fit(graphs, uncertain).predict_proba(graphs)
    np.testing.assert_array_equal(p_nan, p_ign)  # "ignore" leaves -1 out like NaN
    ones = Y.copy()
    ones[0, 0] = 1
    p_ones = GNNClassifier(**GNN, uncertain="ones").fit(graphs, uncertain).predict_proba(graphs)
    np.testing.assert_array_equal(p_ones, GNNClassifier(**GNN).fit(graphs, ones)
                                  .predict_proba(graphs))


def test_image_classifier_multi_output(data):
    X, Y, _ = data
    clf = ImageClassifier(**TINY).fit(X, Y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and clf.classes_.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))


# -- metrics and the sweep ----------------------------------------------------------------
def test_per_label_auc_leaves_unknown_out():
    y = pd.DataFrame({"a": [1, 0, 1, 0], "b": [1, 0, np.nan, -1]})
    score = np.array([[0.9, 0.8], [0.1, 0.2], [0.8, 0.0], [0.2, 0.9]])
    assert per_label_auc(y, score) == {"a": 1.0, "b": 1.0}


def test_per_finding_hit_rate_counts_each_finding_on_its_own_mask():
    lesion = np.zeros((3, 2, 4), dtype=bool)
    lesion[:, 0, 0] = True  # finding a: patch 0 in every study
    lesion[2, 1, 3] = True  # finding b: patch 3 of study 2 only
    keep = np.zeros((3, 4), dtype=bool)
    keep[:, 0] = True
    out = per_finding_hit_rate(keep, lesion, labels=["a", "b"])
    assert out["a"]["hit_rate"] == 1.0 and out["a"]["n_positive"] == 3
    assert out["b"]["hit_rate"] == 0.0 and out["b"]["n_positive"] == 1
    assert out["b"]["chance"] == pytest.approx(0.25)


def test_grid_search_roc_auc_macro_over_labels_with_the_cached_scorer(data, tmp_path,
                                                                      scorer_fits):
    X, Y, _ = data
    calls = scorer_fits
    params = {f"scorer__{k}": v for k, v in TINY.items()}
    pipe = make_neural_pipeline(memory=str(tmp_path), **params, gnn__epochs=3,
                                gnn__hidden_dim=8, gnn__random_state=0, gnn__device="cpu")
    search = GridSearchCV(pipe, {"pruner__keep_ratio": [0.125, 0.25]}, scoring="roc_auc",
                          cv=KFold(2, shuffle=True, random_state=0), refit=False,
                          error_score="raise")
    search.fit(X, Y)
    assert len(calls) == 2  # once per fold, not once per fold and keep ratio
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()



def test_head_conditioned_decoder_reads_the_multilabel_head(data):
    """report_decoder's "head" conditioning reads a multi-label head (one map per label)."""
    X, _, frame = data
    scorer = AttentionScorer(**TINY, report_decoder={"conditioning": "head"}).fit(X[:12], frame[:12])
    assert scorer.transform(X[:3]).label_attention.shape[:2] == (3, len(FINDINGS))
    assert len(scorer.generate_reports(X[:2])) == 2
