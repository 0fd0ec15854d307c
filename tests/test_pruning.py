"""PatchPruner: which patches are kept, the grid graph they form, and parameter checks."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from neural_sk import StudySet
from neural_sk.pruning import PatchPruner

H, W, D = 6, 7, 5
P = H * W


def brute_edges(kept, connectivity=4):
    """Undirected kept-patch neighbour pairs, numbered by position among the kept patches."""
    kept = sorted(kept)
    where = {p: i for i, p in enumerate(kept)}
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    out = set()
    for p in kept:
        r, c = divmod(p, W)
        for dr, dc in steps:
            if 0 <= r + dr < H and 0 <= c + dc < W and (r + dr) * W + c + dc in where:
                out.add((where[p], where[(r + dr) * W + c + dc]))
    return out


def edge_set(graph):
    return set(map(tuple, graph.edge_index.T.tolist()))


@pytest.fixture(scope="module")
def planted():
    """Studies whose attention has a few planted peaks (the patches to keep)."""
    rng = np.random.default_rng(0)
    n = 8
    att = rng.uniform(0.1, 1.0, size=(n, P))
    peaks = [rng.choice(P, size=4, replace=False) for _ in range(n)]
    for i, p in enumerate(peaks):
        att[i, p] = 10.0 + np.arange(4)  # distinct, far above the rest
    att = (att / att.sum(axis=1, keepdims=True)).astype(np.float32)
    feats = rng.normal(size=(n, P, D)).astype(np.float32)
    studies = StudySet(ids=[f"s{i}" for i in range(n)], attention=att, patch_features=feats,
                       grid_shape=(H, W))
    return studies, peaks


def test_keeps_exactly_the_planted_patches(planted):
    studies, peaks = planted
    out = PatchPruner(keep_ratio=None, top_k=4, node_features="features").fit_transform(studies)
    assert len(out) == len(studies) and list(out.ids) == list(studies.ids)
    assert studies.keep_mask is None and studies.visual_graphs is None  # input untouched
    for i, peak in enumerate(peaks):
        assert set(np.flatnonzero(out.keep_mask[i])) == set(peak)
        g = out.visual_graphs[i]
        kept = np.sort(peak)
        assert g.patch_id.tolist() == kept.tolist()  # nodes in patch order
        np.testing.assert_array_equal(g.x.numpy(), studies.patch_features[i, kept])
        np.testing.assert_array_equal(g.pos.numpy(), np.stack([kept // W, kept % W], 1))
        np.testing.assert_array_equal(g.attention.numpy(), studies.attention[i, kept])
        assert g.x.dtype == g.pos.dtype == g.attention.dtype == torch.float32
        assert g.edge_index.dtype == g.patch_id.dtype == torch.int64
        assert edge_set(g) == brute_edges(kept)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_neighbour_edges_of_a_known_mask_are_exact(connectivity):
    # an L, a diagonal pair and an isolated patch on the 6 x 7 grid
    kept = [0, 7, 14, 15, 30, 38, 41]
    att = np.full((1, P), 0.001, dtype=np.float32)
    att[0, kept] = 0.5
    studies = StudySet(attention=att, patch_features=np.zeros((1, P, D), np.float32),
                       grid_shape=(H, W))
    g = PatchPruner(keep_ratio=None, top_k=len(kept), connectivity=connectivity
                    ).fit_transform(studies).visual_graphs[0]
    assert g.patch_id.tolist() == kept
    assert edge_set(g) == brute_edges(kept, connectivity)
    assert g.edge_index.shape[1] == len(brute_edges(kept, connectivity))
    if connectivity == 4:
        assert edge_set(g) == {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}


def test_ties_are_broken_deterministically():
    att = np.full((3, P), 1.0 / P, dtype=np.float32)
    att[1, [5, 9, 20]] = 0.5  # three equal peaks, keep two: the lower indices
    studies = StudySet(attention=att, patch_features=np.zeros((3, P, D), np.float32),
                       grid_shape=(H, W))
    pruner = PatchPruner(keep_ratio=None, top_k=2).fit(studies)
    first = pruner.transform(studies).keep_mask
    assert np.flatnonzero(first[0]).tolist() == [0, 1]
    assert np.flatnonzero(first[1]).tolist() == [5, 9]
    np.testing.assert_array_equal(pruner.transform(studies).keep_mask, first)


@pytest.mark.parametrize("grid, expected", [((14, 14), 5), ((12, 12), 4), ((4, 4), 1)])
def test_keep_ratio_count_is_ceil(grid, expected):
    n_patches = grid[0] * grid[1]
    att = np.random.default_rng(0).dirichlet(np.ones(n_patches), size=3).astype(np.float32)
    studies = StudySet(attention=att, patch_features=np.zeros((3, n_patches, 2), np.float32),
                       grid_shape=grid)
    pruner = PatchPruner()  # keep_ratio=0.023, the paper's setting
    out = pruner.fit_transform(studies)
    assert (out.keep_mask.sum(axis=1) == expected).all()
    np.testing.assert_allclose(pruner.kept_fraction(out), expected / n_patches)
    assert pruner.kept_fraction(out, average=True) == pytest.approx(expected / n_patches)


def test_count_rules(planted):
    studies, _ = planted
    count = lambda **kw: PatchPruner(**kw).fit_transform(studies).keep_mask.sum(axis=1)
    assert (count(keep_ratio=4 / P) == 4).all()  # exact products are not rounded up
    assert (count(keep_ratio=0.001) == 1).all()  # at least min_patches
    assert (count(keep_ratio=0.001, min_patches=3) == 3).all()
    assert (count(keep_ratio=1.0) == P).all()
    assert (count(keep_ratio=None, top_k=1000) == P).all()
    assert (count(keep_ratio=None, top_k=2, min_patches=5) == 5).all()
    # threshold: every patch with attention >= threshold, at least min_patches
    thr = 2.0 / P
    expected = np.maximum((studies.attention >= thr).sum(axis=1), 1)
    np.testing.assert_array_equal(count(keep_ratio=None, threshold=thr), expected)
    assert (count(keep_ratio=None, threshold=1.0, min_patches=2) == 2).all()


def test_random_ranking_is_a_seeded_control(planted):
    studies, peaks = planted
    by_att = PatchPruner(keep_ratio=None, top_k=4).fit_transform(studies).keep_mask
    rand = lambda seed: PatchPruner(keep_ratio=None, top_k=4, rank_by="random",
                                    random_state=seed).fit_transform(studies).keep_mask
    a, b, c = rand(0), rand(0), rand(1)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a != by_att).any()
    assert (a.sum(axis=1) == 4).all()  # as many patches as attention keeps
    thr = 2.0 / P
    r = PatchPruner(keep_ratio=None, threshold=thr, rank_by="random",
                    random_state=0).fit_transform(studies).keep_mask
    np.testing.assert_array_equal(r.sum(axis=1),
                                  np.maximum((studies.attention >= thr).sum(axis=1), 1))


def test_node_feature_options(planted):
    studies, _ = planted
    pruner = PatchPruner(keep_ratio=None, top_k=4, node_features="features+attention+position")
    out = pruner.fit_transform(studies)
    assert pruner.n_node_features_ == D + 3
    g = out.visual_graphs[0]
    kept = g.patch_id.numpy()
    np.testing.assert_array_equal(g.x[:, :D].numpy(), studies.patch_features[0, kept])
    np.testing.assert_allclose(g.x[:, D].numpy(), studies.attention[0, kept] * P, rtol=1e-6)
    np.testing.assert_allclose(g.x[:, D + 1].numpy(), (kept // W) / (H - 1), rtol=1e-6)
    np.testing.assert_allclose(g.x[:, D + 2].numpy(), (kept % W) / (W - 1), rtol=1e-6)
    assert PatchPruner(node_features="features+position").fit(studies).n_node_features_ == D + 2


def test_half_precision_features_give_float32_graphs(planted):
    studies, _ = planted
    half = studies.replace(patch_features=studies.patch_features.astype(np.float16))
    g = PatchPruner(keep_ratio=None, top_k=4).fit_transform(half).visual_graphs[0]
    assert g.x.dtype == torch.float32


def test_feature_layout_does_not_change_the_graphs(planted):
    # Contiguous features are gathered through a flat view; other layouts must agree.
    studies, _ = planted
    pruner = PatchPruner(keep_ratio=None, top_k=4, node_features="features+attention")
    ref = pruner.fit_transform(studies).visual_graphs
    strided = np.repeat(studies.patch_features, 2, axis=2)[:, :, ::2]
    assert not strided.flags.c_contiguous
    for feats in (strided, np.asfortranarray(studies.patch_features)):
        out = pruner.transform(studies.replace(patch_features=feats)).visual_graphs
        for a, b in zip(ref, out):
            assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)
    half = studies.patch_features.astype(np.float16)
    g = pruner.transform(studies.replace(patch_features=half)).visual_graphs[0]
    np.testing.assert_array_equal(g.x[:, :D].numpy(),
                                  half[0, g.patch_id.numpy()].astype(np.float32))


def test_pickled_graph_carries_only_its_own_bytes(planted):
    studies, _ = planted
    out = PatchPruner(keep_ratio=None, top_k=4).fit_transform(studies)
    one = len(pickle.dumps(out.visual_graphs[0]))
    everything = len(pickle.dumps(list(out.visual_graphs)))
    assert one < 2 * everything / len(studies)
    # The packed list itself pickles smaller than its graphs one by one.
    assert len(pickle.dumps(out.visual_graphs)) < everything


@pytest.mark.parametrize("params, name", [
    ({"connectivity": 6}, "connectivity"),
    ({"rank_by": "entropy"}, "rank_by"),
    ({"keep_ratio": 0.0}, "keep_ratio"),
    ({"keep_ratio": 1.5}, "keep_ratio"),
    ({"keep_ratio": None, "top_k": 0}, "top_k"),
    ({"min_patches": 0}, "min_patches"),
    ({"node_features": "pixels"}, "node_features"),
])
def test_invalid_parameters_fail_at_fit_naming_them(planted, params, name):
    studies, _ = planted
    pruner = PatchPruner(**params)  # construction never fails
    with pytest.raises(ValueError, match=name):
        pruner.fit(studies)


def test_exactly_one_rule(planted):
    studies, _ = planted
    with pytest.raises(ValueError, match="keep_ratio=0.023, top_k=3"):
        PatchPruner(top_k=3).fit(studies)
    with pytest.raises(ValueError, match="all are None"):
        PatchPruner(keep_ratio=None).fit(studies)


def test_bad_inputs_are_named(planted):
    studies, _ = planted
    bad = studies.attention.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="s3"):
        PatchPruner().fit(studies.replace(attention=bad))
    with pytest.raises(ValueError, match="patch_features"):
        PatchPruner().fit(studies.replace(patch_features=None))
    with pytest.raises(TypeError, match="StudySet"):
        PatchPruner().fit(np.zeros((2, 3)))
    pruner = PatchPruner().fit(studies)
    other = StudySet(attention=np.full((1, 16), 1 / 16, np.float32),
                     patch_features=np.zeros((1, 16, D), np.float32), grid_shape=(4, 4))
    with pytest.raises(ValueError, match="grid"):
        pruner.transform(other)


def test_clone_and_empty_study_set(planted):
    studies, _ = planted
    pruner = clone(PatchPruner(keep_ratio=0.1, connectivity=8))
    assert pruner.get_params()["connectivity"] == 8
    out = pruner.fit(studies).transform(studies[np.zeros(len(studies), dtype=bool)])
    assert len(out) == 0 and out.keep_mask.shape == (0, P) and len(out.visual_graphs) == 0
