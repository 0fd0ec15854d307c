"""GraphList: the graphs of many studies in flat arrays, one ``Data`` made per access.

This module is the one owner of the edge layout: graph ``i``'s ``[2, E_i]`` edge index is
one contiguous block of a flat int64 array, its sources then its targets
(:func:`layout_edges` writes it, :meth:`GraphList.packed_edges` reads it), and of the
conversion from a user's list of ``Data`` (:meth:`GraphList.from_data`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..utils.validation import check_index
from .data import attribute_dicts, data_factory
from .grid import offsets

__all__ = ["GraphList", "concat_graph_lists", "layout_edges", "edge_blocks"]

_ROWS, _EDGES, _OBJECTS = "rows", "edges", "objects"


def layout_edges(*groups: tuple[Any, Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Lay out groups of per-graph edges as a GraphList ``"edges"`` attribute.

    Each group is ``(src, dst, counts)``: the edges of all graphs, graph after graph, graph
    ``i`` owning ``counts[i]`` consecutive ones. Within each graph the groups follow each
    other in the order given (for example visual edges, then report edges, then links).

    Parameters
    ----------
    *groups : tuple of (ndarray (E_g,), ndarray (E_g,), ndarray (n,))

    Returns
    -------
    flat : ndarray of shape (2 * E,), int64
        Graph ``i``'s edge index is ``flat[2 * ptr[i]:2 * ptr[i + 1]].reshape(2, -1)``.
    ptr : ndarray of shape (n + 1,), int64
        Edge offsets of the graphs.

    Examples
    --------
    >>> flat, ptr = layout_edges((np.array([0, 1, 0]), np.array([1, 0, 2]), np.array([2, 1])),
    ...                          (np.array([5]), np.array([6]), np.array([0, 1])))
    >>> flat[2 * ptr[1]:2 * ptr[2]].reshape(2, -1).tolist()
    [[0, 5], [2, 6]]
    """
    counts = [np.asarray(c, dtype=np.int64) for _, _, c in groups]
    total = np.sum(counts, axis=0)
    ptr = offsets(total)
    flat = np.empty(2 * int(ptr[-1]), dtype=np.int64)
    start = 2 * ptr[:-1]
    for (src, dst, _), count in zip(groups, counts):
        if len(src):
            # Edge j of graph i goes to its block's source row; its target E_i further on.
            at = np.arange(len(src)) + np.repeat(start - offsets(count)[:-1], count)
            flat[at] = src
            flat[at + np.repeat(total, count)] = dst
        start = start + count
    return flat, ptr


def edge_blocks(pairs: np.ndarray, ptr: np.ndarray) -> np.ndarray:
    """Lay out grouped ``[E, 2]`` edges so each group is its own contiguous ``[2, E_i]`` block.

    Group ``i`` (rows ``ptr[i]:ptr[i + 1]`` of ``pairs``) becomes
    ``flat[2 * ptr[i]:2 * ptr[i + 1]].reshape(2, -1)``: a view of its block alone,
    so a tensor made from it holds (and pickles) only that group's edges. The one-group
    case of :func:`layout_edges`.

    Examples
    --------
    >>> flat = edge_blocks(np.array([[0, 1], [1, 0], [0, 2]]), np.array([0, 2, 3]))
    >>> flat[0:4].reshape(2, -1).tolist(), flat[4:6].reshape(2, -1).tolist()
    ([[0, 1], [1, 0]], [[0], [2]])
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return layout_edges((pairs[:, 0], pairs[:, 1], np.diff(ptr)))[0]


def _gather(ptr: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the segments ``index`` (in that order) and their new offsets."""
    counts = ptr[index + 1] - ptr[index]
    new_ptr = offsets(counts)
    positions = np.arange(int(new_ptr[-1])) + np.repeat(ptr[index] - new_ptr[:-1], counts)
    return positions, new_ptr


class GraphList(Sequence):
    """The graphs of ``n`` studies, held in flat arrays; a list of ``Data`` to its users.

    ``graphs[i]`` is study ``i``'s ``torch_geometric.data.Data`` (made on access, its
    tensors holding only their own bytes); ``graphs[index_array]`` and slices give a
    GraphList of those studies. Pipeline steps that handle all graphs at once (the fuser,
    the GNN's mini-batching) read the flat arrays directly, so no step has to build and
    then re-read thousands of small objects.

    Parameters
    ----------
    attributes : dict
        ``name -> (kind, values, ptr)`` in the order the graphs' attributes take.
        ``kind="rows"``: ``values[ptr[i]:ptr[i + 1]]`` belongs to graph ``i`` (node
        features, positions, ...). ``kind="edges"``: ``values`` is 1-D int64 and graph
        ``i``'s ``[2, E_i]`` edge index is ``values[2 * ptr[i]:2 * ptr[i + 1]]`` reshaped,
        its sources then its targets (``E_i = ptr[i + 1] - ptr[i]``). ``kind="objects"``:
        ``values`` is a list with one Python object per graph (None: the graph lacks the
        attribute) and ``ptr`` is None.

    Examples
    --------
    >>> import numpy as np
    >>> graphs = GraphList({
    ...     "x": ("rows", np.arange(5, dtype=np.float32).reshape(5, 1), np.array([0, 2, 5])),
    ...     "edge_index": ("edges", np.array([0, 1, 1, 0, 0, 1, 1, 2]), np.array([0, 2, 4])),
    ... })
    >>> len(graphs), graphs[1].num_nodes, graphs[1].edge_index.tolist()
    (2, 3, [[0, 1], [1, 2]])
    >>> [g.num_nodes for g in graphs[[1, 0]]]
    [3, 2]
    """

    def __init__(self, attributes: dict[str, tuple[str, Any, Any]]) -> None:
        lengths = set()
        checked = {}
        for name, (kind, values, ptr) in attributes.items():
            if kind == _OBJECTS:
                values = list(values)
                lengths.add(len(values))
            elif kind in (_ROWS, _EDGES):
                ptr = np.asarray(ptr, dtype=np.int64)
                values = np.asarray(values)
                size = values.shape[0] if kind == _ROWS else values.size // 2
                if ptr.ndim != 1 or ptr.size == 0 or ptr[0] != 0 or ptr[-1] != size \
                        or np.any(np.diff(ptr) < 0):
                    raise ValueError(f"GraphList attribute {name!r}: offsets do not cover "
                                     f"its {size} rows")
                lengths.add(ptr.size - 1)
            else:
                raise ValueError(f"GraphList attribute {name!r} has unknown kind {kind!r}")
            checked[name] = (kind, values, ptr)
        if len(lengths) > 1:
            raise ValueError(f"GraphList attributes disagree on the number of graphs: "
                             f"{sorted(lengths)}")
        self._attributes = checked
        self._n = lengths.pop() if lengths else 0

    @classmethod
    def from_data(cls, graphs: Iterable[Any]) -> GraphList:
        """The graphs of a sequence of ``torch_geometric.data.Data`` as a GraphList.

        The one adapter from user lists of ``Data``: a GraphList is returned as it is.
        ``edge_index`` (when every graph has an integer ``[2, E_i]`` one) becomes an
        ``"edges"`` attribute; a tensor attribute that every graph has, with the same dtype
        and trailing shape, becomes ``"rows"``; anything else (names, ints, a tensor some
        graphs lack or whose width differs) is kept per graph as ``"objects"``, so no
        graph is changed and the steps that read the graphs name the one that does not fit.

        Parameters
        ----------
        graphs : iterable of torch_geometric.data.Data or GraphList

        Returns
        -------
        GraphList

        Examples
        --------
        >>> import torch
        >>> from torch_geometric.data import Data
        >>> g = Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]), name="a")
        >>> graphs = GraphList.from_data([g, g])
        >>> graphs.keys, graphs.node_counts.tolist(), graphs[1].name
        (['x', 'edge_index', 'name'], [2, 2], 'a')
        """
        if isinstance(graphs, GraphList):
            return graphs
        dicts = attribute_dicts(list(graphs))
        keys = list(dict.fromkeys(key for d in dicts for key in d))
        return cls({key: _column(key, [d.get(key) for d in dicts]) for key in keys})

    # -- the flat view -------------------------------------------------------------------
    @property
    def keys(self) -> list[str]:
        """Attribute names, in order."""
        return list(self._attributes)

    def flat(self, name: str) -> tuple[Any, np.ndarray | None]:
        """``(values, ptr)`` of attribute ``name`` as stored (see the class docstring)."""
        _, values, ptr = self._attributes[name]
        return values, ptr

    def packed_edges(self, name: str = "edge_index") -> tuple[np.ndarray, np.ndarray]:
        """All edges as one ``[2, E]`` array (each graph's own node numbering) and the
        edge offsets ``[n + 1]``."""
        values, ptr = self.flat(name)
        counts = np.diff(ptr)
        src = np.arange(int(ptr[-1])) + np.repeat(ptr[:-1], counts)
        return np.stack([values[src], values[src + np.repeat(counts, counts)]]), ptr

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what the graphs' tensors would hold together)."""
        return int(self.nbytes_each().sum())

    def nbytes_each(self) -> np.ndarray:
        """Bytes of each graph's arrays.

        Returns
        -------
        ndarray of shape (n,), int64
            One count per graph; they add up to :attr:`nbytes`.
        """
        out = np.zeros(self._n, dtype=np.int64)
        for kind, values, ptr in self._attributes.values():
            if kind == _OBJECTS:
                out += [_object_nbytes(v) for v in values]
            else:
                row = values.itemsize * (2 if kind == _EDGES else int(np.prod(values.shape[1:])))
                out += np.diff(ptr) * row
        return out

    @property
    def node_counts(self) -> np.ndarray:
        """Number of nodes of each graph (the rows of ``x``)."""
        if self._n == 0:
            return np.zeros(0, dtype=np.int64)
        return np.diff(self.flat("x")[1])

    # -- the list view -------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def _makers(self) -> list:
        """One ``(name, make(i))`` per attribute; ``make(i)`` gives graph ``i``'s value."""
        import torch

        # NumPy slices: a tensor's storage then covers this graph only, so a pickled graph
        # carries only its own bytes. Plain-int offsets: this runs once per graph.
        from_numpy = torch.from_numpy
        makers = []
        for name, (kind, values, ptr) in self._attributes.items():
            if kind == _OBJECTS:
                makers.append((name, values.__getitem__))
            elif kind == _ROWS:
                starts = ptr.tolist()
                makers.append((name, lambda i, v=values, p=starts:
                               from_numpy(v[p[i]:p[i + 1]])))
            else:
                starts = (2 * ptr).tolist()
                makers.append((name, lambda i, v=values, p=starts:
                               from_numpy(v[p[i]:p[i + 1]]).view(2, -1)))
        return makers

    def _graphs(self, index: Iterable[int]) -> Iterator[Any]:
        makers = self._makers()
        # Graphs lacking an object attribute (None) have other keys: no shared builder.
        uniform = not any(kind == _OBJECTS and any(v is None for v in values)
                          for kind, values, _ in self._attributes.values())
        build = data_factory(tuple(self._attributes)) if uniform else None
        for i in index:
            if build is not None:
                yield build({name: make(i) for name, make in makers})
            else:
                mapping = {name: value for name, make in makers
                           if (value := make(i)) is not None}
                yield data_factory(tuple(mapping))(mapping)

    def __getitem__(self, key: Any) -> Any:
        index = check_index(key, self._n, what="graphs")
        if isinstance(key, (int, np.integer)):
            return next(self._graphs(index.tolist()))
        return self.take(index)

    def take(self, index: np.ndarray) -> GraphList:
        """The graphs ``index`` (in that order) as a new GraphList with its own arrays."""
        index = np.asarray(index, dtype=np.int64)
        out = {}
        for name, (kind, values, ptr) in self._attributes.items():
            if kind == _OBJECTS:
                out[name] = (kind, [values[i] for i in index], None)
                continue
            positions, new_ptr = _gather(ptr, index)
            if kind == _EDGES:  # each graph's block is 2 * E_i long
                positions, _ = _gather(2 * ptr, index)
            out[name] = (kind, values[positions], new_ptr)
        return GraphList(out)

    def __iter__(self) -> Iterator[Any]:
        return self._graphs(range(self._n))

    def _layout(self) -> list[tuple]:
        """What must agree for two GraphLists to be joined array by array."""
        return [(name, kind) if kind == _OBJECTS else (name, kind, values.dtype, values.shape[1:])
                for name, (kind, values, _) in self._attributes.items()]

    def __add__(self, other: Any) -> Any:
        if isinstance(other, GraphList):
            return concat_graph_lists([self, other])
        return list(self) + list(other)

    def __radd__(self, other: Any) -> list:
        return list(other) + list(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"GraphList(n={self._n}, keys={self.keys})"


def _object_nbytes(value: Any) -> int:
    """Array bytes of one per-graph object (0 for names and other non-arrays)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if hasattr(value, "element_size") and hasattr(value, "numel"):
        return int(value.element_size() * value.numel())
    return 0


def _column(key: str, values: list) -> tuple[str, Any, Any]:
    """One attribute of every graph as ``(kind, values, ptr)`` (see :meth:`GraphList.from_data`)."""
    import torch

    tensors = all(isinstance(v, torch.Tensor) and v.dim() >= 1 for v in values)
    if tensors and values:
        first = values[0]
        try:
            arrays = [v.detach().cpu().numpy() for v in values]
        except TypeError:  # a dtype NumPy lacks (bfloat16): keep the tensors
            return _OBJECTS, values, None
        if key == "edge_index" and all(a.ndim == 2 and a.shape[0] == 2 for a in arrays) \
                and not first.is_floating_point() and not first.is_complex():
            # A row-major [2, E_i] array read flat is already sources then targets.
            flat = np.concatenate([a.reshape(-1) for a in arrays]).astype(np.int64, copy=False)
            return _EDGES, flat, offsets([a.shape[1] for a in arrays])
        if all(v.dtype == first.dtype and v.shape[1:] == first.shape[1:] for v in values):
            return _ROWS, np.concatenate(arrays), offsets([a.shape[0] for a in arrays])
    return _OBJECTS, values, None


def concat_graph_lists(parts: Sequence[GraphList]) -> GraphList:
    """Join GraphLists in order (graphs of different attributes through their ``Data``).

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> g = GraphList.from_data([Data(x=torch.ones(2, 1), edge_index=torch.zeros(2, 0).long())])
    >>> len(concat_graph_lists([g, g, g]))
    3
    """
    first = parts[0]
    if any(p._layout() != first._layout() for p in parts[1:]):
        return GraphList.from_data([g for p in parts for g in p])
    out = {}
    for name in first.keys:
        kind = first._attributes[name][0]
        chunks = [p._attributes[name] for p in parts]
        if kind == _OBJECTS:
            out[name] = (kind, [v for _, values, _ in chunks for v in values], None)
            continue
        values = np.concatenate([values for _, values, _ in chunks])
        counts = np.concatenate([np.diff(ptr) for _, _, ptr in chunks])
        out[name] = (kind, values, offsets(counts))
    return GraphList(out)

