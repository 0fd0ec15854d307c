"""GraphFuser: node and edge counts, feature layout and cross-modal links of each strategy."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from neural_sk import StudySet
from neural_sk.fusion import GraphFuser

DV, R = 5, 6  # visual and report feature widths


def undirected(edges):
    return {tuple(e) for e in edges}


def cross_edges(graph):
    k = int((graph.node_type == 0).sum())
    return {(a, b) for a, b in graph.edge_index.T.tolist() if a < k <= b}


def visual_graph(patches, attention, edges, grid_w=4):
    patches = torch.tensor(patches)
    e = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T
    return Data(x=torch.randn(len(patches), DV), edge_index=torch.cat([e, e.flip(0)], 1),
                pos=torch.stack([patches // grid_w, patches % grid_w], 1).float(),
                patch_id=patches, attention=torch.tensor(attention))


def report_graph(edges, n, kinds=None, spans=None):
    e = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).T
    return Data(x=torch.eye(R)[:n] + 1.0, edge_index=torch.cat([e, e.flip(0)], 1),
                node_names=[f"c{i}" for i in range(n)],
                node_kind=torch.tensor(kinds if kinds is not None else [0] * n),
                spans=torch.tensor(spans if spans is not None else [[0, 0]] * n))


@pytest.fixture(scope="module")
def studies():
    path = visual_graph([3, 4, 5], [0.1, 0.2, 0.3], [(0, 1), (1, 2)])  # centre: node 1
    star = report_graph([(2, 0), (2, 1), (2, 3)], 4)  # centre: node 2
    isolated = visual_graph([1, 6, 11], [0.1, 0.5, 0.2], [])  # ties: most attended, 1
    empty = Data(x=torch.zeros(0, R), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 node_names=[], node_kind=torch.zeros(0, dtype=torch.long),
                 spans=torch.zeros(0, 2, dtype=torch.long))
    return StudySet(ids=["a", "b", "c"], visual_graphs=[path, isolated, path],
                    report_graphs=[star, star, empty])


def test_centrality_counts_layout_and_link(studies):
    out = GraphFuser().fit_transform(studies)
    assert len(out.graphs) == 3 and studies.graphs is None
    g = out.graphs[0]
    v, r = studies.visual_graphs[0], studies.report_graphs[0]
    assert g.num_nodes == 3 + 4
    assert g.edge_index.shape[1] == v.edge_index.shape[1] + r.edge_index.shape[1] + 2
    assert g.x.shape == (7, DV + R + 1) and g.x.dtype == torch.float32
    assert g.node_type.tolist() == [0, 0, 0, 1, 1, 1, 1]
    torch.testing.assert_close(g.x[:3, :DV], v.x)
    torch.testing.assert_close(g.x[3:, DV:DV + R], r.x)
    assert (g.x[:3, DV:] == 0).all() and (g.x[3:, :DV] == 0).all()
    assert g.x[:, -1].tolist() == [0, 0, 0, 1, 1, 1, 1]
    torch.testing.assert_close(g.pos[:3], v.pos)
    assert torch.isnan(g.pos[3:]).all()
    assert g.patch_id.tolist() == [3, 4, 5] and g.node_names == ["c0", "c1", "c2", "c3"]
    # the paper's link: most central visual node (1) <-> most central report node (3 + 2)
    assert cross_edges(g) == {(1, 5)}
    assert {(5, 1)} <= undirected(g.edge_index.T.tolist())
    # report edges are shifted by the number of visual nodes
    assert {(5, 3), (5, 4), (5, 6)} <= undirected(g.edge_index.T.tolist())


def test_centrality_ties_go_to_the_most_attended_patch(studies):
    g = GraphFuser().fit_transform(studies).graphs[1]
    assert cross_edges(g) == {(1, 5)}


def test_empty_report_graph_keeps_the_study(studies):
    g = GraphFuser().fit_transform(studies).graphs[2]
    assert g.num_nodes == 3 and g.x.shape == (3, DV + R + 1)
    assert g.node_type.tolist() == [0, 0, 0] and not cross_edges(g)
    assert g.edge_index.shape[1] == studies.visual_graphs[2].edge_index.shape[1]


@pytest.mark.parametrize("strategy, width, types", [
    ("visual", DV + 1, [0, 0, 0]),
    ("report", R + 1, [1, 1, 1, 1]),
])
def test_single_modality_strategies(studies, strategy, width, types):
    fuser = GraphFuser(strategy=strategy)
    g = fuser.fit_transform(studies).graphs[0]
    assert fuser.n_node_features_ == width and g.x.shape == (len(types), width)
    assert g.node_type.tolist() == types
    source = studies.visual_graphs[0] if strategy == "visual" else studies.report_graphs[0]
    assert g.edge_index.tolist() == source.edge_index.tolist()
    # visual-only works without report graphs at all
    if strategy == "visual":
        alone = studies.replace(report_graphs=None)
        assert GraphFuser(strategy="visual").fit_transform(alone).graphs[0].num_nodes == 3


@pytest.fixture(scope="module")
def grounded_studies():
    grid = (3, 4)
    n_patches = 12
    visual = visual_graph([2, 5, 9], [0.5, 0.2, 0.3], [(1, 2)])  # central (tie): node 0
    # report: "left lung: pneumonia ... effusion"; node 1 is anatomy
    report = report_graph([(0, 1)], 3, kinds=[0, 1, 0], spans=[[10, 19], [0, 9], [30, 38]])
    offsets = np.array([[0, 4], [5, 9], [10, 14], [14, 19], [20, 24], [0, 0]])
    att = np.full((6, n_patches), 0.01, dtype=np.float32)
    att[0:2, 2] = 0.9  # anatomy tokens look at patch 2 (anatomy is not grounded)
    att[2, 5], att[2, 9] = 0.6, 0.0  # "pneum" -> patch 5
    att[3, 5], att[3, 9] = 0.0, 0.5  # "onia" -> patch 9: the average favours patch 5
    att[5, 9] = 5.0  # a special token (0, 0) overlaps nothing
    anatomy_only = report_graph([], 1, kinds=[1], spans=[[0, 9]])
    return StudySet(ids=["g", "h"], visual_graphs=[visual, visual],
                    report_graphs=[report, anatomy_only],
                    token_attention=[att, att], token_offsets=[offsets, offsets],
                    grid_shape=grid)


def test_grounded_links_go_to_the_attended_patches(grounded_studies):
    g = GraphFuser(strategy="grounded").fit_transform(grounded_studies).graphs[0]
    k = 3
    # finding 0 -> patch 5 (visual node 1); finding 2 has no overlapping token: central node
    assert cross_edges(g) == {(1, k + 0), (0, k + 2)}
    assert g.edge_index.shape[1] == 2 + 2 + 2 * 2
    g2 = GraphFuser(strategy="grounded", grounding_k=2).fit_transform(
        grounded_studies).graphs[0]
    assert cross_edges(g2) == {(1, k + 0), (2, k + 0), (0, k + 2)}


def test_grounded_without_findings_falls_back_to_centrality(grounded_studies):
    g = GraphFuser(strategy="grounded").fit_transform(grounded_studies).graphs[1]
    assert cross_edges(g) == {(0, 3)}


def test_missing_fields_and_bad_widths_are_named(studies, grounded_studies):
    with pytest.raises(ValueError, match="token_attention"):
        GraphFuser(strategy="grounded").fit(studies)
    with pytest.raises(ValueError, match="report_graphs"):
        GraphFuser().fit(studies.replace(report_graphs=None))
    wide = Data(x=torch.zeros(2, R + 1), edge_index=torch.zeros(2, 0, dtype=torch.long))
    bad = studies.replace(report_graphs=[studies.report_graphs[0], wide,
                                         studies.report_graphs[2]])
    with pytest.raises(ValueError, match="'b'"):
        GraphFuser().fit(bad)
    fuser = GraphFuser().fit(studies)
    narrow = [Data(x=torch.zeros(1, R - 1), edge_index=torch.zeros(2, 0, dtype=torch.long))]
    with pytest.raises(ValueError, match="fitted"):
        fuser.transform(StudySet(visual_graphs=studies.visual_graphs[:1], report_graphs=narrow))
    with pytest.raises(ValueError, match="strategy"):
        GraphFuser(strategy="bridges").fit(studies)
    with pytest.raises(ValueError, match="strategy"):
        GraphFuser(strategy="bridges").fit_transform(studies)
    with pytest.raises(ValueError, match="grounding_k"):
        GraphFuser(grounding_k=0).fit(studies)


def test_fit_transform_equals_fit_then_transform(studies):
    a = GraphFuser().fit_transform(studies).graphs
    b = GraphFuser().fit(studies).transform(studies).graphs
    for ga, gb in zip(a, b):
        assert torch.equal(ga.x, gb.x) and torch.equal(ga.edge_index, gb.edge_index)


def test_fuse_graphs_rebuilds_the_fusers_graphs_without_the_estimator(studies):
    from neural_sk.graphs import fuse_graphs

    fitted = GraphFuser().fit_transform(studies).graphs
    rebuilt = fuse_graphs(studies.visual_graphs, studies.report_graphs)
    assert rebuilt.keys == fitted.keys
    for a, b in zip(rebuilt, fitted):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
        assert a.node_names == b.node_names


def test_fused_graphs_keep_the_status_of_report_findings():
    from neural_sk import PatchPruner, ReportGraphBuilder

    reports = ReportGraphBuilder().fit_transform(
        ["Right lower lobe consolidation. No effusion. Possible pneumothorax.", ""])
    attention = np.full((2, 16), 1 / 16, dtype=np.float32)
    pruned = PatchPruner(keep_ratio=None, top_k=3).fit_transform(reports.replace(
        attention=attention, patch_features=np.ones((2, 16, 4), np.float32), grid_shape=(4, 4)))
    fused = GraphFuser().fit_transform(pruned).graphs
    g, report = fused[0], reports.report_graphs[0]
    assert g.node_status[:3].tolist() == [-1, -1, -1]  # visual nodes have no status
    assert g.node_status[3:].tolist() == report.node_status.tolist()
    assert sorted(set(report.node_status.tolist())) == [-1, 0, 1, 2]
    assert fused[1].node_status.tolist() == [-1, -1, -1]  # empty report
