"""Building ``torch_geometric.data.Data`` objects cheaply, thousands at a time."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["make_data", "data_factory", "attribute_dicts"]


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
