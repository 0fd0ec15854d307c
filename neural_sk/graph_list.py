"""GraphList: the graphs of many studies in flat arrays, one ``Data`` made per access."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from .graphs import data_factory
from .utils.validation import check_index

__all__ = ["GraphList", "concat_graph_lists"]

_ROWS, _EDGES, _OBJECTS = "rows", "edges", "objects"


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _gather(ptr: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the segments ``index`` (in that order) and their new offsets."""
    counts = ptr[index + 1] - ptr[index]
    new_ptr = _offsets(counts)
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
        total = 0
        for kind, values, _ in self._attributes.values():
            if kind == _OBJECTS:
                total += sum(v.nbytes for v in values if isinstance(v, np.ndarray))
                total += sum(v.element_size() * v.numel() for v in values
                             if hasattr(v, "element_size") and hasattr(v, "numel"))
            else:
                total += values.nbytes
        return total

    @property
    def node_counts(self) -> np.ndarray:
        """Number of nodes of each graph (the rows of ``x``)."""
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

    def __add__(self, other: Any) -> Any:
        if isinstance(other, GraphList) and other.keys == self.keys and all(
                self._attributes[k][0] == other._attributes[k][0] for k in self.keys):
            return concat_graph_lists([self, other])
        return list(self) + list(other)

    def __radd__(self, other: Any) -> list:
        return list(other) + list(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"GraphList(n={self._n}, keys={self.keys})"


def concat_graph_lists(parts: Sequence[GraphList]) -> GraphList:
    """Join GraphLists with the same attributes, in order."""
    first = parts[0]
    out = {}
    for name in first.keys:
        kind = first._attributes[name][0]
        chunks = [p._attributes[name] for p in parts]
        if kind == _OBJECTS:
            out[name] = (kind, [v for _, values, _ in chunks for v in values], None)
            continue
        values = np.concatenate([values for _, values, _ in chunks])
        counts = np.concatenate([np.diff(ptr) for _, _, ptr in chunks])
        out[name] = (kind, values, _offsets(counts))
    return GraphList(out)

