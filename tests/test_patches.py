"""The patch grid in pixel space: one pixel-to-patch rule, exact tiles, lesion masks."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from neural_sk import AttentionScorer, plotting
from neural_sk.patches import (
    cell_bounds,
    paint_cells,
    extract_tiles,
    patch_lesion_masks,
    prune_image,
    rebuild_sparse_image,
    upsample_patch_scores,
)


@pytest.fixture(scope="module")
def study():
    """A 37 x 50 image (not divisible by its 4 x 6 grid) with a few kept patches."""
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, (37, 50), dtype=np.uint8)  # no zero pixel: blanks are visible
    keep = np.zeros(24, dtype=bool)
    keep[[0, 7, 13, 23]] = True
    return image, keep, (4, 6)


def _cell_slices(image_shape, grid, p):
    H, W = image_shape
    h, w = grid
    r, c = divmod(p, w)
    return (slice(r * H // h, (r + 1) * H // h), slice(c * W // w, (c + 1) * W // w))


# -- the grid --------------------------------------------------------------------------
def test_paint_cells_gives_each_pixel_its_cells_value():
    for size, cells in [(50, 7), (37, 4), (2, 3), (64, 64)]:
        bounds = cell_bounds(size, cells)
        assert bounds[0] == 0 and bounds[-1] == size
        painted = paint_cells(np.arange(cells)[None, None, :], (1, size))  # leading axis kept
        assert painted.shape == (1, 1, size)
        for i in range(cells):
            assert (painted[0, 0, bounds[i]:bounds[i + 1]] == i).all()


def test_attention_maps_and_plotting_upsample_alike_on_an_uneven_grid(monkeypatch):
    # 7 x 7 patches on 50 px: 7 does not divide 50, so a "repeat ceil(50/7) pixels" rule
    # (8-pixel cells, the last one 2 pixels) and the floor-bounds rule disagree.
    rng = np.random.default_rng(0)
    attention = rng.random((3, 49)).astype(np.float32)
    scorer = AttentionScorer(image_size=50)
    scorer.grid_shape_ = (7, 7)
    monkeypatch.setattr(scorer, "transform", lambda X: SimpleNamespace(attention=attention))
    maps = scorer.attention_maps(None)
    assert maps.shape == (3, 50, 50) and maps.dtype == np.float32
    for i in range(3):
        want = plotting.upsample_patch_scores(attention[i], (7, 7), (50, 50))
        np.testing.assert_array_equal(maps[i], want.astype(np.float32))
        # and the hottest patch's pixels are the ones the lesion metric maps back to it
        hot = maps[i] == maps[i].max()
        back = patch_lesion_masks(hot[None], (7, 7))[0]
        assert np.flatnonzero(back).tolist() == [int(attention[i].argmax())]


# -- lesion masks ----------------------------------------------------------------------
def _reference_lesion_patches(mask, grid_shape, min_fraction=0.0):
    """Slow, obvious per-cell loop: the definition written out."""
    H, W = mask.shape
    h, w = grid_shape
    out = np.zeros(h * w, dtype=bool)
    for i, j in itertools.product(range(h), range(w)):
        cell = mask[math.floor(i * H / h):math.floor((i + 1) * H / h),
                    math.floor(j * W / w):math.floor((j + 1) * W / w)]
        out[i * w + j] = cell.size > 0 and cell.any() and cell.mean() >= min_fraction
    return out


def test_patch_lesion_masks_hand_computed_uneven_grid():
    # H=10, W=7 on a 3 x 2 grid: row cells [0,3) [3,6) [6,10), column cells [0,3) [3,7).
    mask = np.zeros((10, 7), dtype=bool)
    mask[5, 3] = True   # row cell 1, column cell 1 -> patch 3
    mask[6, 2] = True   # row cell 2, column cell 0 -> patch 4
    got = patch_lesion_masks(mask[None], (3, 2))
    np.testing.assert_array_equal(got, [[False, False, False, True, True, False]])
    # the pixel just above a boundary stays in the cell above
    mask2 = np.zeros((10, 7), dtype=bool)
    mask2[2, 2] = True
    np.testing.assert_array_equal(patch_lesion_masks(mask2[None], (3, 2))[0],
                                  [True, False, False, False, False, False])


def test_patch_lesion_masks_matches_definition_on_random_masks():
    rng = np.random.default_rng(0)
    masks = rng.random((6, 23, 31)) < 0.02
    for grid in [(3, 4), (7, 5), (23, 31), (1, 1)]:
        for frac in (0.0, 0.1):
            got = patch_lesion_masks(masks, grid, min_fraction=frac)
            want = np.stack([_reference_lesion_patches(m, grid, frac) for m in masks])
            np.testing.assert_array_equal(got, want, err_msg=f"grid {grid} min_fraction {frac}")


def test_patch_lesion_masks_grid_finer_than_image_has_empty_cells():
    # H=2 with h=3: cell bounds 0, 0, 1, 2 -> the first row cell is empty and never touches.
    mask = np.ones((1, 2, 2), dtype=bool)
    got = patch_lesion_masks(mask, (3, 1))
    np.testing.assert_array_equal(got, [[False, True, True]])


def test_patch_lesion_masks_min_fraction():
    mask = np.zeros((1, 6, 6), dtype=bool)
    mask[0, :2, :2] = True  # 4 of the 9 pixels of cell 0 on a 2 x 2 grid
    assert patch_lesion_masks(mask, (2, 2), min_fraction=0.4)[0, 0]
    assert not patch_lesion_masks(mask, (2, 2), min_fraction=0.5)[0, 0]


def test_patch_lesion_masks_list_with_mixed_sizes_and_none():
    a = np.zeros((8, 8), dtype=bool); a[7, 7] = True
    b = np.zeros((12, 4), dtype=bool); b[0, 0] = True
    got = patch_lesion_masks([a, None, b], (2, 2))
    np.testing.assert_array_equal(got, [[0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]])
    assert got.dtype == bool and got.shape == (3, 4)


def test_patch_lesion_masks_rejects_bad_input():
    with pytest.raises(ValueError, match="wrap it"):
        patch_lesion_masks(np.zeros((4, 4), dtype=bool), (2, 2))
    with pytest.raises(ValueError, match="study 1"):
        patch_lesion_masks([np.zeros((4, 4)), np.zeros(4)], (2, 2))
    with pytest.raises(ValueError, match="min_fraction"):
        patch_lesion_masks(np.zeros((1, 4, 4)), (2, 2), min_fraction=2)


# -- upsampling and tiles -------------------------------------------------------------
def test_upsample_nearest_agrees_with_patch_lesion_masks():
    grid, shape = (5, 7), (23, 31)
    for p in range(35):
        onehot = np.zeros(35)
        onehot[p] = 1
        pixels = upsample_patch_scores(onehot, grid, shape) > 0.5
        back = patch_lesion_masks(pixels[None], grid)[0]
        assert np.flatnonzero(back).tolist() == [p]


def test_upsample_bilinear_is_smooth_and_bounded():
    scores = np.arange(16, dtype=float)
    up = upsample_patch_scores(scores, (4, 4), (32, 32), mode="bilinear")
    assert up.shape == (32, 32)
    assert up.min() >= scores.min() and up.max() <= scores.max()
    assert np.all(np.diff(up, axis=1) >= 0)  # scores grow along each row
    with pytest.raises(ValueError, match="mode"):
        upsample_patch_scores(scores, (4, 4), (8, 8), mode="cubic")


def test_prune_image_blanks_exactly_the_other_cells(study):
    image, keep, grid = study
    pruned = prune_image(image, keep, grid)
    for p in range(24):
        cell = _cell_slices(image.shape, grid, p)
        if keep[p]:
            np.testing.assert_array_equal(pruned[cell], image[cell])
        else:
            assert (pruned[cell] == 0).all(), f"patch {p} should be blanked"


def test_tiles_round_trip(study):
    image, keep, grid = study
    tiles, index = extract_tiles(image, keep, grid)
    assert tiles.shape == (4, 10, 9)  # largest cell: ceil(37/4) x ceil(50/6)
    np.testing.assert_array_equal(index, np.flatnonzero(keep))
    rebuilt = rebuild_sparse_image(tiles, index, grid, image.shape)
    np.testing.assert_array_equal(rebuilt, prune_image(image, keep, grid))
    assert rebuilt.dtype == image.dtype
    # all patches -> the original image exactly
    all_tiles, all_index = extract_tiles(image, np.arange(24), grid)
    rebuilt_all = rebuild_sparse_image(all_tiles, all_index, grid, image.shape)
    np.testing.assert_array_equal(rebuilt_all, image)


def test_rebuild_accepts_exact_size_tiles_and_rejects_small_ones(study):
    image, keep, grid = study
    index = np.flatnonzero(keep)
    exact = [image[_cell_slices(image.shape, grid, p)] for p in index]
    rebuilt = rebuild_sparse_image(exact, index, grid, image.shape, fill=7)
    assert (rebuilt[~(prune_image(np.ones_like(image), keep, grid) == 1)] == 7).all()
    with pytest.raises(ValueError, match="tile 0"):
        rebuild_sparse_image([np.zeros((2, 2))] * 4, index, grid, image.shape)
    with pytest.raises(ValueError, match="tiles for"):
        rebuild_sparse_image(exact[:2], index, grid, image.shape)


def test_tiles_need_pixels_not_files(study, tmp_path):
    _, keep, grid = study
    for image in (str(tmp_path / "x.png"), np.zeros((8, 8, 3))):
        with pytest.raises(TypeError, match="read_image"):
            extract_tiles(image, keep, grid)
        with pytest.raises(TypeError, match="read_image"):
            prune_image(image, keep, grid)
    # a single-channel stack is an image
    assert prune_image(np.ones((8, 12, 1)), keep, grid).shape == (8, 12)
