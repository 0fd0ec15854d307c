"""Betweenness centrality of many small graphs at once, and each graph's most central node.

Brandes' algorithm runs for many small graphs at once as batched matrix products, once per
distinct graph; larger graphs, where that dense form costs more than a sparse one, go to
rustworkx one graph at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .grid import offsets

__all__ = ["betweenness_centrality", "betweenness_centrality_batch", "central_nodes",
           "central_nodes_packed"]

# Above this many nodes the dense all-sources Brandes costs more than rustworkx's sparse
# one, called per graph. Measured with central_nodes_packed forced down each path, on
# 1,000-2,000 graphs of one size (pruned 14x14 grids; random graphs with 2m edges), time
# dense / rustworkx: 0.03 at 5 nodes, 0.2-0.5 at 12, 0.7-0.8 at 16, 1.0-1.1 at 18,
# 0.9-1.6 at 20, 2.2 at 32, 5 at 64, 11 at 96.
_DENSE_MAX_NODES = 17
# Entries of one [B, m, m] block; bounds the memory of the batched centrality.
_BLOCK_ENTRIES = 1 << 20


def _as_edge_array(edge_index: Any) -> np.ndarray:
    if hasattr(edge_index, "detach"):  # torch tensor
        edge_index = edge_index.detach().cpu().numpy()
    edge_index = np.asarray(edge_index, dtype=np.int64)
    if edge_index.size == 0:
        return np.zeros((2, 0), dtype=np.int64)
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {edge_index.shape}")
    return edge_index


def _brandes_dense(adjacency: np.ndarray) -> np.ndarray:
    """Raw (unscaled, each pair counted from both ends) betweenness of a [B, m, m] stack.

    Brandes' algorithm from every source at once. Row ``s`` of each ``[m, m]`` matrix
    belongs to source ``s``. A breadth-first sweep counts shortest paths level by level
    (``reach`` holds the path counts sigma of the nodes first reached at that distance);
    then, from the farthest level back, ``gamma = (1 + delta) / sigma`` of a level's
    nodes flows to their predecessors: ``delta(v) = sigma(v) * sum of gamma(w)`` over the
    nodes ``w`` one step farther that ``v`` links to. Path counts are integers, so
    ``min(reach, 1)`` is the level's 0/1 indicator, and no division by zero can happen
    where it is read. Graphs whose sweep has ended are dropped from later levels, so a
    few long graphs do not slow down the rest.
    """
    b, m, _ = adjacency.shape
    sigma = np.broadcast_to(np.eye(m), (b, m, m)).copy()  # path counts, all levels
    unvisited = 1.0 - sigma
    front, adj, active = sigma, adjacency, None  # active: graphs still swept (None: all)
    levels = []
    while True:
        reach = front @ adj
        reach *= unvisited
        level = np.minimum(reach, 1.0)
        alive = level.reshape(level.shape[0], -1).any(axis=1)
        n_alive = int(np.count_nonzero(alive))
        if n_alive == 0:
            break
        if n_alive < 0.5 * alive.size:  # most graphs are done: sweep the rest only
            reach, level, unvisited, adj = reach[alive], level[alive], unvisited[alive], adj[alive]
            active = np.flatnonzero(alive) if active is None else active[alive]
        unvisited -= level
        if active is None:
            sigma += reach
        else:
            sigma[active] += reach
        levels.append((active, level, adj))
        front = reach
    if not levels:
        return np.zeros((b, m))
    inv = np.maximum(sigma, 1.0)  # read only where sigma >= 1
    np.divide(1.0, inv, out=inv)
    total = np.zeros_like(sigma)  # sum of gamma over the successors, all levels
    active, level, adj = levels[-1]
    gamma = level * (inv if active is None else inv[active])
    for depth in range(len(levels) - 2, -1, -1):
        outer, level, outer_adj = levels[depth]
        after = gamma @ adj
        if active is not outer:  # the farther level has fewer graphs: spread them out
            full = np.zeros_like(level)
            full[active if outer is None else np.searchsorted(outer, active)] = after
            after = full
        after *= level
        if outer is None:
            total += after
            gamma = inv * level
        else:
            total[outer] += after
            gamma = inv[outer] * level
        gamma += after
        active, adj = outer, outer_adj
    # delta = sigma * total; summed over the sources (a source's own row is zero).
    return np.einsum("bsv,bsv->bv", total, sigma)


def _scale(raw: np.ndarray, n: int, normalized: bool) -> np.ndarray:
    # Same convention as networkx.betweenness_centrality on an undirected graph.
    if normalized:
        return raw / ((n - 1) * (n - 2)) if n > 2 else raw
    return raw / 2.0


def _rustworkx_betweenness(edge_index: np.ndarray, edge_graph: np.ndarray,
                           sizes: np.ndarray, graphs: np.ndarray, edge_counts: np.ndarray | None
                           ) -> np.ndarray:
    """Raw betweenness (each pair counted from both ends) of ``graphs``, one rustworkx
    call per graph, as rows of a ``[len(graphs), max size]`` array padded with zeros."""
    import rustworkx as rx

    if edge_counts is None:  # group the edges by graph once
        order = np.argsort(edge_graph, kind="stable")
        edge_index, edge_counts = edge_index[:, order], np.bincount(edge_graph,
                                                                    minlength=sizes.size)
    ptr = offsets(edge_counts)
    out = np.zeros((graphs.size, int(sizes[graphs].max())))
    for row, i in enumerate(graphs.tolist()):
        src, dst = edge_index[:, ptr[i]:ptr[i + 1]]
        loop = src == dst  # self-loops lie on no shortest path
        graph = rx.PyGraph(multigraph=False)  # duplicate edges count once
        graph.add_nodes_from(range(int(sizes[i])))
        graph.add_edges_from_no_data(list(zip(src[~loop].tolist(), dst[~loop].tolist())))
        values = rx.graph_betweenness_centrality(graph, normalized=False)
        out[row, :sizes[i]] = [values[v] for v in range(int(sizes[i]))]
    return 2.0 * out  # rustworkx counts each unordered pair once on an undirected graph


def _pack(edge_indices: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-graph edges into ``([2, E] edges, [E] graph of each edge)``."""
    edges = [_as_edge_array(e) for e in edge_indices]
    counts = np.array([e.shape[1] for e in edges], dtype=np.int64)
    owner = np.repeat(np.arange(len(edges)), counts)
    if not edges:
        return np.zeros((2, 0), np.int64), owner
    return np.concatenate(edges, axis=1), owner


def _check_packed(edge_index: Any, edge_graph: Any, num_nodes: Any
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Checked ``(edge_index, edge_graph, sizes, edge counts)``.

    The edge count of each graph is returned when the edges are grouped by graph in
    increasing order (as packed batches are), else None: per-edge look-ups of per-graph
    values are then cheap repeats instead of gathers.
    """
    edge_index = _as_edge_array(edge_index)
    edge_graph = np.asarray(edge_graph, dtype=np.int64).reshape(-1)
    sizes = np.asarray(num_nodes, dtype=np.int64).reshape(-1)
    if edge_graph.size != edge_index.shape[1]:
        raise ValueError(f"{edge_graph.size} graph labels for {edge_index.shape[1]} edges")
    counts = None
    if edge_graph.size:
        grouped = bool((edge_graph[1:] >= edge_graph[:-1]).all())
        low, high = ((edge_graph[0], edge_graph[-1]) if grouped
                     else (edge_graph.min(), edge_graph.max()))
        if low < 0 or high >= sizes.size:
            raise ValueError(f"edge_graph refers to graphs outside 0..{sizes.size - 1}")
        if grouped:
            counts = np.bincount(edge_graph, minlength=sizes.size)
        # One cheap pass for the usual case; the offending edge is searched only on failure.
        src, dst = edge_index
        if min(src.min(), dst.min()) < 0 or (
                np.maximum(src, dst) >= _per_edge(sizes, edge_graph, counts)).any():
            bad = (edge_index < 0).any(axis=0) | (edge_index >= sizes[edge_graph]).any(axis=0)
            i = int(edge_graph[np.flatnonzero(bad)[0]])
            raise ValueError(
                f"graph {i}: edge_index refers to nodes outside 0..{sizes[i] - 1}"
            )
    return edge_index, edge_graph, sizes, counts


def _per_edge(values: np.ndarray, edge_graph: np.ndarray, counts: np.ndarray | None
              ) -> np.ndarray:
    """``values[edge_graph]``, as a repeat when the edges are grouped by graph."""
    return values[edge_graph] if counts is None else np.repeat(values, counts)


# A block of graphs is padded to the size of its largest graph (padding nodes are isolated
# and change nothing). Each block costs a fixed number of NumPy calls, so neighbouring
# sizes share a block while it stays this small; large groups keep their exact size.
_MERGE_ENTRIES = 1 << 14


def _raw_betweenness_blocks(edge_index: np.ndarray, edge_graph: np.ndarray,
                            sizes: np.ndarray, edge_counts: np.ndarray | None = None):
    """Yield ``(graph indices, raw betweenness [B, M])`` per block of similar-size graphs.

    Columns at or beyond a graph's own node count are padding (zero).
    """
    large = np.flatnonzero(sizes > _DENSE_MAX_NODES)
    large = large[np.argsort(sizes[large], kind="stable")]
    # Padded to the largest graph of each chunk: sorted by size, chunks stay near-square.
    step = max(1, _BLOCK_ENTRIES // max(int(sizes[large].max()) if large.size else 1, 1))
    for start in range(0, large.size, step):
        block = large[start:start + step]
        yield block, _rustworkx_betweenness(edge_index, edge_graph, sizes, block, edge_counts)
    small = np.flatnonzero((sizes > 0) & (sizes <= _DENSE_MAX_NODES))
    if small.size == 0:
        return
    order = small[np.argsort(sizes[small], kind="stable")]
    values, starts, counts = np.unique(sizes[order], return_index=True, return_counts=True)
    # Merge runs of sizes into blocks padded to their largest size, split blocks over the
    # memory budget: a few Python-level steps per size group, none per graph or edge.
    blocks, first, members = [], 0, 0
    for j in range(values.size):
        m = int(values[j])
        if j and (members + counts[j]) * m * m > _MERGE_ENTRIES:
            blocks.append((first, starts[j], int(values[j - 1])))
            first, members = starts[j], 0
        members += counts[j]
    blocks.append((first, order.size, int(values[-1])))
    pieces = []
    for lo, hi, m in blocks:
        step = max(1, _BLOCK_ENTRIES // (m * m))
        pieces += [(start, min(start + step, hi), m) for start in range(lo, hi, step)]
    # All blocks' adjacency matrices in one buffer, filled by one scatter per direction:
    # edge (u, v) of graph g sits at base[g] + u * m + v, where graph g is row r of a
    # block of padded size m: base[g] = start of the block + r * m * m.
    starts = offsets([(hi - lo) * m * m for lo, hi, m in pieces])
    base = np.zeros(sizes.size, dtype=np.int64)
    width = np.zeros(sizes.size, dtype=np.int64)
    for j, (lo, hi, m) in enumerate(pieces):
        base[order[lo:hi]] = starts[j] + m * m * np.arange(hi - lo)
        width[order[lo:hi]] = m
    src, dst = edge_index
    graph_base, graph_width = (_per_edge(base, edge_graph, edge_counts),
                               _per_edge(width, edge_graph, edge_counts))
    if small.size != sizes.size:  # graphs handled above (or empty) have no slot
        mine = graph_width > 0
        src, dst = src[mine], dst[mine]
        graph_base, graph_width = graph_base[mine], graph_width[mine]
    buffer = np.zeros(int(starts[-1]), dtype=np.float64)
    buffer[graph_base + src * graph_width + dst] = 1.0
    buffer[graph_base + dst * graph_width + src] = 1.0
    for j, (lo, hi, m) in enumerate(pieces):
        block = order[lo:hi]
        if m <= 2:  # no node lies between two others
            yield block, np.zeros((block.size, m))
            continue
        adjacency = buffer[starts[j]:starts[j + 1]].reshape(-1, m, m)
        adjacency[:, np.arange(m), np.arange(m)] = 0.0  # self-loops lie on no path
        yield block, _brandes_distinct(adjacency)


def _brandes_distinct(adjacency: np.ndarray) -> np.ndarray:
    """:func:`_brandes_dense` computed once per distinct adjacency matrix of the stack.

    Small graphs repeat a lot: the kept patches of many studies form the same shape (a
    shape's adjacency does not depend on where it sits in the grid), and short reports
    share structure. Finding the repeats costs one sort of a few bytes per graph.
    """
    b, m, _ = adjacency.shape
    if b < 16:
        return _brandes_dense(adjacency)
    bits = np.packbits(adjacency.reshape(b, -1) != 0, axis=1)  # one bit per entry
    if bits.shape[1] <= 8:  # fits one integer key
        keys = np.zeros((b, 8), dtype=np.uint8)
        keys[:, :bits.shape[1]] = bits
        keys = keys.view(np.uint64)[:, 0]
    else:
        keys = np.ascontiguousarray(bits).view(np.dtype((np.void, bits.shape[1])))[:, 0]
    _, first, which = np.unique(keys, return_index=True, return_inverse=True)
    if first.size > 0.8 * b:  # few repeats: not worth the gather
        return _brandes_dense(adjacency)
    return _brandes_dense(adjacency[first])[which.reshape(-1)]


def betweenness_centrality_batch(
    edge_indices: Sequence[Any], num_nodes: Sequence[int], *, normalized: bool = True
) -> list[np.ndarray]:
    """Betweenness centrality of many small undirected graphs, batched.

    Graphs are grouped by node count into ``[B, m, m]`` blocks and Brandes' algorithm runs
    on each block, from all sources at once, as matrix products; graphs above 17 nodes
    (where the dense form stops paying off) go to rustworkx. Values match
    ``networkx.betweenness_centrality`` (self-loops and duplicate edges are ignored, edges
    are taken as undirected).

    Parameters
    ----------
    edge_indices : sequence of array-like of shape (2, E_i)
        Edges of each graph (NumPy arrays or torch tensors).
    num_nodes : sequence of int
        Node count of each graph.
    normalized : bool, default=True
        Divide by ``(n - 1)(n - 2)`` as networkx does; else return pair counts.

    Returns
    -------
    list of ndarray of shape (num_nodes[i],), float64

    Examples
    --------
    >>> path = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> [v.tolist() for v in betweenness_centrality_batch([path], [3])]
    [[0.0, 1.0, 0.0]]
    """
    if len(edge_indices) != len(num_nodes):
        raise ValueError(f"{len(edge_indices)} edge arrays but {len(num_nodes)} node counts")
    edge_index, edge_graph, sizes, counts = _check_packed(*_pack(edge_indices), num_nodes)
    out: list[np.ndarray] = [np.zeros(0) for _ in range(sizes.size)]
    for block, raw in _raw_betweenness_blocks(edge_index, edge_graph, sizes, counts):
        for row, i in enumerate(block):
            out[i] = _scale(raw[row, : sizes[i]], int(sizes[i]), normalized)
    return out


def betweenness_centrality(
    edge_index: Any, num_nodes: int, *, normalized: bool = True
) -> np.ndarray:
    """Betweenness centrality of one undirected graph (see :func:`betweenness_centrality_batch`).

    Examples
    --------
    >>> star = np.array([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]])
    >>> betweenness_centrality(star, 4).tolist()
    [1.0, 0.0, 0.0, 0.0]
    """
    return betweenness_centrality_batch([edge_index], [num_nodes], normalized=normalized)[0]


def central_nodes_packed(
    edge_index: Any,
    edge_graph: Any,
    num_nodes: Any,
    *,
    weights: Any = None,
) -> np.ndarray:
    """:func:`central_nodes` for graphs packed into one edge array, as in a PyG batch.

    Parameters
    ----------
    edge_index : array-like of shape (2, E)
        Edges of all graphs, each with its graph's own node numbering ``0..n_i-1``.
    edge_graph : array-like of shape (E,)
        Graph of each edge.
    num_nodes : array-like of shape (n_graphs,)
        Node count of each graph.
    weights : array-like of shape (sum(num_nodes),), default=None
        Tie-breaking weights of all nodes, graph after graph.

    Returns
    -------
    ndarray of shape (n_graphs,), int64

    Examples
    --------
    >>> edges = np.array([[0, 1, 1, 2, 0, 1], [1, 0, 2, 1, 1, 0]])
    >>> central_nodes_packed(edges, [0, 0, 0, 0, 1, 1], [3, 2],
    ...                      weights=[0, 0, 0, 0.1, 0.9]).tolist()
    [1, 1]
    """
    edge_index, edge_graph, sizes, counts = _check_packed(edge_index, edge_graph, num_nodes)
    node_offsets = offsets(sizes)
    if weights is not None:
        weights = _to_numpy(weights)
        if weights.size != node_offsets[-1]:
            raise ValueError(f"{weights.size} weights for {node_offsets[-1]} nodes")
    out = np.full(sizes.size, -1, dtype=np.int64)
    for block, raw in _raw_betweenness_blocks(edge_index, edge_graph, sizes, counts):
        m = raw.shape[1]
        own = sizes[block]
        padded = own.min() < m
        if padded:  # padding nodes are not candidates
            raw = np.where(np.arange(m) < own[:, None], raw, -np.inf)
        top = raw.max(axis=1, keepdims=True)  # betweenness is >= 0
        ties = raw >= top - 1e-9 * np.maximum(1.0, top)
        if weights is not None:
            index = node_offsets[block, None] + np.arange(m)
            if padded:
                np.minimum(index, max(weights.size - 1, 0), out=index)
            ties = np.where(ties, weights[index], -np.inf)
        out[block] = np.argmax(ties, axis=1)  # first maximum: lowest index among equals
    return out


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64).reshape(-1)


def central_nodes(
    edge_indices: Sequence[Any],
    num_nodes: Sequence[int],
    *,
    weights: Sequence[Any] | None = None,
) -> np.ndarray:
    """Index of the most betweenness-central node of each graph (``-1`` for empty graphs).

    Ties (values equal up to rounding) go to the node with the largest ``weights`` entry,
    then to the lowest index, so the choice is deterministic. In a graph without edges every
    node ties: the highest-weight node (or node 0) is chosen.

    Parameters
    ----------
    edge_indices : sequence of array-like of shape (2, E_i)
    num_nodes : sequence of int
    weights : sequence of array-like of shape (num_nodes[i],), default=None
        Tie-breaking weights per node (for example the patches' attention); an entry may be
        None (no preference among that graph's nodes).

    Returns
    -------
    ndarray of shape (n_graphs,), int64

    Examples
    --------
    >>> path = np.array([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> central_nodes([path, np.zeros((2, 0)), np.zeros((2, 0))], [3, 0, 2],
    ...               weights=[None, None, np.array([0.2, 0.7])]).tolist()
    [1, -1, 1]
    """
    if len(edge_indices) != len(num_nodes):
        raise ValueError(f"{len(edge_indices)} edge arrays but {len(num_nodes)} node counts")
    flat = None
    if weights is not None:
        if len(weights) != len(num_nodes):
            raise ValueError(f"{len(weights)} weight arrays for {len(num_nodes)} graphs")
        parts = []
        for i, (w, n) in enumerate(zip(weights, num_nodes)):
            w = np.zeros(int(n)) if w is None else _to_numpy(w)
            if w.size != n:
                raise ValueError(f"graph {i}: {w.size} weights for {n} nodes")
            parts.append(w)
        flat = np.concatenate(parts) if parts else np.zeros(0)
    edge_index, edge_graph = _pack(edge_indices)
    return central_nodes_packed(edge_index, edge_graph, num_nodes, weights=flat)
