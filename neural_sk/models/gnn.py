"""Graph classification networks: a stack of PyG convolutions, global pooling, a linear head.

Free of scikit-learn: :class:`neural_sk.gnn.GNNClassifier` builds and trains these.
"""

from __future__ import annotations

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

__all__ = ["GraphClassifierNet", "CONVS", "POOLINGS", "READOUTS"]

CONVS = ("gcn", "sage", "gat", "gin")
POOLINGS = {"mean": global_mean_pool, "max": global_max_pool, "add": global_add_pool}
# "joint": one pooled vector over all nodes (the paper's). "per_modality": visual and report
# nodes pooled apart and joined, so the few report nodes are not averaged away among the
# patches (a graph without nodes of one kind gives zeros for that half).
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
    readout : {"joint", "per_modality"}, default="joint"
        Pool all nodes into one vector, or pool each node type (``node_type`` 0 and 1:
        visual and report nodes of a fused graph) into its own vector and join the two.

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
        readout: str = "joint",
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
        kind = torch.zeros_like(batch) if node_type is None else node_type.clamp(0, 1)
        pooled = self.pool(x, batch * 2 + kind, size=2 * num_graphs)
        return pooled.reshape(num_graphs, -1)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, batch: torch.Tensor,
                num_graphs: int, node_type: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[num_graphs, n_outputs]``."""
        return self.head(self.dropout(self.embed(x, edge_index, batch, num_graphs, node_type)))
