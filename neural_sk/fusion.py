"""GraphFuser: join each study's visual graph and report graph into one graph."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .graph_list import GraphList
from .graphs import attribute_dicts, central_nodes_packed
from .studies import StudySet

__all__ = ["GraphFuser"]

_NEEDS = {
    "centrality": ("visual_graphs", "report_graphs"),
    "grounded": ("visual_graphs", "report_graphs", "token_attention", "token_offsets"),
    "visual": ("visual_graphs",),
    "report": ("report_graphs",),
}


def _numpy(value: Any, dtype: Any = None) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _graph_dicts(graphs: list, field: str, ids: np.ndarray
                 ) -> tuple[list[dict], np.ndarray, int]:
    """Attribute dicts of ``graphs`` (read-only), their node counts and common feature width.

    Plain dict look-ups are far cheaper than attribute access on thousands of small
    ``Data`` objects.
    """
    dicts = attribute_dicts(graphs)
    xs = [d.get("x") for d in dicts]
    shapes = [None if x is None else x.shape for x in xs]
    if any(sh is None or len(sh) != 2 for sh in shapes) or not all(
            "edge_index" in d for d in dicts):
        i = next(i for i, d in enumerate(dicts)
                 if shapes[i] is None or len(shapes[i]) != 2 or "edge_index" not in d)
        raise ValueError(
            f"{field}[{i}] (study {ids[i]!r}) needs 2-D node features x and an edge_index"
        )
    if not xs:
        return dicts, np.zeros(0, dtype=np.int64), 0
    widths = [sh[1] for sh in shapes]
    width = widths[0]
    if widths.count(width) != len(widths):
        i = next(i for i, w in enumerate(widths) if w != width)
        raise ValueError(
            f"{field}[{i}] (study {ids[i]!r}) has {widths[i]} node features, "
            f"but {field}[0] has {width}"
        )
    return dicts, np.array([sh[0] for sh in shapes], dtype=np.int64), int(width)


def _packed_edges(dicts: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All edges as one [2, E] array (per-graph numbering), the graph of each edge and the
    edge count of each graph."""
    import torch

    if not dicts:
        return (np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int64))
    edges = [d["edge_index"] for d in dicts]
    counts = np.array([e.shape[1] for e in edges], dtype=np.int64)
    cat = torch.cat(edges, dim=1).numpy().astype(np.int64, copy=False)
    return cat, np.repeat(np.arange(len(dicts)), counts), counts


class _Side:
    """One modality's graphs, read once: node counts, feature width, edges, attributes.

    A GraphList is read from its flat arrays; a list of ``Data`` through its attribute
    dicts.
    """

    def __init__(self, graphs: Any, field: str, ids: np.ndarray) -> None:
        self.packed = graphs if isinstance(graphs, GraphList) else None
        self.n = len(graphs)
        if self.packed is not None:
            keys = self.packed.keys
            x = self.packed.flat("x")[0] if "x" in keys else None
            if x is None or "edge_index" not in keys or np.ndim(x) != 2:
                raise ValueError(f"{field} needs 2-D node features x and an edge_index")
            self.dicts = None
            self.counts = self.packed.node_counts
            self.width = int(x.shape[1])
        else:
            self.dicts, self.counts, self.width = _graph_dicts(graphs, field, ids)

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All edges ``[2, E]`` (per-graph numbering), the graph of each, counts per graph."""
        if self.packed is None:
            return _packed_edges(self.dicts)
        edges, ptr = self.packed.packed_edges()
        counts = np.diff(ptr)
        return edges, np.repeat(np.arange(self.n), counts), counts

    def rows(self, name: str) -> np.ndarray | None:
        """Attribute ``name`` of every graph, concatenated; None when a graph lacks it."""
        if self.packed is not None:
            if name not in self.packed.keys:
                return None
            values, ptr = self.packed.flat(name)
            return None if ptr is None else np.asarray(values)
        import torch

        values = [d.get(name) for d in self.dicts]
        if not values or any(v is None for v in values):
            return None
        return torch.cat([torch.as_tensor(v) for v in values]).numpy()

    def each(self, name: str) -> list:
        """Attribute ``name`` of each graph (None where a graph lacks it)."""
        if self.packed is None:
            return [d.get(name) for d in self.dicts]
        if name not in self.packed.keys:
            return [None] * self.n
        values, ptr = self.packed.flat(name)
        if ptr is None:
            return list(values)
        return [values[a:b] for a, b in zip(ptr[:-1], ptr[1:])]


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _place(flat: np.ndarray, start: np.ndarray, total: np.ndarray, counts: np.ndarray,
           src: np.ndarray, dst: np.ndarray) -> None:
    """Write one group of edges into each graph's ``[2, E_i]`` block of ``flat``.

    Graph ``i`` owns ``counts[i]`` consecutive edges of ``src``/``dst``; its sources go to
    ``flat[start[i]:start[i] + counts[i]]`` and its targets ``total[i]`` (the graph's
    edge count) further on, which is the row-major layout of the graph's edge_index.
    """
    if not src.size:
        return
    shift = np.repeat(start - _offsets(counts)[:-1], counts)
    at = np.arange(src.size) + shift
    flat[at] = src
    flat[at + np.repeat(total, counts)] = dst


class GraphFuser(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Join each study's visual graph and report graph into one graph with shared features.

    Node features of the fused graph are ``[visual features | report features | modality
    flag]``, with zeros where a node has no features of that kind (no untrained projection:
    each block keeps its meaning), and ``node_type`` says which is which (0 visual,
    1 report). Visual nodes come first, in their original order, then report nodes.

    Parameters
    ----------
    strategy : {"centrality", "grounded", "visual", "report"}, default="centrality"
        How the two graphs are joined:

        - ``"centrality"``: the paper's fusion, one undirected edge between the most
          betweenness-central node of each graph (ties go to the most attended patch and
          to the first report node).
        - ``"grounded"``: each finding node of the report graph is linked to the
          ``grounding_k`` kept patches that its report tokens attended to most (the
          tokens whose character offsets overlap the node's span, averaged; needs the
          scorer's ``token_attention`` and ``token_offsets``). A finding none of whose
          tokens overlaps is linked to the most central patch; a report graph without
          finding nodes gets the centrality edge.
        - ``"visual"`` / ``"report"``: one modality only, for ablations (the other block of
          features has width 0).
    grounding_k : int >= 1, default=1
        Patches each finding node is linked to with ``strategy="grounded"``.

    Attributes
    ----------
    visual_dim_ : int
        Width of the visual block of the node features (0 for ``"report"``).
    report_dim_ : int
        Width of the report block (0 for ``"visual"``).
    n_node_features_ : int
        ``visual_dim_ + report_dim_ + 1``.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> from neural_sk import StudySet
    >>> from neural_sk.fusion import GraphFuser
    >>> visual = Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]))
    >>> report = Data(x=torch.ones(3, 4), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    >>> studies = StudySet(visual_graphs=[visual], report_graphs=[report])
    >>> fused = GraphFuser().fit_transform(studies).graphs[0]
    >>> fused.x.shape, fused.edge_index.shape[1], fused.node_type.tolist()
    (torch.Size([5, 8]), 8, [0, 0, 1, 1, 1])
    """

    _parameter_constraints: dict = {
        "strategy": [StrOptions(set(_NEEDS))],
        "grounding_k": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, strategy: str = "centrality", grounding_k: int = 1) -> None:
        self.strategy = strategy
        self.grounding_k = grounding_k

    def _check(self, studies: Any) -> tuple:
        if not isinstance(studies, StudySet):
            raise TypeError(f"GraphFuser expects a StudySet, got {type(studies).__name__}")
        missing = [f for f in _NEEDS[self.strategy] if getattr(studies, f) is None]
        if missing:
            raise ValueError(
                f"GraphFuser(strategy={self.strategy!r}) needs the StudySet fields {missing}"
                + ("; the scorer must return per-token attention for grounded fusion"
                   if "token_attention" in missing else "")
            )
        n, ids = len(studies), studies.ids
        visual, k, dv = None, np.zeros(n, np.int64), 0
        report, m, dr = None, np.zeros(n, np.int64), 0
        if "visual_graphs" in _NEEDS[self.strategy]:
            visual = _Side(studies.visual_graphs, "visual_graphs", ids)
            k, dv = visual.counts, visual.width
        if "report_graphs" in _NEEDS[self.strategy]:
            report = _Side(studies.report_graphs, "report_graphs", ids)
            m, dr = report.counts, report.width
        return visual, k, dv, report, m, dr

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: StudySet, y: Any = None) -> GraphFuser:
        """Check the parameters and remember the feature widths of both graphs.

        Parameters
        ----------
        X : StudySet
            Studies with ``visual_graphs`` and/or ``report_graphs`` (see ``strategy``).
        y : ignored

        Returns
        -------
        self : GraphFuser
        """
        self._set_dims(self._check(X))
        return self

    # -- cross-modal edges ------------------------------------------------------------------
    def _grounded_links(self, studies: StudySet, visual: _Side, report: _Side,
                        k: np.ndarray, m: np.ndarray, cv: np.ndarray, cr: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
        pairs, owner = [], []
        node_kinds, all_spans = report.each("node_kind"), report.each("spans")
        patch_indices = visual.each("patch_id")
        for i in range(len(studies)):
            if k[i] == 0 or m[i] == 0:
                continue
            kind = node_kinds[i]
            kind = np.zeros(m[i], np.int64) if kind is None else _numpy(kind, np.int64)
            findings = np.flatnonzero(kind == 0)
            if findings.size == 0:  # anatomy only: fall back to the paper's link
                pairs.append(np.array([[cv[i], k[i] + cr[i]]]))
                owner.append(np.array([i]))
                continue
            spans = all_spans[i]
            patch_index = patch_indices[i]
            if spans is None or patch_index is None:
                raise ValueError(
                    f"study {studies.ids[i]!r}: grounded fusion needs `spans` on the report "
                    f"graph and `patch_id` on the visual graph"
                )
            att = _numpy(studies.token_attention[i], np.float32)
            offsets = _numpy(studies.token_offsets[i], np.int64).reshape(-1, 2)
            patches = _numpy(patch_index, np.int64)
            if att.ndim != 2 or att.shape[0] != offsets.shape[0] or (
                    patches.size and patches.max() >= att.shape[1]):
                raise ValueError(
                    f"study {studies.ids[i]!r}: token_attention of shape {att.shape} does "
                    f"not match {offsets.shape[0]} token_offsets and the patch grid"
                )
            span = _numpy(spans, np.int64).reshape(-1, 2)[findings]
            # Tokens whose [start, end) overlaps the node's span; (0, 0) special tokens
            # never overlap. Summing is averaging here: only the ranking matters.
            overlap = (offsets[None, :, 0] < span[:, None, 1]) & (
                offsets[None, :, 1] > span[:, None, 0])
            scores = overlap.astype(np.float32) @ att[:, patches]
            g = min(self.grounding_k, int(k[i]))
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
        return (np.concatenate(pairs).astype(np.int64),
                np.concatenate(owner).astype(np.int64))

    def transform(self, X: StudySet) -> StudySet:
        """Fuse each study's graphs; returns ``X`` with ``graphs`` (one per study, in order).

        Each fused graph has ``x`` float32 ``[k + m, visual_dim_ + report_dim_ + 1]``,
        ``edge_index`` int64 (both directions: visual edges, report edges, then cross-modal
        edges), ``node_type`` int64 (0 visual, 1 report), ``pos`` float32 ``[k + m, 2]``
        (grid row and column of visual nodes, NaN for report nodes), and, when the inputs
        have them, ``patch_id`` (of the visual nodes) and ``node_names`` (of the report
        nodes).

        Parameters
        ----------
        X : StudySet

        Returns
        -------
        StudySet
        """
        check_is_fitted(self, "n_node_features_")
        return self._fuse(X, self._check(X))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: StudySet, y: Any = None) -> StudySet:
        """Fit and transform in one pass over the graphs (same result as ``fit(X).transform(X)``).

        Parameters
        ----------
        X : StudySet
        y : ignored

        Returns
        -------
        StudySet
        """
        checked = self._check(X)
        self._set_dims(checked)
        return self._fuse(X, checked)

    def _set_dims(self, checked: tuple) -> None:
        self.visual_dim_, self.report_dim_ = checked[2], checked[5]
        self.n_node_features_ = self.visual_dim_ + self.report_dim_ + 1

    def _fuse(self, X: StudySet, checked: tuple) -> StudySet:
        visual, k, dv, report, m, dr = checked
        studies, n = X, len(X)
        use_v, use_r = visual is not None, report is not None
        if use_v and n and dv != self.visual_dim_:
            raise ValueError(f"visual graphs have {dv} node features, fitted on "
                             f"{self.visual_dim_}")
        if use_r and n and dr != self.report_dim_:
            raise ValueError(f"report graphs have {dr} node features, fitted on "
                             f"{self.report_dim_}")
        dv, dr = self.visual_dim_, self.report_dim_
        empty = np.zeros(0, np.int64)
        vis, vis_owner, vis_counts = (visual.edges() if use_v
                                      else (np.zeros((2, 0), np.int64), empty, np.zeros(n, np.int64)))
        rpt, rpt_owner, rpt_counts = (report.edges() if use_r
                                      else (np.zeros((2, 0), np.int64), empty, np.zeros(n, np.int64)))
        k_offsets, m_offsets = _offsets(k), _offsets(m)
        n_visual, n_report = int(k_offsets[-1]), int(m_offsets[-1])

        # Cross-modal edges as (visual node, report node) pairs, report node already
        # shifted, grouped by study in increasing order.
        cross, cross_owner = np.zeros((0, 2), np.int64), empty
        if self.strategy in ("centrality", "grounded"):
            # Both modalities in one batched call: graph i is visual, graph n + i report.
            # Ties go to the most attended patch, and to the first report node.
            attention = visual.rows("attention")
            weights = np.zeros(n_visual + n_report)
            if n_visual and attention is not None:
                weights[:n_visual] = attention
            central = central_nodes_packed(
                np.concatenate([vis, rpt], axis=1), np.concatenate([vis_owner, rpt_owner + n]),
                np.concatenate([k, m]), weights=weights,
            )
            cv, cr = central[:n], central[n:]
            if self.strategy == "centrality":
                both = np.flatnonzero((k > 0) & (m > 0))
                cross = np.stack([cv[both], k[both] + cr[both]], axis=1)
                cross_owner = both
            else:
                cross, cross_owner = self._grounded_links(studies, visual, report, k, m,
                                                          cv, cr)

        # Node rows of every study in one table: visual rows first, then report rows.
        node_offsets = _offsets(k + m)
        n_nodes = int(node_offsets[-1])
        width = dv + dr + 1
        x_all = np.zeros((n_nodes, width), dtype=np.float32)
        node_type = np.zeros(n_nodes, dtype=np.int64)
        pos_all = np.full((n_nodes, 2), np.nan, dtype=np.float32)
        if use_v and n_visual:
            # Visual node j of study i sits after the report nodes of studies before i.
            rows = np.arange(n_visual) + np.repeat(m_offsets[:-1], k)
            x_all[rows, :dv] = visual.rows("x")
            pos = visual.rows("pos")
            if pos is not None:
                pos_all[rows] = pos
        if use_r and n_report:
            rows = np.arange(n_report) + np.repeat(k_offsets[1:], m)
            x_all[rows, dv:dv + dr] = report.rows("x")
            x_all[rows, -1] = 1.0
            node_type[rows] = 1

        # Edges of every study, each study's laid out as its contiguous [2, E_i] block:
        # visual edges, report edges, cross edges, the cross edges reversed.
        c_counts = np.bincount(cross_owner, minlength=n)
        e_counts = vis_counts + rpt_counts + 2 * c_counts
        start = 2 * _offsets(e_counts)[:-1]
        flat = np.empty(2 * int(e_counts.sum()), dtype=np.int64)
        _place(flat, start, e_counts, vis_counts, vis[0], vis[1])
        shift = np.repeat(k, rpt_counts)
        _place(flat, start + vis_counts, e_counts, rpt_counts, rpt[0] + shift, rpt[1] + shift)
        start += vis_counts + rpt_counts
        _place(flat, start, e_counts, c_counts, cross[:, 0], cross[:, 1])
        _place(flat, start + c_counts, e_counts, c_counts, cross[:, 1], cross[:, 0])

        attributes = {
            "x": ("rows", x_all, node_offsets),
            "edge_index": ("edges", flat, _offsets(e_counts)),
            "node_type": ("rows", node_type, node_offsets),
            "pos": ("rows", pos_all, node_offsets),
        }
        patch_index = visual.rows("patch_id") if use_v else None
        if patch_index is not None:
            attributes["patch_id"] = ("rows", patch_index.astype(np.int64, copy=False),
                                         k_offsets)
        elif use_v and any(p is not None for p in visual.each("patch_id")):
            attributes["patch_id"] = ("objects", visual.each("patch_id"), None)
        node_names = report.each("node_names") if use_r else [None] * n
        if any(names is not None for names in node_names):
            attributes["node_names"] = ("objects", node_names, None)
        graphs = GraphList(attributes)
        return studies.replace(graphs=graphs)
