"""Pure graph helpers: grid edges, subgraphs, top-k, betweenness centrality, Data building."""

import pickle

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from neural_sk.graphs import (
    attribute_dicts,
    batch_subgraph_edges,
    betweenness_centrality,
    betweenness_centrality_batch,
    central_nodes,
    central_nodes_packed,
    data_factory,
    edge_blocks,
    grid_edges,
    make_data,
    subgraph_edges,
    top_k_mask,
)


def brute_grid_edges(h, w, connectivity):
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    edges = set()
    for r in range(h):
        for c in range(w):
            for dr, dc in steps:
                if 0 <= r + dr < h and 0 <= c + dc < w:
                    edges.add((r * w + c, (r + dr) * w + c + dc))
    return edges


def as_set(edge_index):
    return set(map(tuple, np.asarray(edge_index).T.tolist()))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (4, 1), (3, 4), (12, 12), (14, 14)])
@pytest.mark.parametrize("connectivity", [4, 8])
def test_grid_edges_match_brute_force(shape, connectivity):
    edges = grid_edges(shape, connectivity)
    assert edges.dtype == np.int64 and edges.shape[0] == 2
    assert as_set(edges) == brute_grid_edges(*shape, connectivity)
    assert len(as_set(edges)) == edges.shape[1]  # no duplicates
    # sorted by (source, target)
    order = np.lexsort((edges[1], edges[0]))
    assert (order == np.arange(edges.shape[1])).all()


def test_grid_edges_cached_and_read_only():
    a = grid_edges((6, 7))
    assert grid_edges((6, 7)) is a
    with pytest.raises(ValueError):
        a[0, 0] = 3
    with pytest.raises(ValueError, match="connectivity"):
        grid_edges((3, 3), connectivity=6)


def test_subgraph_edges_known_mask():
    # 3 x 3 grid, keep the L shape 0, 3, 6, 7 (column 0 and the bottom middle)
    mask = np.zeros(9, dtype=bool)
    mask[[0, 3, 6, 7]] = True
    edges = subgraph_edges(grid_edges((3, 3)), mask)
    # kept nodes relabelled 0->0, 3->1, 6->2, 7->3
    assert as_set(edges) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}
    edges8 = subgraph_edges(grid_edges((3, 3), 8), mask)
    assert as_set(edges8) == as_set(edges) | {(1, 3), (3, 1)}  # 3 and 7 are diagonal


def test_batch_subgraph_edges_equals_per_row_and_ignores_input_order():
    rng = np.random.default_rng(0)
    for shape, connectivity in [((5, 6), 4), ((4, 4), 8)]:
        edges = grid_edges(shape, connectivity)
        mask = rng.random((30, shape[0] * shape[1])) < 0.4
        mask[0] = False  # a study with nothing kept
        pairs, offsets = batch_subgraph_edges(edges, mask)
        shuffled = edges[:, rng.permutation(edges.shape[1])]
        pairs2, offsets2 = batch_subgraph_edges(shuffled, mask)
        np.testing.assert_array_equal(pairs, pairs2)
        np.testing.assert_array_equal(offsets, offsets2)
        for i in range(30):
            own = pairs[offsets[i]:offsets[i + 1]]
            assert as_set(own.T) == as_set(subgraph_edges(edges, mask[i]))
            assert len(own) == len(as_set(own.T))


def test_edge_blocks_layout():
    pairs = np.array([[0, 1], [1, 0], [2, 3], [0, 0]])
    offsets = np.array([0, 2, 2, 4])
    flat = edge_blocks(pairs, offsets)
    for i in range(3):
        block = flat[2 * offsets[i]:2 * offsets[i + 1]].reshape(2, -1)
        np.testing.assert_array_equal(block, pairs[offsets[i]:offsets[i + 1]].T)


def test_top_k_mask_ties_go_to_lower_index():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(50, 20)).astype(np.float32)  # many ties
    for k in (0, 1, 3, 7, 20, 25):
        mask = top_k_mask(scores, k)
        assert (mask.sum(axis=1) == min(k, 20)).all()
        # reference: stable sort by (-score, index)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ref = np.zeros_like(mask)
        np.put_along_axis(ref, order, True, axis=1)
        np.testing.assert_array_equal(mask, ref)


def random_graphs(seed, n_graphs=60):
    rng = np.random.default_rng(seed)
    edges, sizes = [], []
    for t in range(n_graphs):
        n = int(rng.integers(0, 40))  # both sides of the dense limit
        g = nx.gnp_random_graph(n, rng.uniform(0.05, 0.6), seed=int(rng.integers(1 << 30)))
        e = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2).T
        edges.append(np.concatenate([e, e[::-1]], axis=1))
        sizes.append(n)
    return edges, sizes


def nx_betweenness(edges, n):
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(np.asarray(edges).T.tolist())
    values = nx.betweenness_centrality(g)
    return np.array([values[i] for i in range(n)])


def test_betweenness_matches_networkx():
    edges, sizes = random_graphs(0)
    # graphs above the dense limit go to rustworkx: a grid, and a graph with isolated
    # nodes, self-loops, duplicates and one-direction edges
    edges.append(grid_edges((12, 12)))
    sizes.append(144)
    rng = np.random.default_rng(1)
    messy = rng.integers(0, 30, (2, 60))
    edges.append(np.concatenate([messy, messy[:, :10], [[3, 7], [3, 7]]], axis=1))
    sizes.append(34)
    # one-direction edges, self-loops and duplicates count as one undirected edge
    edges.append(np.array([[0, 1, 1, 2, 2], [1, 2, 1, 3, 3]]))
    sizes.append(4)
    values = betweenness_centrality_batch(edges, sizes)
    for e, n, v in zip(edges, sizes, values):
        np.testing.assert_allclose(v, nx_betweenness(e, n), atol=1e-9)
    raw = betweenness_centrality(edges[-1], 4, normalized=False)
    np.testing.assert_allclose(raw, [0, 2, 2, 0])


def test_central_nodes_are_maximal_and_ties_deterministic():
    edges, sizes = random_graphs(1)
    rng = np.random.default_rng(2)
    weights = [rng.integers(0, 3, n).astype(float) for n in sizes]
    plain = central_nodes(edges, sizes)
    weighted = central_nodes(edges, sizes, weights=weights)
    for e, n, c, cw, w in zip(edges, sizes, plain, weighted, weights):
        if n == 0:
            assert c == cw == -1
            continue
        bc = np.round(nx_betweenness(e, n), 9)
        assert c == max(range(n), key=lambda i: (bc[i], -i))
        assert cw == max(range(n), key=lambda i: (bc[i], w[i], -i))
    # the packed form gives the same answer
    counts = [e.shape[1] for e in edges]
    packed = central_nodes_packed(np.concatenate(edges, axis=1),
                                  np.repeat(np.arange(len(edges)), counts), sizes,
                                  weights=np.concatenate(weights))
    np.testing.assert_array_equal(packed, weighted)


def test_central_nodes_rejects_out_of_range_edges():
    with pytest.raises(ValueError, match="graph 1"):
        central_nodes([np.zeros((2, 0)), np.array([[0], [3]])], [2, 3])


def test_make_data_equals_public_constructor():
    attrs = dict(x=torch.randn(4, 3), edge_index=torch.tensor([[0, 1], [1, 0]]),
                 pos=torch.zeros(4, 2), patch_id=torch.arange(4), node_names=list("abcd"))
    fast, ref = make_data(**attrs, attention=None), Data(**attrs)
    assert fast.keys() == ref.keys() and "attention" not in fast
    for key in ref.keys():
        assert fast[key] is ref[key]
    assert fast.num_nodes == 4 and fast.num_edges == 2
    fast.y = torch.tensor([1])
    assert fast.y.item() == 1
    batch = Batch.from_data_list([fast, make_data(**attrs, y=torch.tensor([0]))])
    assert batch.num_graphs == 2 and batch.x.shape == (8, 3)
    assert batch.y.tolist() == [1, 0] and batch.edge_index[:, 2:].tolist() == [[4, 5], [5, 4]]
    again = pickle.loads(pickle.dumps(fast))
    assert torch.equal(again.x, fast.x) and again.node_names == list("abcd")


def test_betweenness_of_repeated_graphs_matches_networkx():
    # Many copies of a few small graphs (as kept-patch shapes are): each distinct graph
    # is computed once, and every copy must still get its own exact values.
    edges, sizes = random_graphs(3, n_graphs=12)
    rng = np.random.default_rng(4)
    picks = rng.integers(0, len(edges), 200)
    values = betweenness_centrality_batch([edges[i] for i in picks], [sizes[i] for i in picks])
    for i, v in zip(picks, values):
        np.testing.assert_allclose(v, nx_betweenness(edges[i], sizes[i]), atol=1e-9)


def test_central_nodes_packed_does_not_depend_on_edge_order():
    edges, sizes = random_graphs(5)
    counts = [e.shape[1] for e in edges]
    packed = np.concatenate(edges, axis=1)
    owner = np.repeat(np.arange(len(edges)), counts)
    weights = np.random.default_rng(6).random(sum(sizes))
    grouped = central_nodes_packed(packed, owner, sizes, weights=weights)
    order = np.random.default_rng(7).permutation(owner.size)
    shuffled = central_nodes_packed(packed[:, order], owner[order], sizes, weights=weights)
    np.testing.assert_array_equal(grouped, shuffled)
    with pytest.raises(ValueError, match="graph 2"):
        bad = packed.copy()
        bad[1, owner == 2] = sizes[2]
        central_nodes_packed(bad[:, order], owner[order], sizes)


def test_data_factory_equals_public_constructor():
    keys = ("x", "edge_index", "patch_id")
    build = data_factory(keys)
    attrs = dict(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]),
                 patch_id=torch.arange(3))
    fast, ref = build(dict(attrs)), Data(**attrs)
    assert type(fast) is Data and fast.keys() == ref.keys()
    assert all(fast[k] is ref[k] for k in keys)
    other = build(dict(attrs, x=torch.zeros(3, 2)))  # graphs do not share stores
    assert fast.x is attrs["x"] and other.x.sum() == 0
    batch = Batch.from_data_list([fast, other])
    assert batch.num_graphs == 2 and batch.edge_index[:, 2:].tolist() == [[3, 4], [4, 5]]
    again = pickle.loads(pickle.dumps(fast))
    assert torch.equal(again.x, fast.x) and again.num_edges == 2


def test_attribute_dicts_reads_every_graph_kind():
    class Tagged(Data):
        pass

    plain = make_data(x=torch.zeros(2, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))
    public = Data(x=torch.ones(1, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))
    tagged = Tagged(x=torch.ones(4, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))
    dicts = attribute_dicts([plain, public, tagged])
    for graph, d in zip([plain, public, tagged], dicts):
        assert d.keys() == graph.to_dict().keys() and d["x"] is graph.x
