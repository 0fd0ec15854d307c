"""Property-based tests (hypothesis) of the graph steps and the archive on random valid input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch_geometric.data import Data

from neural_sk import StudySet
from neural_sk.fusion import GraphFuser
from neural_sk.io import load_studies, save_studies
from neural_sk.pruning import PatchPruner
from neural_sk.report_graph import ReportGraphBuilder

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


# --------------------------------------------------------------------------------------
# PatchPruner
# --------------------------------------------------------------------------------------
@st.composite
def scored_studies(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n, d = draw(st.integers(0, 4)), draw(st.integers(1, 3))
    raw = draw(arrays(np.float32, (n, h * w), elements=st.floats(0.015625, 1.0, width=32)))
    features = draw(arrays(np.float32, (n, h * w, d), elements=st.floats(-5, 5, width=32)))
    return StudySet(attention=raw / raw.sum(1, keepdims=True), patch_features=features,
                    grid_shape=(h, w))


RULES = st.one_of(
    st.fixed_dictionaries({"keep_ratio": st.floats(0.01, 1.0)}),
    st.fixed_dictionaries({"keep_ratio": st.none(), "top_k": st.integers(1, 40)}),
    st.fixed_dictionaries({"keep_ratio": st.none(), "threshold": st.floats(0.0, 0.6)}),
)


def _expected_count(rule, attention, min_patches):
    p = attention.shape[1]
    if rule.get("threshold") is not None:
        return np.maximum((attention >= rule["threshold"]).sum(1), min(min_patches, p))
    k = rule["top_k"] if rule.get("top_k") is not None else math.ceil(rule["keep_ratio"] * p
                                                                       - 1e-9)
    return np.full(len(attention), min(max(k, min_patches), p))


@SETTINGS
@given(studies=scored_studies(), rule=RULES, min_patches=st.integers(1, 3),
       connectivity=st.sampled_from([4, 8]))
def test_pruner_keeps_the_top_patches_as_a_valid_grid_graph(studies, rule, min_patches,
                                                            connectivity):
    pruner = PatchPruner(min_patches=min_patches, connectivity=connectivity,
                         node_features="features", **rule)
    out = pruner.fit(studies).transform(studies)
    n, (h, w) = len(studies), studies.grid_shape
    assert len(out) == n and len(out.visual_graphs) == n
    keep, att = out.keep_mask, studies.attention
    np.testing.assert_array_equal(keep.sum(1), _expected_count(rule, att, min_patches))
    for i, graph in enumerate(out.visual_graphs):
        kept = np.flatnonzero(keep[i])
        if 0 < kept.size < keep.shape[1]:  # the kept patches are the most attended ones
            assert att[i, kept].min() >= att[i, ~keep[i]].max()
        assert graph.patch_id.tolist() == kept.tolist()
        np.testing.assert_array_equal(graph.x.numpy(), studies.patch_features[i, kept])
        np.testing.assert_array_equal(graph.pos.numpy(), np.stack([kept // w, kept % w], 1))
        edges = graph.edge_index.numpy()
        assert edges.dtype == np.int64 and edges.shape[0] == 2
        assert ((edges >= 0) & (edges < kept.size)).all()
        pairs = {tuple(e) for e in edges.T.tolist()}
        assert len(pairs) == edges.shape[1] and all(a != b for a, b in pairs)
        assert pairs == {(b, a) for a, b in pairs}  # undirected: both directions
        r, c = kept // w, kept % w
        dr, dc = np.abs(r[:, None] - r[None]), np.abs(c[:, None] - c[None])
        neighbours = (dr + dc == 1) if connectivity == 4 else (np.maximum(dr, dc) == 1)
        # edges are exactly the grid links between kept patches
        assert pairs == {tuple(p) for p in np.argwhere(neighbours).tolist()}


# --------------------------------------------------------------------------------------
# GraphFuser
# --------------------------------------------------------------------------------------
@st.composite
def random_graph(draw, n_nodes, width, *, visual):
    edges = draw(st.lists(st.tuples(st.integers(0, max(n_nodes - 1, 0)),
                                    st.integers(0, max(n_nodes - 1, 0))),
                          max_size=3 * n_nodes if n_nodes else 0))
    pairs = sorted({(a, b) for a, b in edges if a != b} | {(b, a) for a, b in edges if a != b})
    edge_index = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t().contiguous()
    x = torch.from_numpy(draw(arrays(np.float32, (n_nodes, width),
                                     elements=st.floats(-3, 3, width=32))))
    if visual:
        patches = draw(st.lists(st.integers(0, 35), min_size=n_nodes, max_size=n_nodes,
                                unique=True))
        patch_index = torch.tensor(sorted(patches), dtype=torch.long)
        return Data(x=x, edge_index=edge_index, patch_id=patch_index,
                    pos=torch.stack([patch_index // 6, patch_index % 6], 1).float(),
                    attention=torch.rand(n_nodes))
    return Data(x=x, edge_index=edge_index, node_names=[f"n{j}" for j in range(n_nodes)])


@st.composite
def graph_pairs(draw):
    n = draw(st.integers(1, 4))
    dv, dr = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    visual = [draw(random_graph(draw(st.integers(0, 5)), dv, visual=True)) for _ in range(n)]
    report = [draw(random_graph(draw(st.integers(0, 5)), dr, visual=False)) for _ in range(n)]
    return StudySet(visual_graphs=visual, report_graphs=report)


@SETTINGS
@given(studies=graph_pairs())
def test_fuser_joins_both_graphs_of_every_study(studies):
    out = GraphFuser().fit(studies).transform(studies)
    assert len(out) == len(studies) and len(out.graphs) == len(studies)
    for v, r, g in zip(studies.visual_graphs, studies.report_graphs, out.graphs):
        k, m = v.num_nodes, r.num_nodes
        dv, dr = v.x.shape[1], r.x.shape[1]
        assert g.num_nodes == k + m and g.x.shape == (k + m, dv + dr + 1)
        assert g.node_type.tolist() == [0] * k + [1] * m
        assert torch.equal(g.x[:k, :dv], v.x) and torch.equal(g.x[k:, dv:dv + dr], r.x)
        edges = g.edge_index
        assert edges.dtype == torch.long
        assert ((edges >= 0) & (edges < k + m)).all()
        cross = 2 if k and m else 0  # one undirected link between the two graphs
        assert edges.shape[1] == v.edge_index.shape[1] + r.edge_index.shape[1] + cross
        between = (edges[0] < k) != (edges[1] < k)
        assert int(between.sum()) == cross


# --------------------------------------------------------------------------------------
# ReportGraphBuilder
# --------------------------------------------------------------------------------------
WORDS = ["no", "small", "right", "left", "lower", "lobe", "pneumonia", "consolidation",
         "effusion", "pleural", "possible", "pneumothorax", "cardiomegaly", "edema", "base",
         "without", "may", "represent", "atelectasis", ".", ",", "\n", "IMPRESSION:",
         "FINDINGS:", "fracture", "support", "devices", "opacity", "lung", "apex"]
REPORTS = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),
    st.none(),
)


@pytest.fixture(scope="module")
def builder():
    return ReportGraphBuilder().fit()


@SETTINGS
@given(reports=st.lists(REPORTS, min_size=1, max_size=5))
def test_report_graphs_from_any_text(builder, reports):
    out = builder.transform(reports)
    assert len(out) == len(reports) and len(out.report_graphs) == len(reports)
    for text, graph in zip(out.reports, out.report_graphs):
        m = graph.num_nodes
        assert graph.x.shape == (m, builder.n_features_out_)
        assert len(graph.node_names) == m == len(graph.node_status) == len(graph.node_kind)
        edges = graph.edge_index
        assert edges.shape[0] == 2 and ((edges >= 0) & (edges < max(m, 1))).all()
        if m:
            spans = graph.spans
            assert (spans[:, 0] >= 0).all() and (spans[:, 0] < spans[:, 1]).all()
            assert (spans[:, 1] <= len(text)).all()


# --------------------------------------------------------------------------------------
# The archive
# --------------------------------------------------------------------------------------
@SETTINGS
@given(studies=graph_pairs(), dtype=st.sampled_from(["float16", "float32"]))
def test_archive_round_trips_any_graphs(studies, dtype, tmp_path_factory):
    studies = GraphFuser().fit(studies).transform(studies)
    path = tmp_path_factory.mktemp("prop") / "a.npz"
    save_studies(path, studies, feature_dtype=dtype)
    back = load_studies(path)
    assert len(back) == len(studies)
    torch_dtype = getattr(torch, dtype)
    for field in ("visual_graphs", "report_graphs", "graphs"):
        for a, b in zip(getattr(studies, field), getattr(back, field)):
            assert set(a.keys()) == set(b.keys())
            for key in a.keys():
                u, v = a[key], b[key]
                if not torch.is_tensor(u):
                    assert u == v
                    continue
                if key == "x":
                    u = u.to(torch_dtype).float()
                assert u.dtype == v.dtype and u.shape == v.shape
                assert torch.equal(torch.nan_to_num(u, nan=-9), torch.nan_to_num(v, nan=-9))
