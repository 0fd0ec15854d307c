"""A visual, report or fused graph drawn as a picture a person can read.

Image patches sit on their grid; report nodes stand in a column to the right, each finding
drawn by its status (present, absent, uncertain) and anatomy apart. Edges between report
nodes are arcs on the grid side of the column, so edges that share the column never
overlap, and the labels on the other side stay clear. The legend sits below the Axes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..patches import check_grid_shape
from ..text.entities import STATUSES
from .axes import axes_or_new

__all__ = ["plot_graph"]

# Node groups: (legend label, colour, marker). Colour and marker both differ, so the
# statuses read apart in greyscale print and for colour-blind readers.
_VISUAL = ("image patch", "tab:blue", "o")
_STATUS_STYLE = dict(zip(STATUSES, (("tab:red", "s"), ("tab:green", "X"), ("tab:orange", "D"))))
_ANATOMY = ("anatomy", "tab:purple", "^")
_REPORT = ("report node", "tab:brown", "s")  # a report node whose status is not known
_FONTSIZE = 8
_UNKNOWN, _FINDING, _ANATOMY_NODE = 0, 1, 2  # what a node is, for the edge kinds
# Edge kinds: (legend label, colour, line style).
_EDGES = {
    "grid": ("image grid", "0.7", "solid"),
    "cross": ("image-report link", "tab:cyan", "dashed"),
    "cooccurrence": ("co-occurrence", "0.35", "solid"),
    "located": ("located-at", "tab:purple", "dotted"),
    "report": ("report link", "tab:brown", "solid"),
}


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
        "status": get("node_status"),
        "kind": get("node_kind"),
    }


def _per_report_node(values: Any, report: np.ndarray, n: int) -> list | None:
    """A per-node attribute of the report nodes; it may list every node or only those."""
    if values is None:
        return None
    values = list(values)
    if len(values) == n:
        return [values[i] for i in report]
    return values if len(values) == report.size else None


def _report_groups(g: dict[str, Any], report: np.ndarray) -> list[tuple[tuple, np.ndarray]]:
    """Report nodes split into drawn groups: one per finding status, anatomy, unknown."""
    n = g["n"]
    status = _per_report_node(g["status"], report, n)
    kind = _per_report_node(g["kind"], report, n)
    if status is None and kind is None:
        return [(_REPORT, report)]
    status = np.asarray(status if status is not None else [-1] * report.size, dtype=np.int64)
    # node_kind 1 is anatomy; without it, anatomy is the report graph's status -1.
    anatomy = np.asarray(kind, dtype=np.int64) == 1 if kind is not None else status < 0
    groups = [((name, *_STATUS_STYLE[name]), report[(status == code) & ~anatomy])
              for code, name in enumerate(STATUSES)]
    groups.append((_ANATOMY, report[anatomy]))
    unknown = ~anatomy & ((status < 0) | (status >= len(STATUSES)))
    groups.append((_REPORT, report[unknown]))
    return [(style, nodes) for style, nodes in groups if nodes.size]


def _layout(g: dict[str, Any], visual: np.ndarray, report: np.ndarray,
            grid_shape: Sequence[int] | None) -> tuple[np.ndarray, int, int]:
    """Plot coordinates (x = column, y = row) of every node, and the grid's (h, w)."""
    n, pos = g["n"], g["pos"]
    xy = np.zeros((n, 2), dtype=np.float64)
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
        # One row per report node at least, so that names never overlap on a small grid.
        rows = max(h, report.size)
        xy[report, 1] = np.linspace(0, rows - 1, report.size) if report.size > 1 else (h - 1) / 2
    return xy, h, w


def _edge_kinds(pairs: np.ndarray, node_type: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The kind of each undirected edge, from what its two ends are (see ``_EDGES``)."""
    ends_report = node_type[pairs] != 0
    both_report = ends_report.all(axis=1)
    kinds = np.where(ends_report.any(axis=1), "cross", "grid").astype(object)
    ends = group[pairs]
    kinds[both_report] = "report"  # ends of unknown kind
    kinds[both_report & (ends == _FINDING).all(axis=1)] = "cooccurrence"
    kinds[both_report & (ends == _ANATOMY_NODE).any(axis=1)] = "located"
    return kinds


def _bulge(span: np.ndarray) -> np.ndarray:
    # Grows with the distance between the ends, so arcs from one node never coincide.
    return 0.2 + 0.5 * np.sqrt(np.abs(span))


def _edge_paths(xy: np.ndarray, pairs: np.ndarray, kinds: np.ndarray) -> list[np.ndarray]:
    """A straight segment per edge; report-report edges as half-ellipses left of the column."""
    paths = [xy[pair] for pair in pairs]
    t = np.linspace(0.0, np.pi, 17)
    for e in np.flatnonzero(np.isin(kinds, ("cooccurrence", "located", "report"))):
        (x0, y0), (_, y1) = xy[pairs[e]]
        y = (y0 + y1) / 2 - (y1 - y0) / 2 * np.cos(t)
        paths[e] = np.stack([x0 - _bulge(y1 - y0) * np.sin(t), y], axis=1)
    return paths


def _label_room(ax: Any, n_chars: int, x_span: float, y_span: float) -> float:
    """Data units the labels need right of the column, on this Axes with equal aspect."""
    if not n_chars:
        return 0.0
    text_in = n_chars * 0.6 * _FONTSIZE / 72  # an average glyph is about 0.6 em wide
    fig_w, fig_h = ax.figure.get_size_inches()
    box = ax.get_position()
    width_in, height_in = box.width * fig_w, box.height * fig_h
    # Equal aspect: one unit is min(width / x range, height / y range) inches; the labels
    # need both (x_span + room) * ... and y_span to fit, hence the larger of the two rooms.
    by_height = text_in * y_span / height_in
    by_width = text_in * x_span / max(width_in - text_in, 0.25 * width_in)
    return max(by_height, by_width)


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
    graph has them. A graph without ``node_type`` is all visual when it has ``pos``, all
    report otherwise. Findings are drawn by their ``node_status`` (present: red square,
    absent: green cross, uncertain: orange diamond) and anatomy nodes (``node_kind`` 1, or
    status -1 as :class:`~neural_sk.report_graph.ReportGraphBuilder` writes it) as purple
    triangles; report nodes of a graph without ``node_status`` are brown squares. Each
    undirected edge is drawn once: grid edges grey, image-report links dashed cyan, and
    report-report edges as arcs (grey between findings, "co-occurrence"; dotted purple to a
    finding's anatomy, "located-at"; brown between report nodes of unknown kind).
    The legend sits below the Axes, so it covers nothing; save the figure with
    ``bbox_inches="tight"`` to keep it.

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
        Edges are ``ax.collections[0]`` (a LineCollection, one path per edge); then one
        scatter per node group (image patches first), labelled as in the legend.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.zeros(3, 2), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
    ...          node_type=torch.tensor([0, 0, 1]), pos=torch.tensor([[0., 0.], [0., 1.]]),
    ...          node_names=["pneumonia"], node_status=torch.tensor([0]))
    >>> ax = plot_graph(g, grid_shape=(4, 4))
    >>> len(ax.collections[0].get_segments())
    2
    >>> [c.get_label() for c in ax.collections[1:]]
    ['image patch', 'present']
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    ax = axes_or_new(ax)
    g = _graph_arrays(graph)
    n, node_type = g["n"], g["node_type"]
    if node_type is None:
        node_type = np.zeros(n, dtype=np.int64) if g["pos"] is not None else np.ones(n, np.int64)
    node_type = np.asarray(node_type).astype(np.int64).ravel()
    if node_type.size != n:
        raise ValueError(f"node_type has {node_type.size} entries for {n} nodes")
    visual, report = np.flatnonzero(node_type == 0), np.flatnonzero(node_type != 0)
    groups = [(_VISUAL, visual)] if visual.size else []
    groups += _report_groups(g, report) if report.size else []
    group = np.zeros(n, dtype=np.int64)
    for style, nodes in groups:
        group[nodes] = (_ANATOMY_NODE if style is _ANATOMY
                        else _UNKNOWN if style in (_REPORT, _VISUAL) else _FINDING)

    edges = g["edge_index"]
    pairs = np.unique(np.sort(edges.T, axis=1), axis=0) if edges.size else np.zeros((0, 2), int)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    kinds = _edge_kinds(pairs, node_type, group)
    xy, h, w = _layout(g, visual, report, grid_shape)
    arcs = np.isin(kinds, ("cooccurrence", "located", "report"))
    # The report column stands clear of the grid by the widest arc.
    reach = float(_bulge(np.ptp(xy[report, 1])) + 0.3) if arcs.any() else 0.5
    column = (w - 0.5 + reach) if (visual.size or grid_shape is not None) else 0.0
    xy[report, 0] = column

    styles = [_EDGES[k] for k in kinds]
    ax.add_collection(LineCollection(_edge_paths(xy, pairs, kinds),
                                     colors=[s[1] for s in styles],
                                     linestyles=[s[2] for s in styles] or "solid",
                                     linewidths=0.8, zorder=1))
    for (label, color, marker), nodes in groups:
        ax.scatter(xy[nodes, 0], xy[nodes, 1], s=node_size, c=color, marker=marker,
                   label=label, zorder=2, edgecolors="white", linewidths=0.5)
    names = _per_report_node(g["names"], report, n) if labels else None
    if names is not None:
        for (x, y), name in zip(xy[report], names):
            ax.annotate(str(name), (x, y), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=_FONTSIZE)
    if grid_shape is not None or visual.size:
        from matplotlib.patches import Rectangle

        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="0.8", linewidth=0.8))
    left = min(-1.0, column - reach - 0.5) if report.size else -1.0
    right = max(w - 0.5, column) + 0.5
    longest = max((len(str(s)) for s in names), default=0) if names is not None else 0
    rows = max(h, report.size)
    ax.set_xlim(left, right + _label_room(ax, longest + 1, right - left, rows + 1.0))
    ax.set_ylim(rows, -1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [Line2D([], [], color=c, marker=m, linestyle="none", label=lbl)
               for (lbl, c, m), _ in groups]
    handles += [Line2D([], [], color=_EDGES[k][1], linestyle=_EDGES[k][2], label=_EDGES[k][0])
                for k in _EDGES if (kinds == k).any()]
    if len(handles) > 1:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02),
                  ncol=min(len(handles), 3), fontsize=_FONTSIZE, frameon=False)
    return ax
