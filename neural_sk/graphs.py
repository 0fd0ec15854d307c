"""Small, pure, vectorised graph helpers used by the pruner and the fuser.

Everything here works on NumPy arrays (``edge_index`` of shape ``[2, E]``, int64) so that
tests can call it directly and the estimators stay thin. None of it loops over patches or
edges in Python: grid edges are built once per grid shape, kept edges are selected with
boolean masks, and betweenness centrality runs Brandes' algorithm for many small graphs
at once as batched matrix products, once per distinct graph.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "grid_edges",
    "subgraph_edges",
    "batch_subgraph_edges",
    "edge_blocks",
    "top_k_mask",
    "betweenness_centrality",
    "betweenness_centrality_batch",
    "central_nodes",
    "central_nodes_packed",
    "make_data",
    "data_factory",
    "attribute_dicts",
]

# Above this many nodes the dense all-sources Brandes costs more than networkx's sparse one.
_DENSE_MAX_NODES = 128
# Entries of one [B, m, m] block; bounds the memory of the batched centrality.
_BLOCK_ENTRIES = 1 << 20


@functools.lru_cache(maxsize=64)
def _grid_edges_cached(h: int, w: int, connectivity: int) -> np.ndarray:
    idx = np.arange(h * w, dtype=np.int64).reshape(h, w)
    pairs = [(idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])]  # right, down
    if connectivity == 8:
        pairs += [(idx[:-1, :-1], idx[1:, 1:]), (idx[:-1, 1:], idx[1:, :-1])]  # diagonals
    src = np.concatenate([a.ravel() for a, _ in pairs])
    dst = np.concatenate([b.ravel() for _, b in pairs])
    both_src = np.concatenate([src, dst])
    both_dst = np.concatenate([dst, src])
    # Sorted by (source, target): subgraphs keep this order, which makes results easy to
    # compare and independent of how the pairs above were listed.
    order = np.lexsort((both_dst, both_src))
    edges = np.stack([both_src[order], both_dst[order]])
    edges.setflags(write=False)  # cached and shared: nobody may modify it
    return edges


def grid_edges(grid_shape: Sequence[int], connectivity: int = 4) -> np.ndarray:
    """Undirected edges of an ``h x w`` patch grid, both directions, built once per shape.

    Patch ``p`` sits at row ``p // w`` and column ``p % w`` (row-major, as in
    :class:`~neural_sk.StudySet`). The result is cached and read-only.

    Parameters
    ----------
    grid_shape : tuple of int
        ``(h, w)``.
    connectivity : {4, 8}, default=4
        4 links left/right/up/down neighbours (the paper); 8 adds the diagonals.

    Returns
    -------
    edge_index : ndarray of shape (2, E), int64
        Sorted by (source, target); every edge appears in both directions.

    Examples
    --------
    >>> grid_edges((2, 2)).tolist()
    [[0, 0, 1, 1, 2, 2, 3, 3], [1, 2, 0, 3, 0, 3, 1, 2]]
    >>> grid_edges((2, 2), connectivity=8).shape
    (2, 12)
    """
    h, w = (int(v) for v in grid_shape)
    if h < 1 or w < 1:
        raise ValueError(f"grid_shape must be two positive ints, got {tuple(grid_shape)}")
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    return _grid_edges_cached(h, w, int(connectivity))


def subgraph_edges(edge_index: np.ndarray, keep_mask: np.ndarray) -> np.ndarray:
    """Edges among the kept nodes, relabelled to ``0..k-1`` in the order of the kept nodes.

    Parameters
    ----------
    edge_index : ndarray of shape (2, E)
        Edges of the full graph.
    keep_mask : ndarray of shape (num_nodes,), bool
        Nodes to keep; node ``j`` of the subgraph is ``np.flatnonzero(keep_mask)[j]``.

    Returns
    -------
    ndarray of shape (2, E'), int64

    Examples
    --------
    >>> edges = grid_edges((2, 2))
    >>> subgraph_edges(edges, np.array([True, True, False, True])).tolist()
    [[0, 1, 1, 2], [1, 0, 2, 1]]
    """
    keep_mask = np.asarray(keep_mask, dtype=bool)
    edge_index = np.asarray(edge_index, dtype=np.int64)
    both = keep_mask[edge_index[0]] & keep_mask[edge_index[1]]
    relabel = np.cumsum(keep_mask) - 1
    return relabel[edge_index[:, both]]


def batch_subgraph_edges(
    edge_index: np.ndarray, keep_mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`subgraph_edges` for many node masks over one graph, in one vectorised pass.

    Parameters
    ----------
    edge_index : ndarray of shape (2, E)
        Edges of the shared full graph (for example :func:`grid_edges`).
    keep_mask : ndarray of shape (n, num_nodes), bool
        One row of kept nodes per study.

    Returns
    -------
    pairs : ndarray of shape (E_total, 2), int64
        The relabelled edges of all studies, study after study (study ``i`` owns rows
        ``offsets[i]:offsets[i + 1]``, already relabelled to its own kept nodes), each
        study's edges sorted by (source, target).
    offsets : ndarray of shape (n + 1,), int64
        Row offsets of each study in ``pairs``.

    Examples
    --------
    >>> mask = np.array([[True, True, False, False], [True, False, False, True]])
    >>> pairs, offsets = batch_subgraph_edges(grid_edges((2, 2)), mask)
    >>> pairs.tolist(), offsets.tolist()
    ([[0, 1], [1, 0]], [0, 2, 2])
    """
    keep_mask = np.asarray(keep_mask, dtype=bool)
    if keep_mask.ndim != 2:
        raise ValueError(f"keep_mask must be 2-D (n, num_nodes), got shape {keep_mask.shape}")
    study, node = np.nonzero(keep_mask)  # grouped by study, nodes ascending
    return _batch_subgraph_edges(edge_index, keep_mask, study, node)


def _batch_subgraph_edges(edge_index: np.ndarray, keep_mask: np.ndarray, study: np.ndarray,
                          node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`batch_subgraph_edges` given ``np.nonzero(keep_mask)`` (callers often have it)."""
    n, num_nodes = keep_mask.shape
    src, dst = _sorted_by_source(np.asarray(edge_index, dtype=np.int64))
    # Out-edges of the kept nodes only (CSR expansion): the work grows with the kept
    # nodes and their degree, not with n times the full edge count.
    ptr = np.searchsorted(src, np.arange(num_nodes + 1))
    degree = ptr[node + 1] - ptr[node]
    first = np.repeat(ptr[node] - np.cumsum(degree) + degree, degree)
    edge = first + np.arange(first.size)
    owner = np.repeat(study, degree)
    row_start = owner * num_nodes
    target = row_start + dst[edge]  # flat index into keep_mask
    hit = keep_mask.reshape(-1)[target]
    # New label of each kept node: its rank among its study's kept nodes. Only kept
    # nodes are ever looked up, so the rest of the table stays unwritten.
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(study, minlength=n), out=offsets[1:])
    rank = np.empty(n * num_nodes, dtype=np.int64)
    rank[study * num_nodes + node] = np.arange(node.size) - offsets[study]
    pairs = np.empty((int(np.count_nonzero(hit)), 2), dtype=np.int64)
    pairs[:, 0] = rank[(row_start + src[edge])[hit]]
    pairs[:, 1] = rank[target[hit]]
    np.cumsum(np.bincount(owner[hit], minlength=n), out=offsets[1:])
    return pairs, offsets


def _sorted_by_source(edge_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    src, dst = edge_index
    # grid_edges is already sorted: checking is linear, sorting is not.
    if not np.all((src[1:] > src[:-1]) | ((src[1:] == src[:-1]) & (dst[1:] >= dst[:-1]))):
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
    return src, dst


def edge_blocks(pairs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Lay out grouped ``[E, 2]`` edges so each group is its own contiguous ``[2, E_i]`` block.

    Group ``i`` (rows ``offsets[i]:offsets[i + 1]`` of ``pairs``) becomes
    ``flat[2 * offsets[i]:2 * offsets[i + 1]].reshape(2, -1)``: a view of its block alone,
    so a tensor made from it holds (and pickles) only that group's edges.

    Examples
    --------
    >>> flat = edge_blocks(np.array([[0, 1], [1, 0], [0, 2]]), np.array([0, 2, 3]))
    >>> flat[0:4].reshape(2, -1).tolist(), flat[4:6].reshape(2, -1).tolist()
    ([[0, 1], [1, 0]], [[0], [2]])
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    offsets = np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    local = np.arange(pairs.shape[0]) - np.repeat(offsets[:-1], counts)
    start = np.repeat(2 * offsets[:-1], counts) + local
    flat = np.empty(2 * pairs.shape[0], dtype=np.int64)
    flat[start] = pairs[:, 0]
    flat[start + np.repeat(counts, counts)] = pairs[:, 1]
    return flat


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` highest scores in each row; ties go to the lower index.

    Uses a partial sort (``np.partition``), linear in the number of columns, then resolves
    ties at the k-th value by position, so the result never depends on the sort order.

    Parameters
    ----------
    scores : ndarray of shape (n, P)
        Finite scores.
    k : int
        Entries to keep per row, clipped to ``[0, P]``.

    Returns
    -------
    ndarray of shape (n, P), bool
        Exactly ``min(k, P)`` True values per row.

    Examples
    --------
    >>> top_k_mask(np.array([[0.1, 0.5, 0.5, 0.2]]), 2).astype(int).tolist()
    [[0, 1, 1, 0]]
    >>> top_k_mask(np.array([[0.5, 0.5, 0.5, 0.2]]), 2).astype(int).tolist()
    [[1, 1, 0, 0]]
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n, P), got shape {scores.shape}")
    n, p = scores.shape
    k = int(min(max(k, 0), p))
    if k == 0:
        return np.zeros((n, p), dtype=bool)
    if k == p:
        return np.ones((n, p), dtype=bool)
    kth = np.partition(scores, p - k, axis=1)[:, p - k, None]  # the k-th largest value
    keep = scores >= kth
    extra = keep.sum(axis=1) - k  # ties at the k-th value beyond the k wanted
    tied = np.flatnonzero(extra)
    if tied.size:  # only these rows need the running count of ties
        rows = scores[tied]
        greater = rows > kth[tied]
        equal = rows == kth[tied]
        missing = k - greater.sum(axis=1, keepdims=True)
        keep[tied] = greater | (equal & (np.cumsum(equal, axis=1) <= missing))
    return keep


# --- betweenness centrality ---------------------------------------------------------------


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


def _networkx_betweenness(edges: np.ndarray, n: int) -> np.ndarray:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(edges.T.tolist())
    values = nx.betweenness_centrality(graph, normalized=False)
    return np.array([values[i] for i in range(n)]) * 2.0  # back to the raw count


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
    for i in np.flatnonzero(sizes > _DENSE_MAX_NODES):
        raw = _networkx_betweenness(edge_index[:, edge_graph == i], int(sizes[i]))
        yield np.array([i]), raw[None, :]
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
    starts = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum([(hi - lo) * m * m for lo, hi, m in pieces], out=starts[1:])
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
    on each block, from all sources at once, as matrix products; graphs above 128 nodes
    (where the dense form stops paying off) fall back to networkx. Values match
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
    node_offsets = np.zeros(sizes.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=node_offsets[1:])
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


# --- PyG Data construction ----------------------------------------------------------------


_FAST = None  # (Data, GlobalStorage, template attributes) once the layout is verified
# Data's own properties whose setters only store the value (``self._store.key = value``).
_FORWARDING_PROPERTIES = frozenset({"x", "edge_index", "edge_attr", "y", "pos"})


@functools.lru_cache(maxsize=256)
def _plain_key(key: str) -> bool:
    """True when ``Data.key = value`` only stores the value in the graph's store."""
    from torch_geometric.data import Data

    if key.startswith("_"):
        return False
    return key in _FORWARDING_PROPERTIES or getattr(getattr(Data, key, None), "fset",
                                                     None) is None


def _fast_layout() -> Any:
    """Check once that this PyG version lays out ``Data`` as expected; else return False."""
    global _FAST
    if _FAST is None:
        _FAST = False
        try:
            from torch_geometric.data import Data
            from torch_geometric.data.storage import GlobalStorage

            template = Data()
            store = template.__dict__.get("_store")
            if (set(template.__dict__) == {"_edge_attr_cls", "_tensor_attr_cls", "_store"}
                    and type(store) is GlobalStorage
                    and set(store.__dict__) == {"_mapping", "_parent"}
                    and type(store._mapping) is dict and not store._mapping):
                extra = {k: v for k, v in template.__dict__.items() if k != "_store"}
                _FAST = (Data, GlobalStorage, extra)
        except Exception:  # pragma: no cover - any surprise: use the public constructor
            _FAST = False
    return _FAST


def data_factory(keys: Sequence[str]) -> Callable[[dict], Any]:
    """A function that builds ``Data(**mapping)`` for attribute dicts with the given keys.

    For building thousands of graphs in a row: the keys are checked once here, not once
    per graph. The returned function takes over ``mapping`` (pass a fresh dict with
    exactly these keys and no None values; it becomes the graph's attribute store) and
    returns the same graph as ``Data(**mapping)``, in about a tenth of the time (see
    :func:`make_data`).

    Parameters
    ----------
    keys : sequence of str
        The attribute names every ``mapping`` will have.

    Returns
    -------
    callable
        ``build(mapping: dict) -> torch_geometric.data.Data``.

    Examples
    --------
    >>> import torch
    >>> build = data_factory(["x", "edge_index"])
    >>> g = build({"x": torch.zeros(3, 2), "edge_index": torch.tensor([[0, 1], [1, 2]])})
    >>> g.num_nodes, g.num_edges
    (3, 2)
    """
    return _data_factory(tuple(keys))


@functools.lru_cache(maxsize=64)
def _data_factory(keys: tuple[str, ...]) -> Callable[[dict], Any]:
    fast = _fast_layout()
    if not fast or not all(map(_plain_key, keys)):  # pragma: no cover
        from torch_geometric.data import Data

        return lambda mapping: Data(**mapping)
    data_cls, storage_cls, extra = fast
    new_data, new_store, ref = data_cls.__new__, storage_cls.__new__, weakref.ref

    def build(mapping: dict) -> Any:
        data = new_data(data_cls)
        slots = data.__dict__
        slots.update(extra)
        store = new_store(storage_cls)
        store_slots = store.__dict__
        store_slots["_mapping"] = mapping
        store_slots["_parent"] = ref(data)
        slots["_store"] = store
        return data

    return build


def make_data(**attributes: Any) -> Any:
    """Build a ``torch_geometric.data.Data`` from the non-None attributes, cheaply.

    ``Data(**attributes)`` spends several microseconds in store set-up and ``__setattr__``
    hooks, which dominates when building thousands of tiny graphs. When this PyG version
    has the usual layout (checked once), the graph's store is filled directly instead; the
    resulting object is the same as ``Data(**attributes)`` (a test checks it), else the
    public constructor is used. :func:`data_factory` does the same for many graphs with
    the same keys.

    Examples
    --------
    >>> import torch
    >>> g = make_data(x=torch.zeros(3, 2), edge_index=torch.zeros(2, 0, dtype=torch.long))
    >>> g.num_nodes, g.num_edges
    (3, 0)
    """
    attributes = {k: v for k, v in attributes.items() if v is not None}
    return data_factory(tuple(attributes))(attributes)


def attribute_dicts(graphs: Sequence[Any]) -> list[dict]:
    """The attributes of each graph as a dict (key -> value), for reading only.

    ``Data.to_dict()`` copies the graph's store and attribute access goes through PyG's
    ``__getattr__``; with thousands of tiny graphs both add up. For plain ``Data``
    objects with the usual layout this returns their stores' own dicts (do not modify
    them); for anything else, ``to_dict()``.

    Parameters
    ----------
    graphs : sequence of torch_geometric.data.Data

    Returns
    -------
    list of dict

    Examples
    --------
    >>> import torch
    >>> g = make_data(x=torch.zeros(2, 1), edge_index=torch.zeros(2, 0, dtype=torch.long))
    >>> sorted(attribute_dicts([g])[0])
    ['edge_index', 'x']
    """
    fast = _fast_layout()
    if not fast:  # pragma: no cover
        return [g.to_dict() for g in graphs]
    data_cls, storage_cls, _ = fast
    out = []
    append = out.append
    for g in graphs:
        store = g.__dict__.get("_store") if type(g) is data_cls else None
        if type(store) is storage_cls:
            append(store.__dict__["_mapping"])
        else:
            append(g.to_dict())
    return out
