"""GraphList: the pipeline's graphs in flat arrays behave as a list of Data."""

import pickle

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from neural_sk import GNNClassifier, GraphFuser, PatchPruner, ReportGraphBuilder, StudySet
from neural_sk.graphs import GraphList, concat_graph_lists
from neural_sk.studies import concat_study_sets

N, GRID, D = 12, (5, 6), 7


@pytest.fixture(scope="module")
def fused():
    rng = np.random.default_rng(0)
    P = GRID[0] * GRID[1]
    attention = rng.random((N, P)).astype(np.float32)
    attention /= attention.sum(axis=1, keepdims=True)
    reports = []
    for i in range(N):
        m = int(rng.integers(0, 5))  # some studies have an empty report graph
        edges = [[j, j + 1] for j in range(m - 1)]
        edge_index = torch.tensor(edges + [e[::-1] for e in edges], dtype=torch.long)
        reports.append(Data(x=torch.rand(m, 3),
                            edge_index=edge_index.reshape(-1, 2).t().contiguous(),
                            node_names=[f"finding{j}" for j in range(m)]))
    studies = StudySet(attention=attention,
                       patch_features=rng.random((N, P, D)).astype(np.float32),
                       report_graphs=reports, grid_shape=GRID)
    pruned = PatchPruner(keep_ratio=0.2).fit_transform(studies)
    return GraphFuser().fit_transform(pruned)


def _same(a, b):
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        va, vb = a[key], b[key]
        if isinstance(va, torch.Tensor):  # report nodes have NaN grid positions
            assert va.dtype == vb.dtype and torch.allclose(va, vb, equal_nan=True), key
        else:
            assert va == vb, key


def test_pipeline_steps_return_graph_lists(fused):
    assert isinstance(fused.visual_graphs, GraphList) and isinstance(fused.graphs, GraphList)
    assert len(fused.graphs) == N
    g = fused.graphs[3]
    assert isinstance(g, Data) and g.edge_index.shape[0] == 2
    assert g.x.shape == (g.num_nodes, fused.graphs.flat("x")[0].shape[1])


def test_every_graph_making_step_returns_a_graph_list(fused):
    reports = ReportGraphBuilder().fit_transform(["Right lower lobe consolidation.", ""])
    assert isinstance(reports.report_graphs, GraphList)
    assert [g.num_nodes for g in reports.report_graphs] == [2, 0]
    assert isinstance(fused.visual_graphs, GraphList)  # PatchPruner
    assert isinstance(fused.graphs, GraphList)  # GraphFuser
    # A user's list of Data is converted once, when it enters a StudySet.
    assert isinstance(StudySet(report_graphs=list(reports.report_graphs)).report_graphs,
                      GraphList)


def test_from_data_keeps_every_graph_as_it_was():
    a = Data(x=torch.rand(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), name="a",
             y=torch.tensor([1]))
    b = Data(x=torch.rand(2, 4), edge_index=torch.zeros(2, 0, dtype=torch.long), name="b",
             note=torch.tensor([5.0]))
    graphs = GraphList.from_data([a, b])
    assert GraphList.from_data(graphs) is graphs
    # x differs in width and note/y exist in one graph only: they stay per graph.
    assert graphs.flat("x")[1] is None and graphs.flat("edge_index")[1] is not None
    for original, back in zip([a, b], graphs):
        _same(original, back)
    same = GraphList.from_data([a, a.clone()])
    assert same.flat("x")[0].shape == (6, 2)  # one array when the graphs agree
    joined = concat_graph_lists([graphs, same])
    assert [g.name for g in joined] == ["a", "b", "a", "a"]
    _same(joined[1], b)


def test_fusing_lists_of_data_gives_the_same_graphs(fused):
    # A list of Data enters through GraphList.from_data: the fused graphs are the same.
    as_lists = fused.replace(visual_graphs=list(fused.visual_graphs), graphs=None)
    again = GraphFuser().fit_transform(as_lists)
    for a, b in zip(fused.graphs, again.graphs):
        _same(a, b)


def test_indexing_slicing_and_masks(fused):
    graphs = fused.graphs
    _same(graphs[-1], graphs[N - 1])
    picked = graphs[np.array([4, 0, 4])]
    assert isinstance(picked, GraphList) and len(picked) == 3
    _same(picked[0], graphs[4])
    _same(picked[2], graphs[4])
    _same(picked[1], graphs[0])
    mask = np.zeros(N, bool)
    mask[[2, 5]] = True
    assert [g.num_nodes for g in graphs[mask]] == [graphs[2].num_nodes, graphs[5].num_nodes]
    assert len(graphs[3:3]) == 0 and len(graphs[::2]) == (N + 1) // 2
    with pytest.raises(IndexError, match="out of range"):
        graphs[N]
    with pytest.raises(IndexError, match="boolean mask"):
        graphs[np.ones(N + 1, bool)]


def test_study_set_selection_and_concatenation_keep_graph_lists(fused):
    part = fused[np.array([1, 7])]
    assert isinstance(part.graphs, GraphList)
    _same(part.graphs[1], fused.graphs[7])
    # "+" joins like lists do.
    assert isinstance(fused.graphs[:2] + fused.graphs[2:], GraphList)
    assert len(list(fused.graphs[:2]) + fused.graphs[2:]) == N
    joined = concat_study_sets([fused[:5], fused[5:]])
    assert isinstance(joined.graphs, GraphList) and len(joined.graphs) == N
    for a, b in zip(joined.graphs, fused.graphs):
        _same(a, b)
    # nbytes counts the arrays: what the graphs' tensors hold together.
    tensors = sum(v.element_size() * v.numel() for g in fused.graphs for _, v in g
                  if isinstance(v, torch.Tensor))
    assert fused.graphs.nbytes == tensors


def test_pickles_and_batches_like_a_list_of_data(fused):
    back = pickle.loads(pickle.dumps(fused.graphs))
    for a, b in zip(back, fused.graphs):
        _same(a, b)
    batch = Batch.from_data_list(list(fused.graphs))
    assert batch.num_graphs == N
    assert batch.num_nodes == int(fused.graphs.node_counts.sum())
    # Patch numbers survive batching (PyG shifts attributes named *_index).
    assert batch.patch_id.tolist() == [p for g in fused.graphs for p in g.patch_id.tolist()]
    assert int(batch.patch_id.max()) < GRID[0] * GRID[1]


def test_gnn_trains_the_same_from_a_graph_list_and_a_list(fused):
    y = np.arange(N) % 2
    params = dict(hidden_dim=8, epochs=3, batch_size=4, random_state=0)
    packed = GNNClassifier(**params).fit(fused.graphs, y).predict_proba(fused.graphs)
    listed = GNNClassifier(**params).fit(list(fused.graphs), y).predict_proba(
        list(fused.graphs))
    np.testing.assert_allclose(packed, listed, rtol=1e-5, atol=1e-6)


def test_bad_offsets_and_disagreeing_lengths_are_named():
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="'x': offsets do not cover its 3 rows"):
        GraphList({"x": ("rows", x, np.array([0, 2]))})
    with pytest.raises(ValueError, match="disagree on the number of graphs"):
        GraphList({"x": ("rows", x, np.array([0, 3])), "names": ("objects", [1, 2], None)})
