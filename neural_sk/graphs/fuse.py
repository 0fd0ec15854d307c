"""Fusion maths: join each study's visual graph and report graph into one graph.

Pure functions on :class:`~neural_sk.graphs.graph_list.GraphList`, below the estimators:
:class:`~neural_sk.GraphFuser` checks parameters and StudySet fields and calls
:func:`fuse_graphs`; anything else that needs fused graphs (an archive reader) can rebuild
them from the two sides without the estimator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .centrality import central_nodes_packed
from .graph_list import GraphList, layout_edges
from .grid import offsets

__all__ = ["FUSION_STRATEGIES", "fuse_graphs", "node_feature_width"]

#: The inputs each strategy reads, by StudySet field name.
FUSION_STRATEGIES = {
    "centrality": ("visual_graphs", "report_graphs"),
    "grounded": ("visual_graphs", "report_graphs", "token_attention", "token_offsets"),
    "visual": ("visual_graphs",),
    "report": ("report_graphs",),
}


def _numpy(value: Any, dtype: Any = None) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _ids(ids: Sequence[Any] | None, n: int) -> Sequence[Any]:
    return range(n) if ids is None else ids


def node_feature_width(graphs: GraphList, field: str = "graphs",
                       ids: Sequence[Any] | None = None) -> int:
    """Width of the graphs' node features ``x``; raises naming a graph that does not fit.

    Every graph needs 2-D node features of one common width and an ``edge_index``.

    Parameters
    ----------
    graphs : GraphList
    field : str, default="graphs"
        Name of the graphs in error messages (``"visual_graphs"``, ...).
    ids : sequence, default=None
        Study id of each graph, for error messages.

    Returns
    -------
    int
        0 when there are no graphs.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = Data(x=torch.ones(2, 3), edge_index=torch.zeros(2, 0, dtype=torch.long))
    >>> node_feature_width(GraphList.from_data([g, g]))
    3
    """
    n = len(graphs)
    if n == 0:
        return 0
    keys = graphs.keys
    x, ptr = graphs.flat("x") if "x" in keys else ([None] * n, None)
    edges_ok = "edge_index" in keys and graphs.flat("edge_index")[1] is not None
    if ptr is not None and np.ndim(x) == 2 and edges_ok:
        return int(x.shape[1])
    ids = _ids(ids, n)
    if ptr is not None:  # one array that is not 2-D
        raise ValueError(f"{field}[0] (study {ids[0]!r}) needs 2-D node features x and an "
                         f"edge_index")
    shapes = [getattr(v, "shape", None) for v in x]
    edges = graphs.flat("edge_index")[0] if "edge_index" in keys else [None] * n
    for i, (shape, e) in enumerate(zip(shapes, edges)):
        if shape is None or len(shape) != 2 or e is None:
            raise ValueError(f"{field}[{i}] (study {ids[i]!r}) needs 2-D node features x and "
                             f"an edge_index")
    width = shapes[0][1]
    i = next((i for i, shape in enumerate(shapes) if shape[1] != width), 0)
    raise ValueError(f"{field}[{i}] (study {ids[i]!r}) has {shapes[i][1]} node features, "
                     f"but {field}[0] has {width}")


def _rows(graphs: GraphList | None, name: str) -> np.ndarray | None:
    """Attribute ``name`` of every graph, concatenated; None unless it is one array."""
    if graphs is None or name not in graphs.keys:
        return None
    values, ptr = graphs.flat(name)
    return None if ptr is None else np.asarray(values)


def _each(graphs: GraphList | None, name: str, n: int) -> list:
    """Attribute ``name`` of each graph (None where a graph lacks it)."""
    if graphs is None or name not in graphs.keys:
        return [None] * n
    values, ptr = graphs.flat(name)
    if ptr is None:
        return list(values)
    return [values[a:b] for a, b in zip(ptr[:-1], ptr[1:])]


def _edges(graphs: GraphList | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All edges ``[2, E]`` (per-graph numbering), the graph of each, counts per graph."""
    if graphs is None or n == 0:
        return np.zeros((2, 0), np.int64), np.zeros(0, np.int64), np.zeros(n, np.int64)
    edges, ptr = graphs.packed_edges()
    counts = np.diff(ptr)
    return edges, np.repeat(np.arange(n), counts), counts


def _grounded_links(visual: GraphList, report: GraphList, k: np.ndarray, m: np.ndarray,
                    cv: np.ndarray, cr: np.ndarray, token_attention: Sequence[Any],
                    token_offsets: Sequence[Any], grounding_k: int, ids: Sequence[Any]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Cross-modal ``(visual node, shifted report node)`` pairs of ``strategy="grounded"``
    and the study of each pair."""
    n = len(k)
    pairs, owner = [], []
    node_kinds, all_spans = _each(report, "node_kind", n), _each(report, "spans", n)
    patch_ids = _each(visual, "patch_id", n)
    for i in range(n):
        if k[i] == 0 or m[i] == 0:
            continue
        kind = node_kinds[i]
        kind = np.zeros(m[i], np.int64) if kind is None else _numpy(kind, np.int64)
        findings = np.flatnonzero(kind == 0)
        if findings.size == 0:  # anatomy only: fall back to the paper's link
            pairs.append(np.array([[cv[i], k[i] + cr[i]]]))
            owner.append(np.array([i]))
            continue
        if all_spans[i] is None or patch_ids[i] is None:
            raise ValueError(
                f"study {ids[i]!r}: grounded fusion needs `spans` on the report graph and "
                f"`patch_id` on the visual graph"
            )
        att = _numpy(token_attention[i], np.float32)
        tokens = _numpy(token_offsets[i], np.int64).reshape(-1, 2)
        patches = _numpy(patch_ids[i], np.int64)
        if att.ndim != 2 or att.shape[0] != tokens.shape[0] or (
                patches.size and patches.max() >= att.shape[1]):
            raise ValueError(
                f"study {ids[i]!r}: token_attention of shape {att.shape} does not match "
                f"{tokens.shape[0]} token_offsets and the patch grid"
            )
        span = _numpy(all_spans[i], np.int64).reshape(-1, 2)[findings]
        # Tokens whose [start, end) overlaps the node's span; (0, 0) special tokens
        # never overlap. Summing is averaging here: only the ranking matters.
        overlap = (tokens[None, :, 0] < span[:, None, 1]) & (tokens[None, :, 1] > span[:, None, 0])
        scores = overlap.astype(np.float32) @ att[:, patches]
        g = min(grounding_k, int(k[i]))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :g]  # ties: lower node
        grounded = overlap.any(axis=1)
        visual_end = np.concatenate([top[grounded].ravel(),
                                     np.full(int((~grounded).sum()), cv[i])])
        report_end = k[i] + np.concatenate([np.repeat(findings[grounded], g),
                                            findings[~grounded]])
        pairs.append(np.stack([visual_end, report_end], axis=1))
        owner.append(np.full(visual_end.size, i))
    if not pairs:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    return np.concatenate(pairs).astype(np.int64), np.concatenate(owner).astype(np.int64)


def _cross_edges(visual: GraphList | None, report: GraphList | None, k: np.ndarray,
                 m: np.ndarray, strategy: str, **grounding: Any
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Cross-modal edges as (visual node, shifted report node) pairs, grouped by study."""
    n = len(k)
    if strategy not in ("centrality", "grounded"):
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    vis, vis_owner, _ = _edges(visual, n)
    rpt, rpt_owner, _ = _edges(report, n)
    # Both modalities in one batched call: graph i is visual, graph n + i report.
    # Ties go to the most attended patch, and to the first report node.
    n_visual = int(k.sum())
    weights = np.zeros(n_visual + int(m.sum()))
    attention = _rows(visual, "attention")
    if n_visual and attention is not None:
        weights[:n_visual] = attention
    central = central_nodes_packed(
        np.concatenate([vis, rpt], axis=1), np.concatenate([vis_owner, rpt_owner + n]),
        np.concatenate([k, m]), weights=weights,
    )
    cv, cr = central[:n], central[n:]
    if strategy == "grounded":
        return _grounded_links(visual, report, k, m, cv, cr, **grounding)
    both = np.flatnonzero((k > 0) & (m > 0))
    return np.stack([cv[both], k[both] + cr[both]], axis=1), both


def fuse_graphs(
    visual: GraphList | None,
    report: GraphList | None,
    *,
    strategy: str = "centrality",
    grounding_k: int = 1,
    token_attention: Sequence[Any] | None = None,
    token_offsets: Sequence[Any] | None = None,
    visual_dim: int | None = None,
    report_dim: int | None = None,
    ids: Sequence[Any] | None = None,
) -> GraphList:
    """Join each study's visual and report graph into one graph (see :class:`GraphFuser`).

    Node features are ``[visual features | report features | modality flag]`` with zeros
    where a node has no features of that kind; visual nodes come first, in their order,
    then report nodes. Edges, both directions: visual edges, report edges (shifted by the
    number of visual nodes), the cross-modal edges, then those reversed.

    Parameters
    ----------
    visual, report : GraphList or None
        The two sides (one may be None for the single-modality strategies; the side a
        strategy does not read is ignored).
    strategy : {"centrality", "grounded", "visual", "report"}, default="centrality"
    grounding_k : int, default=1
        Patches each finding node is linked to with ``strategy="grounded"``.
    token_attention, token_offsets : sequence of array-like, default=None
        Per study, for ``strategy="grounded"``.
    visual_dim, report_dim : int, default=None
        Width of each block of the node features (a fitted fuser's); by default the
        graphs' own. Graphs of another width raise.
    ids : sequence, default=None
        Study ids, for error messages.

    Returns
    -------
    GraphList
        ``x`` float32, ``edge_index``, ``node_type`` int64 (0 visual, 1 report), ``pos``
        float32 (NaN for report nodes) and, when the inputs have them, ``patch_id`` (of the
        visual nodes), ``node_names`` (of the report nodes) and ``node_status`` int64 (the
        report nodes' own: 0 present, 1 absent, 2 uncertain, -1 anatomy; -1 for visual
        nodes).
    """
    if strategy not in FUSION_STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(FUSION_STRATEGIES)}, "
                         f"got {strategy!r}")
    visual = visual if "visual_graphs" in FUSION_STRATEGIES[strategy] else None
    report = report if "report_graphs" in FUSION_STRATEGIES[strategy] else None
    sides = [g for g in (visual, report) if g is not None]
    if not sides:
        raise ValueError(f"strategy={strategy!r} needs the graphs it fuses")
    n = len(sides[0])
    if any(len(g) != n for g in sides):
        raise ValueError(f"visual and report graphs disagree: {len(visual)} != {len(report)}")
    ids = _ids(ids, n)
    dims = []
    for graphs, field, dim in ((visual, "visual_graphs", visual_dim),
                               (report, "report_graphs", report_dim)):
        width = 0 if graphs is None else node_feature_width(graphs, field, ids)
        if graphs is not None and n and dim is not None and width != dim:
            raise ValueError(f"{field.split('_')[0]} graphs have {width} node features, "
                             f"fitted on {dim}")
        dims.append(width if dim is None or graphs is None else dim)
    dv, dr = dims
    k = np.zeros(n, np.int64) if visual is None else visual.node_counts
    m = np.zeros(n, np.int64) if report is None else report.node_counts
    cross, cross_owner = _cross_edges(
        visual, report, k, m, strategy, token_attention=token_attention,
        token_offsets=token_offsets, grounding_k=grounding_k, ids=ids)
    attributes = _fused_nodes(visual, report, k, m, dv, dr)
    vis, _, vis_counts = _edges(visual, n)
    rpt, _, rpt_counts = _edges(report, n)
    shift = np.repeat(k, rpt_counts)
    c_counts = np.bincount(cross_owner, minlength=n)
    flat, edge_ptr = layout_edges(
        (vis[0], vis[1], vis_counts), (rpt[0] + shift, rpt[1] + shift, rpt_counts),
        (cross[:, 0], cross[:, 1], c_counts), (cross[:, 1], cross[:, 0], c_counts))
    attributes["edge_index"] = ("edges", flat, edge_ptr)
    patch_id = _rows(visual, "patch_id")
    if patch_id is not None:
        attributes["patch_id"] = ("rows", patch_id.astype(np.int64, copy=False), offsets(k))
    elif any(p is not None for p in _each(visual, "patch_id", n)):
        attributes["patch_id"] = ("objects", _each(visual, "patch_id", n), None)
    node_names = _each(report, "node_names", n)
    if any(names is not None for names in node_names):
        attributes["node_names"] = ("objects", node_names, None)
    order = ("x", "edge_index", "node_type", "pos")
    return GraphList({**{key: attributes[key] for key in order}, **attributes})


def _fused_nodes(visual: GraphList | None, report: GraphList | None, k: np.ndarray,
                 m: np.ndarray, dv: int, dr: int) -> dict:
    """``x``, ``node_type`` and ``pos`` of the fused graphs as GraphList attributes."""
    k_offsets, m_offsets = offsets(k), offsets(m)
    n_visual, n_report = int(k_offsets[-1]), int(m_offsets[-1])
    node_offsets = offsets(k + m)
    n_nodes = int(node_offsets[-1])
    x_all = np.zeros((n_nodes, dv + dr + 1), dtype=np.float32)
    node_type = np.zeros(n_nodes, dtype=np.int64)
    pos_all = np.full((n_nodes, 2), np.nan, dtype=np.float32)
    if visual is not None and n_visual:
        # Visual node j of study i sits after the report nodes of studies before i.
        rows = np.arange(n_visual) + np.repeat(m_offsets[:-1], k)
        x_all[rows, :dv] = _rows(visual, "x")
        pos = _rows(visual, "pos")
        if pos is not None:
            pos_all[rows] = pos
    out = {"x": ("rows", x_all, node_offsets), "node_type": ("rows", node_type, node_offsets),
           "pos": ("rows", pos_all, node_offsets)}
    status = _rows(report, "node_status")
    if status is not None:  # so a plot can tell present, absent and uncertain apart
        node_status = np.full(n_nodes, -1, dtype=np.int64)
        out["node_status"] = ("rows", node_status, node_offsets)
    if report is not None and n_report:
        rows = np.arange(n_report) + np.repeat(k_offsets[1:], m)
        x_all[rows, dv:dv + dr] = _rows(report, "x")
        x_all[rows, -1] = 1.0
        node_type[rows] = 1
        if status is not None:
            node_status[rows] = status
    return out
