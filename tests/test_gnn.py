"""GNNClassifier: learns a separable toy problem, sklearn conventions, determinism, pickling."""

import pickle
import random

import numpy as np
import pytest
import sklearn
import torch
from sklearn.pipeline import Pipeline
from torch_geometric.data import Data

from neural_sk import GraphFuser, StudySet
from neural_sk.gnn import GNNClassifier

FAST = dict(hidden_dim=16, epochs=25, batch_size=8, random_state=0, device="cpu")


def toy_graphs(n, n_classes=2, seed=0, width=6):
    """Graphs of 2-6 nodes whose features are shifted by class (on a large-scale column)."""
    rng = np.random.default_rng(seed)
    graphs, y = [], []
    for i in range(n):
        label = i % n_classes
        k = int(rng.integers(2, 7))
        x = rng.normal(size=(k, width)).astype(np.float32)
        x[:, 0] = x[:, 0] * 100 + 500  # a column with a very different scale
        x[:, 1 + label] += 3.0
        src = np.arange(k - 1)
        edge_index = np.stack([np.r_[src, src + 1], np.r_[src + 1, src]])
        graphs.append(Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(edge_index)))
        y.append(label)
    return graphs, np.array(y)


@pytest.fixture(scope="module")
def toy():
    train, y_train = toy_graphs(40, seed=0)
    test, y_test = toy_graphs(20, seed=1)
    return train, y_train, test, y_test


@pytest.fixture(scope="module")
def fitted(toy):
    train, y_train, _, _ = toy
    return GNNClassifier(**FAST).fit(train, y_train)


def test_learns_a_separable_problem(fitted, toy):
    train, y_train, test, y_test = toy
    assert fitted.score(train, y_train) == 1.0
    assert fitted.score(test, y_test) == 1.0
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert fitted.n_features_in_ == 6 and fitted.n_epochs_ == FAST["epochs"]


def test_probabilities_and_decision_function(fitted, toy):
    _, _, test, _ = toy
    proba = fitted.predict_proba(test)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    scores = fitted.decision_function(test)
    assert scores.shape == (20,)
    np.testing.assert_array_equal(fitted.predict(test), fitted.classes_[(scores > 0).astype(int)])


def test_string_labels_and_multiclass():
    graphs, y = toy_graphs(45, n_classes=3)
    names = np.array(["atelectasis", "effusion", "pneumonia"])[y]
    clf = GNNClassifier(**FAST).fit(graphs, names)
    assert clf.classes_.tolist() == ["atelectasis", "effusion", "pneumonia"]
    assert clf.predict_proba(graphs).shape == (45, 3)
    assert clf.decision_function(graphs).shape == (45, 3)
    assert clf.predict(graphs).dtype.kind == "U"
    assert clf.score(graphs, names) >= 0.9


def test_same_seed_same_predictions(fitted, toy):
    train, y_train, test, _ = toy
    again = GNNClassifier(**FAST).fit(train, y_train)
    np.testing.assert_array_equal(again.predict_proba(test), fitted.predict_proba(test))
    other = GNNClassifier(**{**FAST, "random_state": 1}).fit(train, y_train)
    assert not np.array_equal(other.predict_proba(test), fitted.predict_proba(test))


def test_pickle_round_trip(fitted, toy):
    _, _, test, _ = toy
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict_proba(test), fitted.predict_proba(test))
    assert next(loaded.module_.parameters()).device.type == "cpu"


def test_study_set_input_prefers_fused_graphs(toy):
    train, y_train, _, _ = toy
    blank = [Data(x=torch.zeros(g.num_nodes, 6), edge_index=g.edge_index) for g in train]
    clf = GNNClassifier(**FAST).fit(StudySet(visual_graphs=blank, graphs=train), y_train)
    assert clf.score(train, y_train) == 1.0  # it learned from `graphs`, not the blanks
    fallback = GNNClassifier(**FAST).fit(StudySet(visual_graphs=train), y_train)
    assert fallback.score(StudySet(visual_graphs=train), y_train) == 1.0
    with pytest.raises(ValueError, match="visual_graphs"):
        GNNClassifier(**FAST).fit(StudySet(reports=["a"] * 40), y_train)


@pytest.mark.parametrize("conv", ["gcn", "sage", "gat", "gin"])
@pytest.mark.parametrize("pooling", ["mean", "max", "add"])
def test_every_conv_and_pooling_runs_with_empty_graphs(conv, pooling, toy):
    train, y_train, _, _ = toy
    graphs = train[:12] + [Data(x=torch.zeros(0, 6), edge_index=torch.zeros(2, 0).long())]
    y = np.r_[y_train[:12], 0]
    clf = GNNClassifier(conv=conv, pooling=pooling, hidden_dim=8, epochs=2, batch_size=4,
                        random_state=0, device="cpu").fit(graphs, y)
    proba = clf.predict_proba(graphs)
    assert proba.shape == (13, 2) and np.isfinite(proba).all()


def test_early_stopping_keeps_the_best_epoch(toy):
    train, _, _, _ = toy
    # labels unrelated to the graphs and a large step: the validation loss soon stops
    # improving (with a small step it creeps towards chance level for many epochs)
    noise = np.random.default_rng(3).permutation(np.arange(40) % 2)
    clf = GNNClassifier(**{**FAST, "epochs": 200, "learning_rate": 1e-2}, early_stopping=True,
                        validation_fraction=0.25, n_iter_no_change=3).fit(train, noise)
    assert clf.n_epochs_ < 200
    assert len(clf.validation_loss_) == clf.n_epochs_ == len(clf.loss_curve_)
    assert clf.best_epoch_ == 1 + int(np.argmin(clf.validation_loss_))
    assert clf.n_epochs_ == clf.best_epoch_ + 3


def test_class_weight(toy):
    train, y_train, _, _ = toy
    for weight in ("balanced", {0: 1.0, 1: 3.0}):
        clf = GNNClassifier(**{**FAST, "epochs": 3}, class_weight=weight).fit(train, y_train)
        assert clf.predict(train).shape == (40,)


@pytest.mark.parametrize("params, name", [
    ({"conv": "transformer"}, "conv"),
    ({"pooling": "median"}, "pooling"),
    ({"dropout": 1.5}, "dropout"),
    ({"num_layers": 0}, "num_layers"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"class_weight": "auto"}, "class_weight"),
    ({"device": "tpu"}, "device"),
])
def test_invalid_parameters_fail_at_fit_naming_them(toy, params, name):
    train, y_train, _, _ = toy
    clf = GNNClassifier(**{**FAST, **params})
    with pytest.raises(ValueError, match=name):
        clf.fit(train, y_train)


def test_bad_inputs_are_named(fitted, toy):
    train, y_train, test, _ = toy
    with pytest.raises(ValueError, match="2 classes"):
        GNNClassifier(**FAST).fit(train, np.zeros(40))
    with pytest.raises(ValueError, match="graphs"):
        GNNClassifier(**FAST).fit(train, y_train[:10])
    wrong = test[:3] + [Data(x=torch.zeros(2, 5), edge_index=torch.zeros(2, 0).long())]
    with pytest.raises(ValueError, match="graph 3"):
        fitted.predict(wrong)
    broken = [Data(x=torch.zeros(2, 6), edge_index=torch.tensor([[0], [2]]))]
    with pytest.raises(ValueError, match="graph 0"):
        fitted.predict(broken)
    with pytest.raises(TypeError, match="StudySet"):
        fitted.predict(np.zeros((3, 6)))


def _global_states():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


@pytest.mark.parametrize("random_state", [0, None])
def test_fit_and_predict_leave_the_global_generators_alone(toy, random_state):
    train, y_train, test, _ = toy
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    before = _global_states()
    clf = GNNClassifier(**{**FAST, "epochs": 3, "random_state": random_state},
                        early_stopping=True).fit(train, y_train)
    clf.predict_proba(test)
    after = _global_states()
    assert after[0] == before[0]
    assert all(np.array_equal(a, b) for a, b in zip(after[1][1:], before[1][1:]))
    assert torch.equal(after[2], before[2])


WEIGHTED = dict(hidden_dim=8, epochs=6, batch_size=64, dropout=0.0, random_state=0,
                device="cpu")


def test_a_weight_of_two_equals_a_repeated_graph(toy):
    train, y_train, test, _ = toy
    weight = np.ones(len(train))
    weight[[0, 7]] = 2.0
    weighted = GNNClassifier(**WEIGHTED).fit(train, y_train, sample_weight=weight)
    repeated = GNNClassifier(**WEIGHTED).fit(train + [train[0], train[7]],
                                             np.r_[y_train, y_train[[0, 7]]])
    np.testing.assert_allclose(weighted.predict_proba(test), repeated.predict_proba(test),
                               atol=1e-5)
    np.testing.assert_allclose(weighted.x_mean_, repeated.x_mean_, rtol=1e-5)
    plain = GNNClassifier(**WEIGHTED).fit(train, y_train)
    assert not np.allclose(plain.predict_proba(test), weighted.predict_proba(test), atol=1e-5)


def test_sample_weight_is_routed_through_a_pipeline(toy):
    train, y_train, _, _ = toy
    studies = StudySet(visual_graphs=train)
    weight = np.where(y_train == 1, 3.0, 1.0)
    direct = GNNClassifier(**WEIGHTED).fit(
        GraphFuser(strategy="visual").fit_transform(studies), y_train, sample_weight=weight)
    pipe = Pipeline([("fuser", GraphFuser(strategy="visual")),
                     ("gnn", GNNClassifier(**WEIGHTED))])
    by_name = pipe.fit(studies, y_train, gnn__sample_weight=weight).predict_proba(studies)
    np.testing.assert_allclose(by_name, direct.predict_proba(pipe[:-1].transform(studies)))
    with sklearn.config_context(enable_metadata_routing=True):
        routed = Pipeline([
            ("fuser", GraphFuser(strategy="visual")),
            ("gnn", GNNClassifier(**WEIGHTED).set_fit_request(sample_weight=True)),
        ]).fit(studies, y_train, sample_weight=weight)
        np.testing.assert_allclose(routed.predict_proba(studies), by_name)


def test_predict_follows_a_device_set_after_fitting(fitted, toy):
    _, _, test, _ = toy
    moved = pickle.loads(pickle.dumps(fitted))
    if torch.cuda.is_available():
        moved.set_params(device="cuda")
        np.testing.assert_allclose(moved.predict_proba(test), fitted.predict_proba(test),
                                   atol=1e-5)
        assert next(moved.module_.parameters()).device.type == "cuda"
    else:  # asked for a device this machine lacks: it says so instead of ignoring it
        with pytest.raises(ValueError, match="device=.cuda. was asked for but"):
            moved.set_params(device="cuda").predict_proba(test)
    moved.set_params(device="cpu")
    np.testing.assert_array_equal(moved.predict_proba(test), fitted.predict_proba(test))
    assert next(moved.module_.parameters()).device.type == "cpu"


def test_per_modality_readout_pools_each_node_type_apart():
    import torch

    from neural_sk.models.gnn import GraphClassifierNet

    torch.manual_seed(0)
    net = GraphClassifierNet(3, 2, hidden_dim=4, readout="per_modality").eval()
    x = torch.randn(5, 3)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    batch = torch.tensor([0, 0, 0, 1, 1])
    node_type = torch.tensor([0, 0, 1, 0, 0])  # graph 1 has no report node
    pooled = net.embed(x, edge_index, batch, 2, node_type)
    assert pooled.shape == (2, 8)
    assert torch.all(pooled[1, 4:] == 0)       # its report half is empty, not borrowed
    assert not torch.all(pooled[0, 4:] == 0)
    # without node types every node is visual: the report half is zero for all graphs
    assert torch.all(net.embed(x, edge_index, batch, 2)[:, 4:] == 0)



def test_per_modality_readout_means_the_patches_and_maxes_the_findings():
    import torch

    from neural_sk.models.gnn import GraphClassifierNet

    # no convolution: the readout sees the node features themselves
    net = GraphClassifierNet(2, 2, num_layers=0, hidden_dim=2, readout="per_modality")
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0], [4.0, 1.0]])
    node_type = torch.tensor([0, 0, 1, 1])  # two patches, two findings
    pooled = net.embed(x, torch.zeros(2, 0, dtype=torch.long), torch.zeros(4, dtype=torch.long),
                       1, node_type)
    assert pooled.tolist() == [[2.0, 1.0, 4.0, 5.0]]

def test_per_modality_readout_reads_a_label_held_by_one_report_node():
    import torch
    from torch_geometric.data import Data

    rng = np.random.default_rng(0)
    graphs, y = [], []
    for i in range(60):
        label = i % 2
        # the fused layout: each modality has its own block of columns
        visual = np.zeros((30, 4), np.float32)
        visual[:, :3] = rng.normal(size=(30, 3))                   # noise, no label
        report = np.zeros((1, 4), np.float32)
        report[0, 3] = label
        edges = np.array([[0, 30], [30, 0]])                       # one cross edge
        graphs.append(Data(x=torch.from_numpy(np.vstack([visual, report])),
                           edge_index=torch.from_numpy(edges),
                           node_type=torch.tensor([0] * 30 + [1])))
        y.append(label)
    clf = GNNClassifier(readout="per_modality", hidden_dim=16, epochs=40, batch_size=16,
                        random_state=0).fit(graphs, y)
    assert clf.score(graphs, y) == 1.0
    # the node types reach the readout: the report half of the pooled vectors is filled
    import torch

    from neural_sk.graphs import GraphList
    from neural_sk.models.gnn import PackedGraphs

    packed = PackedGraphs(GraphList.from_data(graphs))
    packed.to(torch.device("cpu"), clf.x_mean_, clf.x_scale_)
    with torch.no_grad():
        pooled = clf.module_.eval().embed(*packed.batch(np.arange(len(graphs))))
    assert pooled.shape == (60, 32) and bool((pooled[:, 16:] != 0).any())


def test_modality_dropout_hides_one_modality_of_fused_graphs_only():
    import torch

    clf = GNNClassifier(modality_dropout=1 - 1e-12)
    x = torch.ones(7, 2)
    graph = torch.tensor([0, 0, 0, 1, 1, 2, 2])        # graph 0 fused, 1 visual, 2 report
    node_type = torch.tensor([0, 0, 1, 0, 0, 1, 1])
    edges = torch.zeros((2, 0), dtype=torch.long)
    rng = np.random.default_rng(0)
    hidden_types = set()
    for _ in range(20):
        out = clf._hide_modality((x, edges, graph, 3, node_type), rng)[0]
        assert torch.all(out[3:] == 1)                  # one-modality graphs never blanked
        blank = out[:3, 0] == 0
        assert blank.any()                              # p ~ 1: the fused graph loses one
        assert len(set(node_type[:3][blank].tolist())) == 1
        hidden_types |= set(node_type[:3][blank].tolist())
    assert hidden_types == {0, 1}                       # either modality, at random
    off = GNNClassifier(modality_dropout=0.0)._hide_modality((x, edges, graph, 3, node_type), rng)
    assert torch.equal(off[0], x)
