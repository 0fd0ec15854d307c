"""Figures for NEURAL: attention overlays, pruned images, fused graphs, rate-accuracy curves.

Every function draws on the Axes it is given (or on a new one), returns that Axes, and never
calls ``plt.show()``, so it works the same in scripts (Agg backend), notebooks and tests.

Pixels map to patches as in :func:`neural_sk.metrics.patch_lesion_masks`: on an ``H x W``
image with an ``h x w`` grid, cell ``i`` covers rows ``[floor(i*H/h), floor((i+1)*H/h))``,
like a strided CNN's feature map. The pure helpers :func:`upsample_patch_scores`,
:func:`prune_image`, :func:`extract_tiles` and :func:`rebuild_sparse_image` do the pixel work
and can be used without matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# One definition of the patch grid's pixel cells, shared with the lesion metrics.
from .metrics import _cell_bounds as _bounds
from .metrics import _grid

__all__ = [
    "upsample_patch_scores",
    "prune_image",
    "extract_tiles",
    "rebuild_sparse_image",
    "plot_attention_overlay",
    "show_pruned",
    "plot_graph",
    "plot_rate_accuracy",
    "plot_localization",
]


# --------------------------------------------------------------------------------------
# Pure pixel helpers
# --------------------------------------------------------------------------------------
def _cell_of_pixel(size: int, cells: int) -> np.ndarray:
    """Index of the cell each pixel row (or column) falls in."""
    return np.searchsorted(_bounds(size, cells), np.arange(size), side="right") - 1


def _patch_vector(values: Any, grid_shape: tuple[int, int], name: str) -> np.ndarray:
    h, w = grid_shape
    arr = np.asarray(values)
    if arr.shape not in ((h * w,), (h, w)):
        raise ValueError(
            f"{name} must have shape ({h * w},) or ({h}, {w}) for grid {grid_shape}, "
            f"got {arr.shape}"
        )
    return arr.reshape(h, w)


def _image_array(image: Any) -> np.ndarray:
    if image is None:
        raise ValueError("an image (array or path) is required")
    if isinstance(image, np.ndarray) and image.ndim == 2:
        return image
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    # Paths and colour arrays: read as the pipeline reads them (float grey in [0, 1]).
    from neural_sk.datasets import read_image

    return read_image(image)


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
        ``"nearest"`` paints each cell with its score (exactly the pixel-to-patch map used
        by the metrics); ``"bilinear"`` interpolates between cell centres.

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
    h, w = _grid(grid_shape)
    H, W = (int(v) for v in image_shape)
    grid = _patch_vector(scores, (h, w), "scores").astype(np.float64)
    if mode == "nearest":
        return grid[np.ix_(_cell_of_pixel(H, h), _cell_of_pixel(W, w))]
    if mode == "bilinear":
        from scipy.ndimage import map_coordinates

        # Pixel centres in cell units, cell centres at integer coordinates.
        rows = (np.arange(H) + 0.5) * h / H - 0.5
        cols = (np.arange(W) + 0.5) * w / W - 0.5
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        return map_coordinates(grid, [rr, cc], order=1, mode="nearest")
    raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")


def prune_image(
    image: Any, keep_mask: Any, grid_shape: Sequence[int], *, fill: float = 0
) -> np.ndarray:
    """The "pruned image": pixels outside the kept patches set to ``fill``.

    Parameters
    ----------
    image : ndarray of shape (H, W) or path
        The study's image (a path is read with :func:`neural_sk.datasets.read_image`).
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
    arr = _image_array(image)
    grid = _grid(grid_shape)
    keep = upsample_patch_scores(_patch_vector(keep_mask, grid, "keep_mask").astype(bool),
                                 grid, arr.shape) > 0.5
    out = np.full_like(arr, fill)
    out[keep] = arr[keep]
    return out


def extract_tiles(
    image: Any, patch_index: Any, grid_shape: Sequence[int], *, fill: float = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the pixel tiles under some patches, as an archive of kept pixels would store them.

    Every tile has the size of the largest cell, ``(ceil(H/h), ceil(W/w))``; a cell that is
    one pixel smaller (when ``h`` does not divide ``H``) sits in the tile's top-left corner,
    padded with ``fill``. :func:`rebuild_sparse_image` is the inverse.

    Parameters
    ----------
    image : ndarray of shape (H, W) or path
        The study's image (a path is read with :func:`neural_sk.datasets.read_image`).
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
    arr = _image_array(image)
    h, w = _grid(grid_shape)
    index = _as_patch_index(patch_index, h * w)
    H, W = arr.shape
    rows, cols = _bounds(H, h), _bounds(W, w)
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


def _as_patch_index(patch_index: Any, n_patches: int) -> np.ndarray:
    idx = np.asarray(patch_index)
    if idx.dtype == bool:
        if idx.size != n_patches:
            raise ValueError(f"keep mask has {idx.size} entries for {n_patches} patches")
        return np.flatnonzero(idx.ravel()).astype(np.int64)
    idx = idx.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_patches):
        raise ValueError(f"patch_index must be in [0, {n_patches}), got {idx.min()}..{idx.max()}")
    return idx


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
    h, w = _grid(grid_shape)
    H, W = (int(v) for v in image_shape)
    index = _as_patch_index(patch_index, h * w)
    if isinstance(tiles, np.ndarray) and tiles.ndim == 3:
        tile_list = list(tiles)
        dtype = tiles.dtype
    else:
        tile_list = [np.asarray(t) for t in tiles]
        dtype = tile_list[0].dtype if tile_list else np.float32
    if len(tile_list) != index.size:
        raise ValueError(f"{len(tile_list)} tiles for {index.size} patch indices")
    rows, cols = _bounds(H, h), _bounds(W, w)
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


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------
def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


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
    ax = _axes(ax)
    arr = _image_array(image)
    grid = _grid(grid_shape)
    heat = upsample_patch_scores(_patch_vector(attention, grid, "attention"), grid, arr.shape,
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
    rows, cols = _bounds(image_shape[0], h), _bounds(image_shape[1], w)
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
    grid = _grid(grid_shape)
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
        index = _as_patch_index(patch_index, n_patches)
        keep = np.zeros(n_patches, dtype=bool)
        keep[index] = True
    else:
        if keep_mask is None and patch_index is None:
            raise ValueError("show_pruned needs keep_mask or patch_index")
        if keep_mask is None:
            keep = np.zeros(n_patches, dtype=bool)
            keep[_as_patch_index(patch_index, n_patches)] = True
        else:
            keep = _patch_vector(keep_mask, grid, "keep_mask").astype(bool).ravel()
        pruned = prune_image(image, keep, grid, fill=fill)
    ax = _axes(ax)
    _show_gray(ax, pruned)
    if outline:
        ax.add_collection(_kept_cells_collection(keep, grid, pruned.shape, edgecolor))
    if mask is not None:
        _outline_lesion(ax, mask)
    return ax


def _graph_arrays(graph: Any) -> dict[str, Any]:
    def get(name: str) -> Any:
        value = graph[name] if name in graph else None
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        return value

    edge_index = get("edge_index")
    n = int(graph.num_nodes or 0)
    edges = np.zeros((2, 0), dtype=np.int64) if edge_index is None else np.asarray(edge_index)
    return {
        "n": n,
        "edge_index": edges.astype(np.int64),
        "node_type": get("node_type"),
        "pos": get("pos"),
        "names": graph["node_names"] if "node_names" in graph else None,
    }


def plot_graph(
    graph: Any,
    *,
    ax: Any = None,
    grid_shape: Sequence[int] | None = None,
    labels: bool = True,
    node_size: float = 60,
) -> Any:
    """Draw a visual, report or fused graph.

    Visual nodes sit at their grid position (``pos`` = (row, col), row 0 at the top); report
    nodes stand in a column to the right of the grid, labelled with ``node_names`` when the
    graph has them. Nodes are coloured by ``node_type`` (0 visual, 1 report); a graph without
    ``node_type`` is all visual when it has ``pos``, all report otherwise. Each undirected
    edge is drawn once.

    Parameters
    ----------
    graph : torch_geometric.data.Data
        A visual, report or fused graph (see the graph conventions).
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    grid_shape : tuple of int (h, w), default=None
        Draws the grid's frame and places the report column beside it; inferred from
        ``pos`` when None.
    labels : bool, default=True
        Write ``node_names`` beside the report nodes.
    node_size : float, default=60
        Marker area in points squared.

    Returns
    -------
    matplotlib.axes.Axes
        Edges are ``ax.collections[0]`` (a LineCollection); then one scatter per node type.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
    ...          node_type=torch.tensor([0, 0, 1]), pos=torch.tensor([[0., 0.], [0., 1.]]),
    ...          node_names=["pneumonia"])
    >>> ax = plot_graph(g, grid_shape=(4, 4))
    >>> len(ax.collections[0].get_segments())
    2
    """
    from matplotlib.collections import LineCollection

    ax = _axes(ax)
    g = _graph_arrays(graph)
    n = g["n"]
    node_type = g["node_type"]
    pos = g["pos"]
    if node_type is None:
        node_type = np.zeros(n, dtype=np.int64) if pos is not None else np.ones(n, dtype=np.int64)
    node_type = np.asarray(node_type).astype(np.int64).ravel()
    if node_type.size != n:
        raise ValueError(f"node_type has {node_type.size} entries for {n} nodes")
    visual = np.flatnonzero(node_type == 0)
    report = np.flatnonzero(node_type != 0)

    xy = np.zeros((n, 2), dtype=np.float64)  # plot coordinates (x = column, y = row)
    if visual.size:
        if pos is None:
            raise ValueError("the graph has visual nodes but no pos")
        pos = np.asarray(pos, dtype=np.float64)
        vis_pos = pos[visual] if pos.shape[0] == n else pos
        if vis_pos.shape[0] != visual.size:
            raise ValueError(f"pos has {pos.shape[0]} rows for {visual.size} visual nodes")
        xy[visual] = vis_pos[:, ::-1]
    if grid_shape is not None:
        h, w = _grid(grid_shape)
    elif visual.size:
        h, w = int(xy[visual, 1].max()) + 1, int(xy[visual, 0].max()) + 1
    else:
        h, w = max(report.size, 1), 0
    if report.size:
        column = w + 1.0 if (visual.size or grid_shape is not None) else 0.0
        xy[report, 0] = column
        xy[report, 1] = np.linspace(0, h - 1, report.size) if report.size > 1 else (h - 1) / 2

    edges = g["edge_index"]
    if edges.size:
        pairs = np.unique(np.sort(edges.T, axis=1), axis=0)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    else:
        pairs = np.zeros((0, 2), dtype=np.int64)
    ax.add_collection(LineCollection(xy[pairs], colors="0.6", linewidths=0.8, zorder=1))
    if visual.size:
        ax.scatter(xy[visual, 0], xy[visual, 1], s=node_size, c="tab:blue", label="image patch",
                   zorder=2)
    if report.size:
        ax.scatter(xy[report, 0], xy[report, 1], s=node_size, c="tab:orange",
                   marker="s", label="report finding", zorder=2)
        names = g["names"]
        if labels and names is not None:
            names = list(names)
            # node_names may list every node or only the report nodes.
            report_names = [names[i] for i in report] if len(names) == n else names
            if len(report_names) == report.size:
                for (x, y), name in zip(xy[report], report_names):
                    ax.annotate(str(name), (x, y), xytext=(6, 0), textcoords="offset points",
                                va="center", fontsize=8)
    if grid_shape is not None or visual.size:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="0.8", linewidth=0.8))
    ax.set_xlim(-1, w + (4 if report.size else 0.5))
    ax.set_ylim(h, -1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if visual.size and report.size:
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


def _records(results: Any) -> list[dict[str, Any]]:
    if hasattr(results, "to_dict"):
        return list(results.to_dict(orient="records"))
    return [dict(r) for r in results]


def _point_label(row: dict[str, Any]) -> str | None:
    for key, fmt in (("label", "{}"), ("keep_ratio", "keep {:g}"), ("quality", "q{:g}")):
        value = row.get(key)
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            try:
                return fmt.format(value)
            except (TypeError, ValueError):
                return str(value)
    return None


def plot_rate_accuracy(
    results: Any,
    *,
    ax: Any = None,
    x: str = "bytes_per_study",
    y: str = "auc",
    annotate: bool = True,
) -> Any:
    """AUC against bytes per study (log scale), one line per method.

    Parameters
    ----------
    results : DataFrame or list of dict
        One row per point with keys ``method``, ``bytes_per_study`` and ``auc``; optional
        ``label``, ``keep_ratio`` or ``quality`` annotate the points (first found), and
        ``auc_std`` draws error bars. A method with one point (e.g. the uncompressed
        classifier) is drawn as a single marker.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.
    x, y : str, default="bytes_per_study", "auc"
        Column names.
    annotate : bool, default=True
        Write each point's label beside it.

    Returns
    -------
    matplotlib.axes.Axes
        One line per method (``ax.get_lines()``), labelled with the method.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rows = [{"method": "jpeg", "bytes_per_study": 900, "auc": 0.8, "quality": 10},
    ...         {"method": "jpeg", "bytes_per_study": 2500, "auc": 0.9, "quality": 50},
    ...         {"method": "neural", "bytes_per_study": 300, "auc": 0.85, "keep_ratio": 0.023}]
    >>> ax = plot_rate_accuracy(rows)
    >>> [line.get_label() for line in ax.get_lines()]
    ['jpeg', 'neural']
    """
    rows = _records(results)
    for i, row in enumerate(rows):
        missing = [k for k in ("method", x, y) if k not in row]
        if missing:
            raise ValueError(f"results row {i} is missing {missing}")
    ax = _axes(ax)
    methods: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        methods.setdefault(str(row["method"]), []).append(row)
    for method, points in methods.items():
        points = sorted(points, key=lambda r: float(r[x]))
        xs = np.array([float(r[x]) for r in points])
        ys = np.array([float(r[y]) for r in points])
        (line,) = ax.plot(xs, ys, marker="o", label=method)
        err = [r.get(f"{y}_std") for r in points]
        if all(e is not None and np.isfinite(e) for e in err):
            ax.errorbar(xs, ys, yerr=np.array(err, dtype=float), fmt="none",
                        ecolor=line.get_color(), capsize=2)
        if annotate:
            for xv, yv, row in zip(xs, ys, points):
                label = _point_label(row)
                if label:
                    ax.annotate(label, (xv, yv), xytext=(3, 3), textcoords="offset points",
                                fontsize=7, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("bytes per study" if x == "bytes_per_study" else x)
    ax.set_ylabel(y.upper() if y == "auc" else y)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_localization(results: Any, *, ax: Any = None) -> Any:
    """Localisation scores as bars with their chance level marked.

    Parameters
    ----------
    results : DataFrame or list of dict
        One row per bar with keys ``method``, ``metric`` (e.g. "hit@1", "top-5% hit"),
        ``value`` and optional ``chance``.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        One bar container per metric; chance levels are black tick marks.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> rows = [{"method": "mil", "metric": "hit@1", "value": 0.9, "chance": 0.06},
    ...         {"method": "cross_attention", "metric": "hit@1", "value": 0.1, "chance": 0.06}]
    >>> ax = plot_localization(rows)
    >>> len(ax.patches)
    2
    """
    rows = _records(results)
    ax = _axes(ax)
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    metrics = list(dict.fromkeys(str(r["metric"]) for r in rows))
    width = 0.8 / max(len(metrics), 1)
    centres = np.arange(len(methods), dtype=float)
    for j, metric in enumerate(metrics):
        xs, vals, chance = [], [], []
        for r in rows:
            if str(r["metric"]) != metric:
                continue
            offset = (j - (len(metrics) - 1) / 2) * width
            xs.append(centres[methods.index(str(r["method"]))] + offset)
            vals.append(float(r["value"]))
            chance.append(float(r.get("chance", np.nan)) if r.get("chance") is not None else np.nan)
        ax.bar(xs, vals, width=width * 0.9, label=metric)
        ok = np.isfinite(chance)
        if ok.any():
            ax.hlines(np.array(chance)[ok], np.array(xs)[ok] - width * 0.45,
                      np.array(xs)[ok] + width * 0.45, colors="k", linewidths=2)
    ax.set_xticks(centres)
    ax.set_xticklabels(methods, rotation=20, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of positive studies")
    ax.legend(fontsize=8, title="black: chance", title_fontsize=7)
    return ax
