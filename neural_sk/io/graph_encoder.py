"""Writing graph fields: a GraphList's flat arrays in, archive members out.

Each graph attribute is stored once for all studies: tensors as one flat array with offsets
(edges as local node indices, each graph's block sources then targets, as GraphList holds
them), strings as UTF-8 with offsets, numbers as one array. What is rebuilt exactly is not
stored (see :mod:`neural_sk.io.derived`): the fused graphs, when
:func:`~neural_sk.graphs.fuse_graphs` makes them from the stored visual and report graphs
(else, as in format version 1, their attributes equal to the visual or report graphs' are
references and their ``x`` / ``pos`` are rebuilt), and grid positions that follow from the
patch ids. Categorical node attributes (the report graphs' findings) are one code per node
into a table stored once (:mod:`neural_sk.io.categorical`). With ``feature_dtype="int8"``
the node features ``x`` are quantised with one scale per study.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graphs import GraphList, offsets
from .categorical import Coded, code_nodes
from .columns import Writer
from .derived import fused_strategy, grid_positions
from .format import compact_int, encode_strings, quantise_int8, to_numpy

__all__ = ["GraphEncoder"]

_EDGES = "edge_index"


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
class GraphEncoder:
    """Stores graph fields through a :class:`~neural_sk.io.columns.Writer`, in pipeline
    order (visual, report, fused), so the fused graphs can refer to the others."""

    def __init__(self, writer: Writer, feature_dtype: str,
                 grid_shape: tuple[int, int] | None = None) -> None:
        self.w, self.feature_dtype, self.grid_shape = writer, feature_dtype, grid_shape
        # (field, key) -> the attribute's values, to find repeats in the fused graphs.
        self.cache: dict[tuple[str, str], tuple] = {}
        # field -> the graphs as given: what the fused graphs are rebuilt from.
        self.given: dict[str, GraphList] = {}
        # field -> the stored spec of its patch ids (for a keep mask rebuilt from them).
        self.patch_ids: dict[str, dict] = {}

    def add(self, field: str, graphs: GraphList, ids: np.ndarray) -> dict:
        """Store one graph field; returns its spec for the metadata."""
        self.given[field] = graphs
        if field == "graphs":
            strategy = fused_strategy(graphs, self.given.get("visual_graphs"),
                                      self.given.get("report_graphs"))
            if strategy is not None:  # rebuilt on load by fuse_graphs: nothing to store
                return {"kind": "fused", "strategy": strategy}
        coded = code_nodes(graphs)
        node_type = None
        if field == "graphs" and "node_type" in graphs.keys:
            values, ptr = graphs.flat("node_type")
            if ptr is not None:
                node_type = np.asarray(values).reshape(-1).astype(np.int64)
        attrs = {}
        for key in graphs.keys:
            if coded is not None and key in coded.keys:
                attrs[key] = self._coded(field, key, graphs, coded)
            elif key == "pos" and self._grid_pos(graphs):
                counts = np.diff(graphs.flat("pos")[1])
                attrs[key] = {"kind": "tensor", "layout": "grid_pos", "shape": [2],
                              "dtype": graphs.flat("pos")[0].dtype.name, "torch": True,
                              "ptr": self.w.add_ptr(f"{field}/pos.ptr", counts, field)}
            else:
                attrs[key] = self._attribute(field, key, graphs, ids, node_type)
        if attrs.get("patch_id", {}).get("layout") == "rows" and "data" in attrs["patch_id"]:
            self.patch_ids[field] = attrs["patch_id"]
        # The metadata's JSON sorts its keys: the attributes' order is kept here.
        return {"kind": "graphs", "attrs": attrs, "order": list(graphs.keys)}

    def _grid_pos(self, graphs: GraphList) -> bool:
        """True when ``pos`` is the grid (row, col) of ``patch_id`` (rebuilt on load)."""
        if self.grid_shape is None or "patch_id" not in graphs.keys:
            return False
        pos, ptr = graphs.flat("pos")
        pid, pid_ptr = graphs.flat("patch_id")
        if ptr is None or pid_ptr is None or not np.array_equal(ptr, pid_ptr):
            return False
        pos, pid = np.asarray(pos), np.asarray(pid)
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.dtype.kind not in "fiu" or \
                pid.ndim != 1 or pid.dtype.kind not in "iu":
            return False
        return bool(np.array_equal(pos, grid_positions(pid, self.grid_shape[1], pos.dtype)))

    def _coded(self, field: str, key: str, graphs: GraphList, coded: Coded) -> dict:
        """One categorical attribute: the shared per-node codes and this attribute's table."""
        w = self.w
        codes_name = f"{field}/nodes.code"
        if codes_name not in w.arrays:
            stored = compact_int(coded.codes)
            w.add(codes_name, stored, field,
                  (coded.counts * stored.itemsize).astype(np.float64))
        spec: dict[str, Any] = {"codes": codes_name,
                                "ptr": w.add_ptr(f"{field}/nodes.ptr", coded.counts, field)}
        name = f"{field}/{key}.table"
        if key == "node_names":
            blob, offs, _ = encode_strings(coded.names)
            spec.update(kind="coded_names", data=w.add(name, blob, field),
                        offsets=w.add(name + ".offsets", compact_int(offs), field))
            return spec
        values = np.asarray(graphs.flat(key)[0])
        table = values[coded.rows]
        spec.update(kind="coded", dtype=values.dtype.name, torch=True,
                    shape=list(values.shape[1:]))
        if table.ndim == 2 and table.size and np.isin(table, (0, 1)).all():
            table = np.packbits(table.astype(bool), axis=1)  # one-hot rows: bits
            spec["encoding"] = "bits"
        elif np.issubdtype(table.dtype, np.integer):
            table = compact_int(table)
        spec["table"] = w.add(name, table, field)
        return spec

    def _attribute(self, field: str, key: str, graphs: GraphList, ids: np.ndarray,
                   node_type: np.ndarray | None) -> dict:
        name = f"{field}/{key}"
        values, ptr = graphs.flat(key)
        if ptr is not None:  # a flat column: stored as it is held
            counts = np.diff(ptr)
            present = np.ones(len(counts), dtype=bool)
            values = np.asarray(values)
            layout = "edges" if key == _EDGES and values.ndim == 1 \
                and values.size == 2 * int(ptr[-1]) else "rows"
            return self._tensor(field, key, name, values, counts, present, ids,
                                {"dtype": values.dtype.name, "torch": True}, layout, node_type)
        return self._objects(field, key, name, list(values), ids, node_type)

    def _objects(self, field: str, key: str, name: str, values: list, ids: np.ndarray,
                 node_type: np.ndarray | None) -> dict:
        w = self.w
        present = np.array([v is not None for v in values], dtype=bool)
        spec: dict[str, Any] = {}
        first = next(v for v in values if v is not None)

        def bad(i: int, why: str) -> TypeError:
            return TypeError(f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} {why}")

        if isinstance(first, str):
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, str):
                    raise bad(i, f"is {type(v).__name__}, but str in other graphs")
            spec.update(w.add_strings(name, list(values), field), container="str")
        elif isinstance(first, (list, tuple)) and all(
                isinstance(s, str) for v in values if v is not None for s in v):
            names = [list(v) if v is not None else None for v in values]
            ref = self._find_ref(field, key, ("string_lists", names))
            if ref is not None:
                return {"kind": "ref", "field": ref}
            self.cache[(field, key)] = ("string_lists", names)
            flat = [s for v in names if v is not None for s in v]
            counts = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
            blob, offsets, lengths = encode_strings(flat)
            per_graph = np.zeros(w.n)
            np.add.at(per_graph, np.repeat(np.arange(w.n), counts), lengths)
            w.add(name, blob, field, per_graph)
            spec.update(kind="string_lists", data=name,
                        offsets=w.add(name + ".offsets", compact_int(offsets), field),
                        ptr=w.add_ptr(name + ".ptr", counts, field))
        elif isinstance(first, (bool, int, float, np.generic)) and not hasattr(first, "detach"):
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, (bool, int, float, np.generic)):
                    raise bad(i, f"is {type(v).__name__}, but a number in other graphs")
            kinds = {type(v).__name__ for v in values if v is not None}
            py = "bool" if kinds == {"bool"} else "int" if kinds <= {"int", "bool"} else "float"
            filled = np.array([0 if v is None else v for v in values])
            stored = compact_int(filled) if py != "float" else filled.astype(np.float64)
            spec.update(kind="scalars", data=w.add_rows(name, stored, field), python=py)
        elif hasattr(first, "detach") or isinstance(first, (np.ndarray, list, tuple)):
            return self._object_tensors(field, key, name, values, present, ids, node_type)
        else:
            raise bad(int(np.argmax(present)),
                      f"is {type(first).__name__}: only tensors, arrays, strings and numbers "
                      "can be stored (the format never pickles)")
        if not present.all():
            spec["present"] = w.add_rows(name + ".present", present, field)
        return spec

    def _object_tensors(self, field: str, key: str, name: str, values: list,
                        present: np.ndarray, ids: np.ndarray,
                        node_type: np.ndarray | None) -> dict:
        """Tensors or arrays held one per graph (some missing, or not torch): checked for
        one dtype and shape, then stored like a flat column."""
        converted = []
        dtype = torch_ = container = None
        for i, v in enumerate(values):
            if v is None:
                converted.append(None)
                continue
            is_list = isinstance(v, (list, tuple))
            arr, dt, is_torch = to_numpy(np.asarray(v) if is_list else v)
            if arr.dtype == object:
                raise TypeError(f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} holds "
                                "Python objects; only numeric arrays can be stored")
            if dtype is None:
                dtype, torch_, container = dt, is_torch, "list" if is_list else None
            elif dt != dtype:
                raise TypeError(f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} is "
                                f"{dt}, but {dtype} in other graphs")
            converted.append(arr)
        arrays = [a for a in converted if a is not None]
        head: dict[str, Any] = {"dtype": dtype, "torch": torch_}
        if container:
            head["container"] = container
        if key == _EDGES and all(a.ndim == 2 and a.shape[0] == 2 for a in arrays):
            counts = np.array([0 if a is None else a.shape[1] for a in converted], np.int64)
            flat = np.concatenate([a.reshape(-1) for a in arrays])
            layout = "edges"
        elif all(a.ndim == 0 for a in arrays):
            flat = np.stack([np.zeros((), arrays[0].dtype) if a is None else a
                             for a in converted])
            counts, layout = None, "scalar"
        else:
            tail = arrays[0].shape[1:]
            for i, a in enumerate(converted):
                if a is not None and (a.ndim == 0 or a.shape[1:] != tail):
                    raise ValueError(
                        f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} has shape "
                        f"{a.shape}, but (*, {', '.join(map(str, tail))}) in other graphs")
            counts = np.array([0 if a is None else len(a) for a in converted], np.int64)
            flat, layout = np.concatenate(arrays), "rows"
        spec = self._tensor(field, key, name, flat, counts, present, ids, head, layout,
                            node_type)
        if spec["kind"] != "ref" and not present.all():
            spec["present"] = self.w.add_rows(name + ".present", present, field)
        return spec

    def _tensor(self, field: str, key: str, name: str, flat: np.ndarray,
                counts: np.ndarray | None, present: np.ndarray, ids: np.ndarray, head: dict,
                layout: str, node_type: np.ndarray | None) -> dict:
        """One tensor attribute of every graph, as flat values (and counts per graph)."""
        w = self.w
        spec: dict[str, Any] = {"kind": "tensor", **head}
        if layout == "edges":
            if flat.size and flat.min() < 0:
                i = int(np.searchsorted(offsets(2 * counts),
                                        int(np.argmax(flat < 0)), side="right")) - 1
                raise ValueError(f"{field}[{i}] (study {ids[i]!r}) has a negative node index "
                                 "in edge_index")
            stored = compact_int(flat)
            w.add(name, stored, field, (counts * 2 * stored.itemsize).astype(np.float64))
            spec.update(layout="edges", data=name, shape=[],
                        ptr=w.add_ptr(name + ".ptr", counts, field))
            return spec
        if layout == "scalar":
            stored = compact_int(flat) if np.issubdtype(flat.dtype, np.integer) else flat
            spec.update(layout="scalar", data=w.add_rows(name, stored, field), shape=[])
            return spec
        entry = ("tensor", head["dtype"], head["torch"], tuple(flat.shape[1:]), counts,
                 present, flat)
        ref = self._find_ref(field, key, entry)
        if ref is not None:
            return {"kind": "ref", "field": ref}
        self.cache[(field, key)] = entry
        spec.update(layout="rows", shape=list(flat.shape[1:]),
                    ptr=w.add_ptr(name + ".ptr", counts, field))
        floating = np.issubdtype(flat.dtype, np.floating)
        if (field == "graphs" and key in ("x", "pos") and floating
                and self._fused_derivation(key, flat, counts, present, node_type)):
            spec["layout"] = "fused_" + key  # rebuilt from the visual and report graphs
            return spec
        if floating and flat.ndim == 2 and flat.size and np.isin(flat, (0, 1)).all():
            # One-hot or binary features (the report graphs'): one bit each, exactly.
            stored = np.packbits(flat.astype(bool), axis=1)
            spec["encoding"] = "bits"
        elif floating and key == "x" and self.feature_dtype == "int8":
            if not np.isfinite(flat).all():
                i = int(np.searchsorted(offsets(counts), int(np.argmax(
                    ~np.isfinite(flat.reshape(len(flat), -1)).all(axis=1))), side="right")) - 1
                raise ValueError(f"{field}[{i}] (study {ids[i]!r}) has non-finite node "
                                 "features; int8 features need finite values")
            stored, scale = quantise_int8(flat, counts)
            spec.update(encoding="int8", scale=w.add_rows(name + ".scale", scale, field))
        elif floating and key == "x":
            stored = flat.astype(self.feature_dtype, copy=False)
        elif (floating and flat.size and np.isfinite(flat).all() and flat.min() >= 0
              and (np.mod(flat, 1) == 0).all() and flat.max() < 2**32):
            stored = compact_int(flat.astype(np.int64))  # grid positions and the like
            spec["encoding"] = "int"
        elif np.issubdtype(flat.dtype, np.integer):
            stored = compact_int(flat)
        else:
            stored = flat
        row = stored.nbytes / max(len(stored), 1)
        w.add(name, stored, field, (counts * row).astype(np.float64))
        spec["data"] = name
        return spec

    def _find_ref(self, field: str, key: str, entry: tuple) -> str | None:
        """Another graph field whose attribute ``key`` holds exactly the same values.

        The fused graphs repeat the visual graphs' ``patch_id`` and the report graphs'
        ``node_names``: stored once, referenced from the fused graphs.
        """
        if field != "graphs":
            return None
        for other in ("visual_graphs", "report_graphs"):
            cached = self.cache.get((other, key))
            if cached is None or cached[0] != entry[0]:
                continue
            if entry[0] == "string_lists":
                if cached[1] == entry[1]:
                    return other
            elif (cached[1:4] == entry[1:4] and np.array_equal(cached[4], entry[4])
                  and np.array_equal(cached[5], entry[5])
                  and np.array_equal(cached[6], entry[6],
                                     equal_nan=np.issubdtype(entry[6].dtype, np.floating))):
                return other
        return None

    def _fused_derivation(self, key: str, flat: np.ndarray, counts: np.ndarray,
                          present: np.ndarray, node_type: np.ndarray | None) -> bool:
        """True when the fused graphs' ``x`` or ``pos`` is exactly what GraphFuser builds
        from the stored visual and report graphs (so it need not be stored again)."""
        if node_type is None or not present.all() or flat.ndim != 2:
            return False
        vis, rep = self.cache.get(("visual_graphs", key)), self.cache.get(("report_graphs", key))
        if vis is None or vis[0] != "tensor" or not vis[5].all():
            return False
        k = vis[4]
        if key == "x":
            if rep is None or rep[0] != "tensor" or not rep[5].all():
                return False
            m = rep[4]
        else:
            m = counts - k
        if (m < 0).any() or not np.array_equal(counts, k + m) or len(node_type) != len(flat):
            return False
        expected = np.repeat(np.tile(np.array([0, 1]), len(k)), np.stack([k, m], 1).ravel())
        if not np.array_equal(node_type, expected):
            return False
        is_vis = expected == 0
        v, f_v, f_r = vis[6], flat[is_vis], flat[~is_vis]
        if key == "pos":
            return (v.ndim == 2 and f_v.shape == v.shape and np.array_equal(f_v, v)
                    and bool(np.isnan(f_r).all()))
        r = rep[6]
        dv, dr = v.shape[1], r.shape[1]
        if flat.shape[1] != dv + dr + 1 or v.ndim != 2 or r.ndim != 2:
            return False
        return (np.array_equal(f_v[:, :dv], v) and not f_v[:, dv:].any()
                and not f_r[:, :dv].any() and np.array_equal(f_r[:, dv:dv + dr], r)
                and bool((f_r[:, -1] == 1).all()))

