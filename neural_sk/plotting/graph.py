"""A visual, report or fused graph drawn as a picture."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..patches import check_grid_shape
from .axes import axes_or_new

__all__ = ["plot_graph"]


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

    ax = axes_or_new(ax)
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
        h, w = check_grid_shape(grid_shape)
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
