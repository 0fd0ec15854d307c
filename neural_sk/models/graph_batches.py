"""Study graphs packed for training: flat node and edge arrays, vectorised mini-batches.

Free of scikit-learn: :class:`neural_sk.gnn.GNNClassifier` packs its graphs once and draws
every mini-batch from these arrays (no per-graph collate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graphs import GraphList, offsets

__all__ = ["PackedGraphs", "node_statistics"]


def _bad_features(graphs: GraphList, n_features: int | None) -> ValueError:
    """The error that names the first graph without 2-D node features of the right width."""
    for i, graph in enumerate(graphs):
        x = getattr(graph, "x", None)
        if x is None or x.dim() != 2:
            return ValueError(f"graph {i} has no 2-D node features x")
        n_features = int(x.shape[1]) if n_features is None else n_features
        if x.shape[1] != n_features:
            return ValueError(f"graph {i} has {x.shape[1]} node features; expected "
                              f"{n_features} (as graph 0 / the training graphs)")
    return ValueError("graphs have no 2-D node features x")


class PackedGraphs:
    """All graphs in flat arrays, with fast vectorised mini-batching (no per-graph collate)."""

    def __init__(self, graphs: GraphList, n_features: int | None = None) -> None:
        self.n_graphs = len(graphs)
        x, self.node_ptr = graphs.flat("x") if "x" in graphs.keys else (None, None)
        if self.n_graphs == 0:
            x, self.node_ptr = np.zeros((0, n_features or 0), np.float32), np.zeros(1, np.int64)
        if self.node_ptr is None or np.ndim(x) != 2 or (
                n_features is not None and x.shape[1] != n_features):
            raise _bad_features(graphs, n_features)
        finite = np.isfinite(x).all(axis=1)
        if not finite.all():
            i = int(np.searchsorted(self.node_ptr, np.flatnonzero(~finite)[0], side="right")) - 1
            raise ValueError(f"graph of the study at row {i} has non-finite node features")
        self.n_features = int(x.shape[1])
        self.x = np.asarray(x).astype(np.float32, copy=False)
        self.n_nodes = np.diff(self.node_ptr)
        self.node_type = (np.asarray(graphs.flat("node_type")[0], dtype=np.int64)
                          if "node_type" in graphs.keys and graphs.flat("node_type")[1] is not None
                          else np.zeros(len(self.x), np.int64))
        self.edges, self.edge_ptr = _packed_edges(graphs)
        self.n_edges = np.diff(self.edge_ptr)
        owner = np.repeat(np.arange(self.n_graphs), self.n_edges)
        bad = (self.edges < 0).any(axis=0) | (self.edges >= self.n_nodes[owner]).any(axis=0)
        if bad.any():
            i = int(owner[np.flatnonzero(bad)[0]])
            raise ValueError(f"graph {i}: edge_index refers to nodes outside its x")

    def to(self, device: Any, mean: np.ndarray | None, scale: np.ndarray | None) -> None:
        import torch

        x = self.x if mean is None else (self.x - mean) / scale
        self.x_t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
        self.edges_t = torch.as_tensor(self.edges, device=device)
        self.node_type_t = torch.as_tensor(self.node_type, device=device)
        self.device = device

    def node_index(self, ids: np.ndarray) -> np.ndarray:
        """Rows of ``x`` that belong to the graphs ``ids``, graph after graph."""
        counts = self.n_nodes[ids]
        new_start = np.cumsum(counts) - counts
        return np.repeat(self.node_ptr[ids] - new_start, counts) + np.arange(counts.sum())

    def batch(self, ids: np.ndarray) -> tuple:
        """``(x, edge_index, batch, n_graphs, node_type)`` of the graphs ``ids``, in order."""
        import torch

        counts = self.n_nodes[ids]
        new_start = np.cumsum(counts) - counts
        node_idx = self.node_index(ids)
        e_counts = self.n_edges[ids]
        e_new_start = np.cumsum(e_counts) - e_counts
        edge_idx = (np.repeat(self.edge_ptr[ids] - e_new_start, e_counts)
                    + np.arange(e_counts.sum()))
        shift = np.repeat(new_start, e_counts)  # edges are numbered within their graph
        dev = self.device
        node_idx = torch.as_tensor(node_idx, device=dev)
        x = self.x_t[node_idx]
        edge_index = (self.edges_t[:, torch.as_tensor(edge_idx, device=dev)]
                      + torch.as_tensor(shift, device=dev))
        batch = torch.as_tensor(np.repeat(np.arange(ids.size), counts), device=dev)
        return x, edge_index, batch, int(ids.size), self.node_type_t[node_idx]


def node_statistics(packed: PackedGraphs, ids: np.ndarray, weight: np.ndarray
                     ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Weighted mean and standard deviation of the nodes of graphs ``ids`` (each node
    weighs as its graph); None when they have no nodes."""
    nodes = packed.node_index(ids)
    node_weight = np.repeat(weight, packed.n_nodes[ids])
    if not nodes.size or node_weight.sum() <= 0:
        return None, None
    x = packed.x[nodes].astype(np.float64)
    mean = np.average(x, axis=0, weights=node_weight)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=node_weight))
    return (mean.astype(np.float32),
            np.where(scale > 1e-12, scale, 1.0).astype(np.float32))


def _packed_edges(graphs: GraphList) -> tuple[np.ndarray, np.ndarray]:
    """``[2, E]`` edges of all graphs and their offsets; a graph without edges has none."""
    if "edge_index" not in graphs.keys:
        return np.zeros((2, 0), np.int64), np.zeros(len(graphs) + 1, np.int64)
    values, ptr = graphs.flat("edge_index")
    if ptr is not None:
        return graphs.packed_edges()
    edges = [np.zeros((2, 0), np.int64) if e is None
             else np.asarray(e.detach().cpu() if hasattr(e, "detach") else e,
                             dtype=np.int64).reshape(2, -1) for e in values]
    return np.concatenate(edges, axis=1), offsets([e.shape[1] for e in edges])
