"""The patch grid as a graph: grid edges, subgraphs of kept patches, top-k masks, offsets.

Everything here works on NumPy arrays (``edge_index`` of shape ``[2, E]``, int64) so that
tests can call it directly and the estimators stay thin. None of it loops over patches or
edges in Python: grid edges are built once per grid shape and kept edges are selected with
boolean masks.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

__all__ = ["offsets", "grid_edges", "subgraph_edges", "batch_subgraph_edges", "top_k_mask"]


def offsets(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """Start offsets of consecutive segments of the given lengths, with the total at the end.

    Segment ``i`` of a flat array is ``values[out[i]:out[i + 1]]``.

    Examples
    --------
    >>> offsets([2, 0, 3]).tolist()
    [0, 2, 2, 5]
    """
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    out = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


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
        ``ptr[i]:ptr[i + 1]``, already relabelled to its own kept nodes), each
        study's edges sorted by (source, target).
    ptr : ndarray of shape (n + 1,), int64
        Row offsets of each study in ``pairs``.

    Examples
    --------
    >>> mask = np.array([[True, True, False, False], [True, False, False, True]])
    >>> pairs, ptr = batch_subgraph_edges(grid_edges((2, 2)), mask)
    >>> pairs.tolist(), ptr.tolist()
    ([[0, 1], [1, 0]], [0, 2, 2])
    """
    keep_mask = np.asarray(keep_mask, dtype=bool)
    if keep_mask.ndim != 2:
        raise ValueError(f"keep_mask must be 2-D (n, num_nodes), got shape {keep_mask.shape}")
    study, node = np.nonzero(keep_mask)  # grouped by study, nodes ascending
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
    node_start = offsets(np.bincount(study, minlength=n))
    rank = np.empty(n * num_nodes, dtype=np.int64)
    rank[study * num_nodes + node] = np.arange(node.size) - node_start[study]
    pairs = np.empty((int(np.count_nonzero(hit)), 2), dtype=np.int64)
    pairs[:, 0] = rank[(row_start + src[edge])[hit]]
    pairs[:, 1] = rank[target[hit]]
    return pairs, offsets(np.bincount(owner[hit], minlength=n))


def _sorted_by_source(edge_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    src, dst = edge_index
    # grid_edges is already sorted: checking is linear, sorting is not.
    if not np.all((src[1:] > src[:-1]) | ((src[1:] == src[:-1]) & (dst[1:] >= dst[:-1]))):
        order = np.lexsort((dst, src))
        src, dst = src[order], dst[order]
    return src, dst


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

