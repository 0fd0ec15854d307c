"""Graphs: the patch grid, betweenness centrality, the GraphList container and fusion.

Pure, vectorised NumPy helpers that the estimators call (and tests call directly):

- :mod:`~neural_sk.graphs.grid`: grid edges, subgraphs of kept patches, top-k masks;
- :mod:`~neural_sk.graphs.centrality`: betweenness centrality of many small graphs;
- :mod:`~neural_sk.graphs.data`: building ``torch_geometric.data.Data`` cheaply;
- :mod:`~neural_sk.graphs.graph_list`: :class:`GraphList`, the one graph container and
  the one owner of the edge layout;
- :mod:`~neural_sk.graphs.fuse`: joining visual and report graphs into fused graphs.
"""

from .centrality import (
    betweenness_centrality,
    betweenness_centrality_batch,
    central_nodes,
    central_nodes_packed,
)
from .data import attribute_dicts, data_factory, make_data
from .fuse import FUSION_STRATEGIES, fuse_graphs, node_feature_width
from .graph_list import GraphList, concat_graph_lists, edge_blocks, layout_edges
from .grid import batch_subgraph_edges, grid_edges, offsets, subgraph_edges, top_k_mask

__all__ = [
    "grid_edges",
    "subgraph_edges",
    "batch_subgraph_edges",
    "edge_blocks",
    "layout_edges",
    "offsets",
    "top_k_mask",
    "betweenness_centrality",
    "betweenness_centrality_batch",
    "central_nodes",
    "central_nodes_packed",
    "make_data",
    "data_factory",
    "attribute_dicts",
    "GraphList",
    "concat_graph_lists",
    "fuse_graphs",
    "FUSION_STRATEGIES",
    "node_feature_width",
]
