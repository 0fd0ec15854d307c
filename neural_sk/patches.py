"""The patch grid in pixel space: cell bounds, lesion masks, upsampling, tiles.

One rule maps pixels to patches everywhere in neural_sk (the lesion metrics, the scorer's
attention maps, the figures and the archive's pixel tiles): on an ``H x W`` image with an
``h x w`` grid, cell ``i`` covers rows ``[floor(i*H/h), floor((i+1)*H/h))`` and likewise for
columns, the way a strided CNN maps pixels to its feature grid. Cells differ by at most one
pixel when ``h`` does not divide ``H``.

Patches are numbered row-major: patch ``p`` sits at row ``p // w`` and column ``p % w``.
Everything here is pure NumPy on arrays; reading image files is
:mod:`neural_sk.datasets.images`' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_grid_shape",
    "cell_bounds",
    "as_patch_index",
    "as_patch_grid",
    "paint_cells",
    "patch_lesion_masks",
    "upsample_patch_scores",
    "prune_image",
    "extract_tiles",
    "rebuild_sparse_image",
]


def check_grid_shape(grid_shape: Sequence[int]) -> tuple[int, int]:
    """Validate a patch grid ``(h, w)`` and return it as two ints.

    Parameters
    ----------
    grid_shape : tuple of int (h, w)
        The patch grid.

    Returns
    -------
    tuple of int
        ``(h, w)``.

    Examples
    --------
    >>> check_grid_shape([7, 7])
    (7, 7)
    """
    try:
        h, w = (int(v) for v in grid_shape)
    except (TypeError, ValueError):
        raise ValueError(f"grid_shape must be a pair (h, w), got {grid_shape!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"grid_shape must be positive, got {(h, w)}")
    return h, w


def cell_bounds(size: int, cells: int) -> np.ndarray:
    """Pixel boundaries of the grid cells along one axis.

    Parameters
    ----------
    size : int
        Pixels along the axis (``H`` or ``W``).
    cells : int
        Cells along the axis (``h`` or ``w``).

    Returns
    -------
    ndarray of shape (cells + 1,), int64
        ``floor(i * size / cells)`` for ``i = 0..cells``: cell ``i`` covers pixels
        ``[bounds[i], bounds[i + 1])``.

    Examples
    --------
    >>> cell_bounds(50, 7)
    array([ 0,  7, 14, 21, 28, 35, 42, 50])
    """
    # Integer floor division avoids float round-off putting a boundary one pixel off.
    return (np.arange(cells + 1, dtype=np.int64) * size) // cells


# --------------------------------------------------------------------------------------
# Lesion masks
# --------------------------------------------------------------------------------------
def _lesion_counts(masks: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Lesion pixel count and pixel count of every grid cell, for a stack [n, H, W]."""
    n, H, W = masks.shape
    rows, cols = cell_bounds(H, h), cell_bounds(W, w)
    # An integral image gives every cell's count with two subtractions and copes with
    # empty cells (H < h), which np.add.reduceat would get wrong.
    integral = np.zeros((n, H + 1, W + 1), dtype=np.int64)
    np.cumsum(np.cumsum(masks, axis=1, dtype=np.int64), axis=2, out=integral[:, 1:, 1:])
    counts = (
        integral[:, rows[1:, None], cols[None, 1:]]
        - integral[:, rows[:-1, None], cols[None, 1:]]
        - integral[:, rows[1:, None], cols[None, :-1]]
        + integral[:, rows[:-1, None], cols[None, :-1]]
    )
    sizes = np.diff(rows)[:, None] * np.diff(cols)[None, :]
    return counts.reshape(n, h * w), sizes.reshape(h * w)


def patch_lesion_masks(
    masks: np.ndarray | Sequence[np.ndarray | None],
    grid_shape: Sequence[int],
    *,
    min_fraction: float = 0.0,
) -> np.ndarray:
    """Which patches of the grid touch the lesion, per study (cells as in :func:`cell_bounds`).

    Parameters
    ----------
    masks : ndarray of shape (n, H, W) or list of (H_i, W_i) arrays or None
        Lesion pixels (truthy = lesion). A list may mix image sizes; ``None`` means no
        lesion (all patches False).
    grid_shape : tuple of int (h, w)
        The patch grid.
    min_fraction : float, default=0.0
        A patch touches the lesion when the share of its pixels that are lesion is
        greater than zero and at least ``min_fraction``. ``0`` means any lesion pixel.

    Returns
    -------
    ndarray of shape (n, h * w), bool
        Row-major over the grid.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 4, 4), dtype=bool)
    >>> m[0, 0, 3] = True                      # top-right pixel
    >>> patch_lesion_masks(m, (2, 2)).astype(int)
    array([[0, 1, 0, 0]])
    >>> m[0, :2, 2:] = True                    # the whole top-right cell
    >>> m[0, 3, 0] = True                      # one pixel of the bottom-left cell
    >>> patch_lesion_masks(m, (2, 2), min_fraction=0.5).astype(int)
    array([[0, 1, 0, 0]])
    """
    h, w = check_grid_shape(grid_shape)
    if not 0.0 <= float(min_fraction) <= 1.0:
        raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction!r}")

    def decide(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = counts / np.maximum(sizes, 1)
        return (counts > 0) & (share >= min_fraction)

    if isinstance(masks, np.ndarray) and masks.dtype != object:
        if masks.ndim == 2:
            raise ValueError(
                f"masks must be a stack (n, H, W) or a list of masks; got one {masks.shape} "
                "mask: wrap it as masks[None]"
            )
        if masks.ndim != 3:
            raise ValueError(f"masks must have shape (n, H, W), got {masks.shape}")
        return decide(*_lesion_counts(masks.astype(bool, copy=False), h, w))

    masks = list(masks)
    out = np.zeros((len(masks), h * w), dtype=bool)
    # Group studies by image size so each size is one vectorised pass.
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(masks):
        if m is None:
            continue
        shape = np.shape(m)
        if len(shape) != 2:
            raise ValueError(f"mask of study {i} must be 2-D (H, W), got shape {shape}")
        by_shape.setdefault(shape, []).append(i)
    for index in by_shape.values():
        stack = np.stack([np.asarray(masks[i], dtype=bool) for i in index])
        out[index] = decide(*_lesion_counts(stack, h, w))
    return out


# --------------------------------------------------------------------------------------
# Patch values to pixels
# --------------------------------------------------------------------------------------
def as_patch_grid(values: Any, grid_shape: Sequence[int], *, name: str = "values") -> np.ndarray:
    """One study's per-patch values, flat ``(h * w,)`` or ``(h, w)``, as an ``(h, w)`` array.

    Parameters
    ----------
    values : array-like of shape (h * w,) or (h, w)
        One value per patch, row-major.
    grid_shape : tuple of int (h, w)
        The patch grid.
    name : str, default="values"
        What the values are, for the error message.

    Returns
    -------
    ndarray of shape (h, w)
        A view of the values when possible.

    Examples
    --------
    >>> as_patch_grid([1, 2, 3, 4, 5, 6], (2, 3))
    array([[1, 2, 3],
           [4, 5, 6]])
    """
    h, w = check_grid_shape(grid_shape)
    arr = np.asarray(values)
    if arr.shape not in ((h * w,), (h, w)):
        raise ValueError(
            f"{name} must have shape ({h * w},) or ({h}, {w}) for grid {grid_shape}, "
            f"got {arr.shape}"
        )
    return arr.reshape(h, w)


def paint_cells(values: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """Give every pixel the value of its grid cell: the one patch-to-pixel rule.

    Parameters
    ----------
    values : ndarray of shape (..., h, w)
        Per-patch values on the grid; leading axes (e.g. studies) are kept.
    image_shape : tuple of int (H, W)
        Size of the pixel map.

    Returns
    -------
    ndarray of shape (..., H, W), the values' dtype
        Each pixel's cell value (see :func:`cell_bounds` for the cells).

    Examples
    --------
    >>> import numpy as np
    >>> paint_cells(np.array([[1, 2]]), (2, 5))
    array([[1, 1, 2, 2, 2],
           [1, 1, 2, 2, 2]])
    """
    values = np.asarray(values)
    h, w = values.shape[-2:]
    H, W = (int(v) for v in image_shape)
    # Each cell repeated by its pixel count: pixel i lands in the cell whose bounds hold it.
    rows = np.repeat(values, np.diff(cell_bounds(H, h)), axis=-2)
    return np.repeat(rows, np.diff(cell_bounds(W, w)), axis=-1)


def _image(image: Any) -> np.ndarray:
    """A 2-D pixel array; (H, W, 1) is squeezed. Files are the reader's job, not the grid's."""
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] == 1:
            return image[:, :, 0]
        if image.ndim == 2:
            return image
    raise TypeError(
        "image must be a 2-D array (H, W); read files and colour images first with "
        "neural_sk.datasets.read_image or neural_sk.datasets.images.read_image_uint8, got "
        f"{type(image).__name__} "
        f"{getattr(image, 'shape', '')}".rstrip()
    )


def upsample_patch_scores(
    scores: Any,
    grid_shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    mode: str = "nearest",
) -> np.ndarray:
    """Upsample one study's patch scores to a pixel map.

    Parameters
    ----------
    scores : array-like of shape (h * w,) or (h, w)
        One study's patch scores, row-major.
    grid_shape : tuple of int (h, w)
        The patch grid.
    image_shape : tuple of int (H, W)
        Size of the pixel map.
    mode : {"nearest", "bilinear"}, default="nearest"
        ``"nearest"`` paints each cell with its score (exactly the pixel-to-patch map of
        :func:`patch_lesion_masks`); ``"bilinear"`` interpolates between cell centres.

    Returns
    -------
    ndarray of shape (H, W), float64
        The score of the patch under each pixel (or its interpolation).

    Examples
    --------
    >>> upsample_patch_scores([1, 2, 3, 4], (2, 2), (2, 4))
    array([[1., 1., 2., 2.],
           [3., 3., 4., 4.]])
    """
    h, w = check_grid_shape(grid_shape)
    H, W = (int(v) for v in image_shape)
    grid = as_patch_grid(scores, (h, w), name="scores").astype(np.float64)
    if mode == "nearest":
        return paint_cells(grid, (H, W))
    if mode == "bilinear":
        from scipy.ndimage import map_coordinates

        # Pixel centres in cell units, cell centres at integer coordinates.
        rows = (np.arange(H) + 0.5) * h / H - 0.5
        cols = (np.arange(W) + 0.5) * w / W - 0.5
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return map_coordinates(grid, [rr, cc], order=1, mode="nearest")
    raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")


def prune_image(
    image: np.ndarray, keep_mask: Any, grid_shape: Sequence[int], *, fill: float = 0
) -> np.ndarray:
    """The "pruned image": pixels outside the kept patches set to ``fill``.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The study's image (read a file first with :func:`neural_sk.datasets.read_image`).
    keep_mask : array-like of bool, shape (h * w,) or (h, w)
        Kept patches.
    grid_shape : tuple of int (h, w)
        The patch grid.
    fill : scalar, default=0
        Value of the blanked pixels.

    Returns
    -------
    ndarray of shape (H, W), same dtype as the image
        The pruned image.

    Examples
    --------
    >>> import numpy as np
    >>> prune_image(np.full((2, 4), 9), [True, False, False, True], (2, 2))
    array([[9, 9, 0, 0],
           [0, 0, 9, 9]])
    """
    arr = _image(image)
    grid = check_grid_shape(grid_shape)
    keep = as_patch_grid(keep_mask, grid, name="keep_mask").astype(bool)
    kept_pixels = paint_cells(keep, arr.shape)
    out = np.full_like(arr, fill)
    out[kept_pixels] = arr[kept_pixels]
    return out


def as_patch_index(patch_index: Any, n_patches: int) -> np.ndarray:
    """Patch numbers from indices or a keep mask, checked against the grid size.

    Parameters
    ----------
    patch_index : array-like of int, or bool mask of n_patches entries
        Row-major patch indices, or a keep mask.
    n_patches : int
        Patches in the grid (``h * w``).

    Returns
    -------
    ndarray of shape (k,), int64
        The patch indices.

    Examples
    --------
    >>> as_patch_index([False, True, True, False], 4)
    array([1, 2])
    """
    idx = np.asarray(patch_index)
    if idx.dtype == bool:
        if idx.size != n_patches:
            raise ValueError(f"keep mask has {idx.size} entries for {n_patches} patches")
        return np.flatnonzero(idx.ravel()).astype(np.int64)
    idx = idx.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_patches):
        raise ValueError(f"patch_index must be in [0, {n_patches}), got {idx.min()}..{idx.max()}")
    return idx


# --------------------------------------------------------------------------------------
# Tiles: the kept pixels as an archive stores them
# --------------------------------------------------------------------------------------
def extract_tiles(
    image: np.ndarray, patch_index: Any, grid_shape: Sequence[int], *, fill: float = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the pixel tiles under some patches, as an archive of kept pixels would store them.

    Every tile has the size of the largest cell, ``(ceil(H/h), ceil(W/w))``; a cell that is
    one pixel smaller (when ``h`` does not divide ``H``) sits in the tile's top-left corner,
    padded with ``fill``. :func:`rebuild_sparse_image` is the inverse.

    Parameters
    ----------
    image : ndarray of shape (H, W)
        The study's image (read a file first with :func:`neural_sk.datasets.read_image`).
    patch_index : array-like of int, or bool mask of shape (h * w,)
        Patches to cut (row-major indices), or a keep mask.
    grid_shape : tuple of int (h, w)
        The patch grid.
    fill : scalar, default=0
        Value of the padding of smaller cells.

    Returns
    -------
    tiles : ndarray of shape (k, th, tw)
        The pixels under each patch, in the image's dtype.
    patch_index : ndarray of shape (k,), int64
        The patch of each tile.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(16).reshape(4, 4)
    >>> tiles, idx = extract_tiles(img, [3], (2, 2))
    >>> tiles[0]
    array([[10, 11],
           [14, 15]])
    """
    arr = _image(image)
    h, w = check_grid_shape(grid_shape)
    index = as_patch_index(patch_index, h * w)
    H, W = arr.shape
    rows, cols = cell_bounds(H, h), cell_bounds(W, w)
    th, tw = int(np.diff(rows).max()), int(np.diff(cols).max())
    r, c = index // w, index % w
    # Gather every tile in one fancy-indexing pass; offsets past a smaller cell are masked.
    dr, dc = np.arange(th), np.arange(tw)
    pix_r = rows[r][:, None] + dr[None, :]                     # [k, th]
    pix_c = cols[c][:, None] + dc[None, :]                     # [k, tw]
    valid = (pix_r < rows[r + 1][:, None])[:, :, None] & (pix_c < cols[c + 1][:, None])[:, None, :]
    tiles = arr[np.minimum(pix_r, H - 1)[:, :, None], np.minimum(pix_c, W - 1)[:, None, :]]
    tiles = np.where(valid, tiles, np.asarray(fill, dtype=arr.dtype))
    return tiles.astype(arr.dtype, copy=False), index


def rebuild_sparse_image(
    tiles: Any,
    patch_index: Any,
    grid_shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    fill: float = 0,
) -> np.ndarray:
    """Rebuild the sparse (pruned) image from kept pixel tiles, without the original.

    Parameters
    ----------
    tiles : ndarray of shape (k, th, tw) or list of k 2-D arrays
        Tile ``t`` holds the pixels of patch ``patch_index[t]`` in its top-left corner; it
        must be at least as large as that cell (extra pixels, e.g. padding, are ignored).
    patch_index : array-like of int, shape (k,)
        Row-major patch indices.
    grid_shape : tuple of int (h, w)
        The patch grid.
    image_shape : tuple of int (H, W)
        Size of the original image.
    fill : scalar, default=0
        Value of the pixels outside the kept patches.

    Returns
    -------
    ndarray of shape (H, W), the tiles' dtype
        The sparse image.

    Examples
    --------
    >>> import numpy as np
    >>> tiles = np.array([[[1, 1], [1, 1]], [[2, 2], [2, 2]]], dtype=np.uint8)
    >>> rebuild_sparse_image(tiles, [0, 3], (2, 2), (4, 4))
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 2, 2],
           [0, 0, 2, 2]], dtype=uint8)
    """
    h, w = check_grid_shape(grid_shape)
    H, W = (int(v) for v in image_shape)
    index = as_patch_index(patch_index, h * w)
    if isinstance(tiles, np.ndarray) and tiles.ndim == 3:
        tile_list = list(tiles)
        dtype = tiles.dtype
    else:
        tile_list = [np.asarray(t) for t in tiles]
        dtype = tile_list[0].dtype if tile_list else np.float32
    if len(tile_list) != index.size:
        raise ValueError(f"{len(tile_list)} tiles for {index.size} patch indices")
    rows, cols = cell_bounds(H, h), cell_bounds(W, w)
    out = np.full((H, W), fill, dtype=dtype)
    # One copy per kept tile (k is a few percent of P): cheap and clear.
    for t, (tile, p) in enumerate(zip(tile_list, index)):
        r, c = divmod(int(p), w)
        ch, cw = rows[r + 1] - rows[r], cols[c + 1] - cols[c]
        if tile.ndim != 2 or tile.shape[0] < ch or tile.shape[1] < cw:
            raise ValueError(
                f"tile {t} (patch {p}) has shape {tile.shape}, smaller than its cell ({ch}, {cw})"
            )
        out[rows[r]:rows[r + 1], cols[c]:cols[c + 1]] = tile[:ch, :cw]
    return out
