"""Figures on the image: patch scores as a heatmap, and the pruned image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..patches import (
    as_patch_grid,
    as_patch_index,
    cell_bounds,
    check_grid_shape,
    prune_image,
    rebuild_sparse_image,
    upsample_patch_scores,
)
from .axes import axes_or_new

__all__ = ["plot_attention_overlay", "show_pruned"]


def _image_array(image: Any) -> np.ndarray:
    """A 2-D array is drawn as it is; files and colour are read as 8-bit grey."""
    if image is None:
        raise ValueError("an image (array or path) is required")
    if isinstance(image, np.ndarray) and image.ndim == 2:
        return image
    from ..datasets.images import read_image_uint8

    return read_image_uint8(image, keep_uint16=True)


def _gray_limits(arr: np.ndarray) -> tuple[float, float]:
    if arr.dtype == np.uint8:
        return 0, 255
    if arr.dtype == np.uint16:
        return 0, float(arr.max()) or 1.0
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, hi if hi > lo else lo + 1.0


def _show_gray(ax: Any, arr: np.ndarray) -> Any:
    vmin, vmax = _gray_limits(arr)
    img = ax.imshow(arr, cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    return img


def _outline_lesion(ax: Any, mask: Any, color: str = "red") -> None:
    m = np.asarray(mask, dtype=float)
    if m.any():
        ax.contour(m, levels=[0.5], colors=color, linewidths=1.0)


def plot_attention_overlay(
    image: Any,
    attention: Any,
    grid_shape: Sequence[int],
    *,
    ax: Any = None,
    mask: Any = None,
    alpha: float = 0.5,
    mode: str = "nearest",
    cmap: str = "inferno",
    colorbar: bool = False,
) -> Any:
    """The image with its patch scores as a heatmap on top.

    Parameters
    ----------
    image : ndarray of shape (H, W) or path
        The study's image (a path is read with :func:`neural_sk.datasets.read_image`).
    attention : array-like of shape (h * w,) or (h, w)
        One study's patch scores (e.g. ``studies.attention[i]``).
    grid_shape : tuple of int (h, w)
        The patch grid.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    mask : ndarray of shape (H, W), default=None
        Lesion pixels, drawn as a red outline.
    alpha : float, default=0.5
        Heatmap opacity.
    mode : {"nearest", "bilinear"}, default="nearest"
        How patch scores are upsampled (see :func:`upsample_patch_scores`).
    cmap : str, default="inferno"
        Colour map of the heatmap.
    colorbar : bool, default=False
        Add a colour bar beside the Axes.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on: the image is ``ax.images[0]``, the heatmap ``ax.images[1]``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> ax = plot_attention_overlay(np.zeros((32, 32)), np.eye(4).ravel() / 4, (4, 4))
    >>> len(ax.images)
    2
    """
    ax = axes_or_new(ax)
    arr = _image_array(image)
    grid = check_grid_shape(grid_shape)
    heat = upsample_patch_scores(as_patch_grid(attention, grid, name="attention"), grid, arr.shape,
                                 mode=mode)
    _show_gray(ax, arr)
    overlay = ax.imshow(heat, cmap=cmap, alpha=alpha, interpolation="nearest")
    if colorbar:
        ax.figure.colorbar(overlay, ax=ax, fraction=0.046, pad=0.04)
    if mask is not None:
        _outline_lesion(ax, mask)
    return ax


def _kept_cells_collection(keep: np.ndarray, grid: tuple[int, int], image_shape: tuple[int, int],
                           edgecolor: str) -> Any:
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    h, w = grid
    rows, cols = cell_bounds(image_shape[0], h), cell_bounds(image_shape[1], w)
    rects = []
    for p in np.flatnonzero(keep):
        r, c = divmod(int(p), w)
        # imshow puts pixel centres at integers, so a cell's edge is at its first pixel - 0.5.
        rects.append(Rectangle((cols[c] - 0.5, rows[r] - 0.5),
                               cols[c + 1] - cols[c], rows[r + 1] - rows[r]))
    return PatchCollection(rects, facecolor="none", edgecolor=edgecolor, linewidth=1.0)


def show_pruned(
    image: Any,
    keep_mask: Any,
    grid_shape: Sequence[int],
    *,
    ax: Any = None,
    mask: Any = None,
    tiles: Any = None,
    patch_index: Any = None,
    image_shape: Sequence[int] | None = None,
    fill: float = 0,
    outline: bool = True,
    edgecolor: str = "yellow",
) -> Any:
    """The pruned image: only the kept patches' pixels, the rest blanked, kept cells outlined.

    Give either the original ``image`` with ``keep_mask``, or the kept pixel ``tiles`` with
    their ``patch_index`` (as an archive stores them; then ``image`` may be None) to rebuild
    the sparse image with :func:`rebuild_sparse_image`.

    Parameters
    ----------
    image : ndarray of shape (H, W), path, or None
        The original image; may be None when ``tiles`` are given.
    keep_mask : array-like of bool, shape (h * w,) or (h, w), or None
        Kept patches; may be None when ``patch_index`` is given.
    grid_shape : tuple of int (h, w)
        The patch grid.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    mask : ndarray of shape (H, W), default=None
        Lesion pixels, drawn as a red outline.
    tiles : ndarray of shape (k, th, tw), default=None
        Kept pixel tiles (see :func:`extract_tiles`).
    patch_index : array-like of int, shape (k,), default=None
        Patch of each tile; required with ``tiles``.
    image_shape : tuple of int (H, W), default=None
        Size of the rebuilt image; defaults to the image's, else ``(th * h, tw * w)``.
    fill : scalar, default=0
        Value of the blanked pixels.
    outline : bool, default=True
        Outline the kept cells (one PatchCollection, ``ax.collections[-1]``).
    edgecolor : str, default="yellow"
        Colour of the outlines.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.images[0].get_array()`` is the pruned image.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> keep = np.zeros(16, dtype=bool); keep[5] = True
    >>> ax = show_pruned(np.ones((32, 32)), keep, (4, 4))
    >>> int(ax.images[0].get_array().sum())     # one 8 x 8 cell kept
    64
    """
    grid = check_grid_shape(grid_shape)
    n_patches = grid[0] * grid[1]
    if tiles is not None:
        if patch_index is None:
            raise ValueError("show_pruned(tiles=...) needs patch_index, the patch of each tile")
        if image_shape is None:
            if image is not None:
                image_shape = _image_array(image).shape
            else:
                t = np.asarray(tiles)
                image_shape = (t.shape[1] * grid[0], t.shape[2] * grid[1])
        pruned = rebuild_sparse_image(tiles, patch_index, grid, image_shape, fill=fill)
        index = as_patch_index(patch_index, n_patches)
        keep = np.zeros(n_patches, dtype=bool)
        keep[index] = True
    else:
        if keep_mask is None and patch_index is None:
            raise ValueError("show_pruned needs keep_mask or patch_index")
        if keep_mask is None:
            keep = np.zeros(n_patches, dtype=bool)
            keep[as_patch_index(patch_index, n_patches)] = True
        else:
            keep = as_patch_grid(keep_mask, grid, name="keep_mask").astype(bool).ravel()
        pruned = prune_image(_image_array(image), keep, grid, fill=fill)
    ax = axes_or_new(ax)
    _show_gray(ax, pruned)
    if outline:
        ax.add_collection(_kept_cells_collection(keep, grid, pruned.shape, edgecolor))
    if mask is not None:
        _outline_lesion(ax, mask)
    return ax
