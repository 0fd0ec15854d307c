"""Graph classification networks: a stack of PyG convolutions, global pooling, a linear head.

Free of scikit-learn: :class:`neural_sk.gnn.GNNClassifier` builds and trains these, on
mini-batches cut from :class:`PackedGraphs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch_geometric.nn import (
    GATConv,
    GCNConv,
    GINConv,
    SAGEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from ..graphs import GraphList, offsets

__all__ = ["GraphClassifierNet", "PackedGraphs", "CONVS", "POOLINGS", "READOUTS"]

CONVS = ("gcn", "sage", "gat", "gin")
POOLINGS = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}
# "joint": one pooled vector over all nodes (the paper's). "per_modality": visual nodes
# (with the chosen pooling) and report nodes (max) pooled apart and joined, so the few report
# nodes are not averaged away among the patches (no nodes of one kind: zeros for that half).
READOUTS = ("joint", "per_modality")


def _conv(kind: str, in_dim: int, out_dim: int, heads: int) -> nn.Module:
    if kind == "gcn":
        return GCNConv(in_dim, out_dim)  # adds self-loops: isolated patches keep their own signal
    if kind == "sage":
        return SAGEConv(in_dim, out_dim)
    if kind == "gat":
        # Heads averaged (concat=False) so every layer has the same width.
        return GATConv(in_dim, out_dim, heads=heads, concat=False)
    if kind == "gin":
        mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))
        return GINConv(mlp, train_eps=True)
    raise ValueError(f"conv must be one of {CONVS}, got {kind!r}")


class GraphClassifierNet(nn.Module):
    """``num_layers`` graph convolutions (ReLU, dropout), global pooling, a linear head.

    Parameters
    ----------
    in_dim : int
        Node feature width.
    n_outputs : int
        Logits per graph (the number of classes).
    conv : {"gcn", "sage", "gat", "gin"}, default="gcn"
    num_layers : int, default=2
    hidden_dim : int, default=128
    pooling : {"mean", "max", "add"}, default="mean"
    dropout : float, default=0.0
        Dropout after every convolution and before the head.
    heads : int, default=4
        Attention heads of ``"gat"``.
    readout : {"joint", "per_modality"}, default="per_modality"
        Pool all nodes into one vector, or pool each node type (``node_type`` 0 and 1:
        visual and report nodes of a fused graph) into its own vector and join the two;
        the visual nodes with ``pooling``, the report nodes with max.

    Examples
    --------
    >>> import torch
    >>> net = GraphClassifierNet(3, 2, hidden_dim=8)
    >>> x = torch.randn(5, 3)
    >>> edge_index = torch.tensor([[0, 1, 3], [1, 0, 4]])
    >>> batch = torch.tensor([0, 0, 0, 1, 1])
    >>> net(x, edge_index, batch, num_graphs=2).shape
    torch.Size([2, 2])
    >>> node_type = torch.tensor([0, 0, 1, 0, 0])  # node 2 is a report node
    >>> GraphClassifierNet(3, 2, hidden_dim=8, readout="per_modality")(
    ...     x, edge_index, batch, num_graphs=2, node_type=node_type).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        in_dim: int,
        n_outputs: int,
        *,
        conv: str = "gcn",
        num_layers: int = 2,
        hidden_dim: int = 128,
        pooling: str = "mean",
        dropout: float = 0.0,
        heads: int = 4,
        readout: str = "per_modality",
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.groups = 2 if readout == "per_modality" else 1
        dims = [in_dim] + [hidden_dim] * num_layers
        self.convs = nn.ModuleList(
            _conv(conv, dims[i], dims[i + 1], heads) for i in range(num_layers)
        )
        self.pool = POOLINGS[pooling]
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.groups * hidden_dim, n_outputs)

    def embed(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
              num_graphs: int, node_type: torch.Tensor | None = None) -> torch.Tensor:
        """One pooled vector per graph, ``[num_graphs, groups * hidden_dim]`` (empty: 0)."""
        for conv in self.convs:
            x = self.dropout(torch.relu(conv(x, edge_index)))
        if self.groups == 1:
            return self.pool(x, batch, size=num_graphs)
        report = (torch.zeros_like(batch, dtype=torch.bool) if node_type is None
                  else node_type > 0)
        visual = self.pool(x[~report], batch[~report], size=num_graphs)
        # Max over the report nodes: one decisive finding among absent ones and anatomy
        # keeps its signal instead of being averaged with them.
        return torch.cat([visual, global_max_pool(x[report], batch[report], size=num_graphs)], 1)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                num_graphs: int, node_type: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[num_graphs, n_outputs]``."""
        return self.head(self.dropout(self.embed(x, edge_index, batch, num_graphs, node_type)))


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


class PackedGraphs:
    """The graphs of a GraphList as NumPy/torch arrays, mini-batched without a per-graph
    collate: a batch is a few gathers into ``x`` and the edges, and one shift.

    Parameters
    ----------
    graphs : GraphList
    n_features : int, default=None
        Width the node features must have (the training graphs'); raises naming a graph
        that differs.
    """

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
        node_type, ptr = (graphs.flat("node_type") if "node_type" in graphs.keys
                          else (None, None))
        # 0 visual, 1 report; graphs without node types count as visual only
        self.node_type = (np.asarray(node_type, dtype=np.int64) if ptr is not None
                          else np.zeros(len(self.x), np.int64))
        self.edges, self.edge_ptr = _packed_edges(graphs)
        self.n_edges = np.diff(self.edge_ptr)
        owner = np.repeat(np.arange(self.n_graphs), self.n_edges)
        bad = (self.edges < 0).any(axis=0) | (self.edges >= self.n_nodes[owner]).any(axis=0)
        if bad.any():
            i = int(owner[np.flatnonzero(bad)[0]])
            raise ValueError(f"graph {i}: edge_index refers to nodes outside its x")

    def to(self, device: Any, mean: np.ndarray | None, scale: np.ndarray | None) -> None:
        """Put the (standardised) node features and the edges on ``device``."""
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

    def node_statistics(self, ids: np.ndarray, weight: np.ndarray
                        ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Weighted mean and standard deviation of the nodes of graphs ``ids`` (each node
        weighs as its graph); None when they have no nodes."""
        nodes = self.node_index(ids)
        node_weight = np.repeat(weight, self.n_nodes[ids])
        if not nodes.size or node_weight.sum() <= 0:
            return None, None
        x = self.x[nodes].astype(np.float64)
        mean = np.average(x, axis=0, weights=node_weight)
        scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=node_weight))
        return (mean.astype(np.float32),
                np.where(scale > 1e-12, scale, 1.0).astype(np.float32))
