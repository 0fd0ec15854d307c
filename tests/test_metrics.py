"""Localisation and byte metrics on planted masks, maps and graphs with known answers."""

import io
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch_geometric.data import Data

from neural_sk import StudySet
from neural_sk.metrics import (
    enrichment,
    graph_nbytes,
    hit_at_k,
    hit_at_k_chance,
    hit_rate_chance,
    image_nbytes,
    kept_graph_bytes,
    lesion_hit_rate,
    patch_lesion_masks,
    patch_reduction,
    source_nbytes,
    top_fraction_chance,
    top_fraction_hit_rate,
)


# -- hit rates and chance ---------------------------------------------------------------
@pytest.fixture(scope="module")
def planted():
    """Four positives with a one-cell lesion at a known patch, two negatives, 8 x 8 grid."""
    grid = (8, 8)
    lesion_cells = [3, 17, 40, 63]
    masks = np.zeros((6, 64, 64), dtype=bool)
    for i, p in enumerate(lesion_cells):
        r, c = divmod(p, 8)
        masks[i, r * 8 + 2:r * 8 + 6, c * 8 + 2:c * 8 + 6] = True
    lesion = patch_lesion_masks(masks, grid)
    peak = np.full((6, 64), 1.0 / 64)
    for i, p in enumerate(lesion_cells):
        peak[i] = 0.5 / 63
        peak[i, p] = 0.5
    return {"lesion": lesion, "cells": lesion_cells, "peak": peak, "grid": grid}


def test_planted_lesion_maps_to_its_cell(planted):
    lesion = planted["lesion"]
    for i, p in enumerate(planted["cells"]):
        assert np.flatnonzero(lesion[i]).tolist() == [p]
    assert not lesion[4:].any()


def test_peaked_map_hits_and_is_enriched(planted):
    lesion, peak = planted["lesion"], planted["peak"]
    assert hit_at_k(peak, lesion, k=1) == 1.0
    assert top_fraction_hit_rate(peak, lesion, fraction=0.05) == 1.0
    enr = enrichment(peak, lesion)
    assert np.all(enr[:4] > 10)
    assert np.isnan(enr[4:]).all()  # negatives have no lesion: undefined, not counted
    assert hit_at_k_chance(lesion, k=1) == pytest.approx(1 / 64)
    # a map that points one cell away never hits at k=1
    shifted = np.roll(peak, 1, axis=1)
    assert hit_at_k(shifted, lesion, k=1) == 0.0


def test_uniform_map_has_enrichment_one(planted):
    lesion = planted["lesion"]
    uniform = np.full(lesion.shape, 1.0 / lesion.shape[1])
    np.testing.assert_allclose(enrichment(uniform, lesion)[:4], 1.0)


def test_hit_rate_uses_positives_only_or_labels(planted):
    lesion = planted["lesion"]
    keep = np.zeros_like(lesion)
    keep[0, planted["cells"][0]] = True
    keep[1, planted["cells"][1]] = True
    keep[4:, :] = True  # negatives keep everything: must not count
    assert lesion_hit_rate(keep, lesion) == 0.5
    # with labels, study 4 becomes a positive with no lesion drawn: a miss
    y = np.array([1, 1, 1, 1, 1, 0])
    assert lesion_hit_rate(keep, lesion, y=y) == pytest.approx(2 / 5)
    assert math.isnan(lesion_hit_rate(keep[4:], lesion[4:]))


def test_chance_matches_exact_enumeration():
    n_patches, lesion_idx, k = 6, {1, 4}, 2
    lesion = np.zeros((1, n_patches), dtype=bool)
    lesion[0, list(lesion_idx)] = True
    subsets = list(itertools.combinations(range(n_patches), k))
    exact = np.mean([bool(lesion_idx & set(s)) for s in subsets])
    assert hit_rate_chance(k, lesion) == pytest.approx(exact)
    # every k-subset hits when fewer than k patches are lesion-free
    assert hit_rate_chance(5, lesion) == 1.0
    assert hit_rate_chance(0, lesion) == 0.0


def test_chance_matches_monte_carlo():
    rng = np.random.default_rng(0)
    n, n_patches, k, draws = 20, 196, 5, 4000
    lesion = np.zeros((n, n_patches), dtype=bool)
    for i in range(n):
        size = rng.integers(1, 20)
        lesion[i, rng.choice(n_patches, size=size, replace=False)] = True
    hits = []
    for i in range(n):
        picks = np.argsort(rng.random((draws, n_patches)), axis=1)[:, :k]
        hits.append(lesion[i][picks].any(axis=1).mean())
    mc = float(np.mean(hits))
    # standard error is about 0.0016 with these draws
    assert hit_rate_chance(k, lesion) == pytest.approx(mc, abs=0.01)
    # same answer from counts, a per-study array, and a keep mask with k per row
    keep = np.zeros_like(lesion)
    keep[:, :k] = True
    assert hit_rate_chance(keep, lesion) == pytest.approx(hit_rate_chance(np.full(n, k), lesion))
    assert top_fraction_chance(lesion, fraction=k / n_patches) == pytest.approx(
        hit_rate_chance(k, lesion))


def test_chance_is_stable_on_large_grids():
    lesion = np.zeros((1, 10_000), dtype=bool)
    lesion[0, :3] = True
    value = hit_rate_chance(500, lesion)
    assert 0 < value < 1 and np.isfinite(value)
    assert value == pytest.approx(1 - (1 - 0.05) ** 3, abs=1e-3)


def test_top_fraction_keeps_ceil_fraction_patches():
    # 10 patches, fraction 0.25 -> 3 patches; the lesion is the 3rd-best patch.
    lesion = np.zeros((1, 10), dtype=bool)
    lesion[0, 7] = True
    scores = np.linspace(1, 0, 10)[None]
    scores[0, 7] = 0.85  # rank 3 (after 1.0 and 0.889)
    assert top_fraction_hit_rate(scores, lesion, fraction=0.25) == 1.0
    assert top_fraction_hit_rate(scores, lesion, fraction=0.1) == 0.0
    assert hit_at_k(scores, lesion, k=3) == 1.0
    assert hit_at_k(scores, lesion, k=2) == 0.0


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="scores has shape"):
        enrichment(np.zeros((2, 4)), np.zeros((2, 5), dtype=bool))
    with pytest.raises(ValueError, match="keep_mask"):
        lesion_hit_rate(np.zeros((3, 4), dtype=bool), np.zeros((2, 4), dtype=bool))


# -- bytes -----------------------------------------------------------------------------
def _visual_graph(n_nodes, d=16, max_patch=195):
    src = torch.arange(n_nodes - 1)
    edge_index = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])
    return Data(
        x=torch.randn(n_nodes, d),
        edge_index=edge_index,
        pos=torch.stack([torch.arange(n_nodes) % 14, torch.arange(n_nodes) // 14], 1).float(),
        patch_id=torch.linspace(0, max_patch, n_nodes).long(),
        attention=torch.rand(n_nodes),
    )


def test_graph_nbytes_is_what_the_archive_writes(tmp_path):
    from neural_sk.io import archive_nbytes, save_studies

    g = _visual_graph(5)  # 5 nodes, 8 directed edges, grid coordinates < 14
    for dtype in ("float16", "float32", "int8"):
        path = tmp_path / f"{dtype}.npz"
        save_studies(path, StudySet(visual_graphs=[g]), feature_dtype=dtype)
        assert graph_nbytes(g, dtype) == archive_nbytes(path)["fields"]["visual_graphs"]
    assert graph_nbytes(g, "bfloat16") == graph_nbytes(g, "float16")
    # x 5*16 float16 and its offsets (two uint8), edge_index 16 uint8 and its offsets
    assert graph_nbytes(g, "float16", attrs=("x", "edge_index")) == 160 + 2 + 16 + 2
    assert graph_nbytes(g, "int8", attrs=("x",)) == 80 + 4 + 2  # int8, one scale, offsets


def test_graph_nbytes_widens_edge_type_with_node_count():
    big = _visual_graph(300, d=2, max_patch=299)  # 300 nodes: indices need uint16
    edges = 2 * 299
    assert graph_nbytes(big, "float16", attrs=("edge_index",)) == 2 * edges * 2 + 2 * 2
    small = _visual_graph(256, d=2)
    assert graph_nbytes(small, "float16", attrs=("edge_index",)) == 2 * 2 * 255 + 2 * 2


def test_graph_nbytes_empty_graph_is_small():
    empty = Data(x=torch.zeros(0, 8), edge_index=torch.zeros(2, 0, dtype=torch.long))
    assert graph_nbytes(empty) <= 4  # the offsets only


def test_kept_graph_bytes_per_study():
    graphs = [_visual_graph(3), _visual_graph(6)]
    s = StudySet(visual_graphs=graphs)
    got = kept_graph_bytes(s, dtype="float32")
    np.testing.assert_array_equal(got, [graph_nbytes(g, "float32") for g in graphs])
    assert got[1] > got[0]
    np.testing.assert_array_equal(kept_graph_bytes(graphs), kept_graph_bytes(s))
    with pytest.raises(ValueError, match="graphs"):
        kept_graph_bytes(s, field="graphs")


def test_image_nbytes_is_the_png_size():
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="PNG")
    assert image_nbytes(noisy) == buf.tell()
    assert image_nbytes(noisy, "raw") == 40 * 30
    assert image_nbytes(np.zeros((40, 30), dtype=np.uint8)) < image_nbytes(noisy)
    # floats in [0, 1] are stored as their 8-bit version
    assert image_nbytes(noisy / 255.0) == image_nbytes(noisy)
    with pytest.raises(ValueError, match="format"):
        image_nbytes(noisy, "gif")


def test_source_nbytes(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(path)
    assert source_nbytes(path) == path.stat().st_size
    assert source_nbytes(str(path)) == path.stat().st_size
    with pytest.raises(TypeError, match="image_nbytes"):
        source_nbytes(np.zeros((8, 8)))


def test_patch_reduction():
    keep = np.zeros((3, 200), dtype=bool)
    keep[0, :4] = True
    keep[1, :5] = True
    keep[2, :6] = True
    assert patch_reduction(keep) == pytest.approx(1 - 15 / 600)
    np.testing.assert_allclose(patch_reduction(keep, per_study=True), [0.98, 0.975, 0.97])
