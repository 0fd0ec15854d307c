"""Reading graph fields: archive members in, a GraphList per field out.

Tensor attributes become GraphList columns without a per-graph copy; what the writer did not
store is rebuilt (see :mod:`neural_sk.io.graph_encoder`): the fused graphs (by
:func:`~neural_sk.graphs.fuse_graphs`, or in format version 1 from references and the rebuilt
``x`` / ``pos``), grid positions, coded categorical attributes and int8 features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..graphs import GraphList
from .columns import read_ptr, read_strings, stored_dtype, unpack_bits, writable
from .derived import grid_positions, rebuild_fused
from .errors import ArchiveError
from .format import decode_strings, restore

__all__ = ["GraphDecoder"]


class GraphDecoder:
    """Rebuilds graph fields as GraphLists, resolving references and the fused features."""

    def __init__(self, arrays: Mapping[str, np.ndarray], specs: Mapping, n: int,
                 grid_shape: tuple[int, int] | None = None) -> None:
        self.arrays, self.specs, self.n, self.grid_shape = arrays, specs, n, grid_shape
        self._flat: dict[tuple[str, str], np.ndarray] = {}
        self._graphs: dict[str, GraphList] = {}

    def spec(self, field: str, key: str) -> Mapping:
        """The stored spec of attribute ``key``, following a reference."""
        spec = self._own(field, key)
        return self._own(spec["field"], key) if spec["kind"] == "ref" else spec

    def _own(self, field: str, key: str) -> Mapping:
        """The spec as stored, checked for the shapes the writer makes: only the fused graphs
        refer to (or are rebuilt from) the visual and report graphs, never the reverse, so
        a spec cannot send the reader round in circles."""
        spec = self.specs[field]["attrs"][key]
        kind = spec["kind"]
        derived = kind == "ref" or spec.get("layout") in ("fused_x", "fused_pos")
        if derived and (field != "graphs" or key == "node_type"):
            raise ValueError(f"attribute {key!r} of {field!r} cannot be derived")
        if spec.get("layout") == "grid_pos" and (
                key == "patch_id" or "patch_id" not in self.specs[field]["attrs"]):
            raise ValueError(f"attribute {key!r} of {field!r} needs the patch ids")
        if kind == "ref" and (spec["field"] not in ("visual_graphs", "report_graphs")
                              or self.specs[spec["field"]]["attrs"][key]["kind"] == "ref"):
            raise ValueError(f"attribute {key!r} refers to {spec['field']!r}")
        return spec

    def flat(self, field: str, key: str) -> np.ndarray:
        """All studies' values of a tensor attribute, in its original NumPy dtype."""
        if (field, key) in self._flat:
            return self._flat[(field, key)]
        a = self._own(field, key)
        if a["kind"] == "ref":
            out = self.flat(a["field"], key)
        elif a["kind"] == "coded":
            out = self._coded(a)
        elif a["layout"] in ("fused_x", "fused_pos"):
            out = self._fused(key, a)
        elif a["layout"] == "grid_pos":
            if self.grid_shape is None:
                raise ValueError("grid positions need the archive's grid_shape")
            out = grid_positions(self.flat(field, "patch_id"), self.grid_shape[1],
                                 stored_dtype(a["dtype"]))
        else:
            data = self.arrays[a["data"]]
            if a.get("encoding") == "bits":
                data = unpack_bits(data, a["shape"][0])
            if a.get("encoding") == "int8":
                data = self._dequantise(data, a)
            out = writable(data.astype(stored_dtype(a["dtype"]), copy=False))
            if a["layout"] == "rows":
                out = out.reshape(-1, *a["shape"])
        self._flat[(field, key)] = out
        return out

    def _codes(self, a: Mapping, size: int) -> np.ndarray:
        """The per-node codes of a coded attribute, checked against its table's ``size``."""
        codes = self.arrays[a["codes"]].astype(np.int64).reshape(-1)
        if codes.size and (codes.min() < 0 or codes.max() >= size):
            raise ValueError(f"codes {a['codes']!r} point outside their table of {size}")
        read_ptr(self.arrays, a["ptr"], codes.size, self.n)
        return codes

    def _coded(self, a: Mapping) -> np.ndarray:
        table = self.arrays[a["table"]]
        if a.get("encoding") == "bits":
            table = unpack_bits(table, a["shape"][0])
        table = table.astype(stored_dtype(a["dtype"]), copy=False).reshape(-1, *a["shape"])
        return writable(table[self._codes(a, len(table))])

    def _dequantise(self, data: np.ndarray, a: Mapping) -> np.ndarray:
        """int8 rows times their graph's scale."""
        scale = self.arrays[a["scale"]].astype(np.float64).reshape(-1)
        ptr = read_ptr(self.arrays, a["ptr"], len(data), self.n)
        if scale.size != self.n:
            raise ValueError(f"{scale.size} scales for {self.n} graphs")
        owner = np.repeat(scale, np.diff(ptr)).reshape(-1, *([1] * (data.ndim - 1)))
        return data.astype(np.float64) * owner

    def _fused(self, key: str, a: Mapping) -> np.ndarray:
        node_type = self.flat("graphs", "node_type").astype(np.int64).reshape(-1)
        vis = self.flat("visual_graphs", key)
        is_vis = node_type == 0
        dtype = stored_dtype(a["dtype"])
        if key == "pos":
            out = np.full((len(node_type), *vis.shape[1:]), np.nan, dtype=dtype)
            out[is_vis] = vis
            return out
        rep = self.flat("report_graphs", key)
        dv, dr = vis.shape[1], rep.shape[1]
        out = np.zeros((len(node_type), dv + dr + 1), dtype=dtype)
        out[is_vis, :dv] = vis
        out[~is_vis, dv:dv + dr] = rep
        out[~is_vis, -1] = 1
        return out

    def column(self, field: str, key: str) -> tuple[str, Any, Any]:
        """Attribute ``key`` as a GraphList column ``(kind, values, ptr)``."""
        a = self.spec(field, key)
        if a["kind"] == "coded":
            flat = self.flat(field, key)
            return "rows", flat, read_ptr(self.arrays, a["ptr"], len(flat), self.n)
        if (a["kind"] == "tensor" and a["torch"] and a["dtype"] != "bfloat16"
                and a["layout"] != "scalar" and "present" not in a
                and "container" not in a):
            kind = "edges" if a["layout"] == "edges" else "rows"
            flat = self.flat(field, key)
            total = flat.size // 2 if kind == "edges" else len(flat)
            return kind, flat, read_ptr(self.arrays, a["ptr"], total, self.n)
        return "objects", self.values(field, key), None

    def values(self, field: str, key: str) -> list:
        """One value per study (None where the graph lacks the attribute)."""
        a = self.spec(field, key)
        n, arrays = self.n, self.arrays
        kind = a["kind"]
        if kind == "strings":
            values = read_strings(arrays, a, n)
        elif kind == "string_lists":
            blob = arrays[a["data"]]
            names = decode_strings(blob, read_ptr(arrays, a["offsets"], blob.size))
            ptr = read_ptr(arrays, a["ptr"], len(names), n).tolist()
            values = [names[ptr[i]:ptr[i + 1]] for i in range(n)]
        elif kind == "coded_names":
            blob = arrays[a["data"]]
            table = decode_strings(blob, read_ptr(arrays, a["offsets"], blob.size))
            codes = self._codes(a, len(table))
            ptr = read_ptr(arrays, a["ptr"], codes.size, n).tolist()
            names = [table[c] for c in codes.tolist()]
            values = [names[ptr[i]:ptr[i + 1]] for i in range(n)]
        elif kind == "scalars":
            cast = {"bool": bool, "int": int, "float": float}[a["python"]]
            values = [cast(v) for v in arrays[a["data"]].tolist()]
        elif kind == "tensor":
            values = self._tensor_values(field, key, a)
        else:
            raise ArchiveError(f"unknown graph attribute kind {kind!r}")
        if "present" in a:
            present = arrays[a["present"]]
            values = [v if p else None for v, p in zip(values, present)]
        return values

    def _tensor_values(self, field: str, key: str, a: Mapping) -> list:
        full = self.flat(field, key)
        dtype, torch_, n = a["dtype"], a["torch"], self.n
        if a["layout"] == "scalar":
            values = [restore(full[i], dtype, torch_) for i in range(n)]
        else:
            total = full.size // 2 if a["layout"] == "edges" else len(full)
            ptr = read_ptr(self.arrays, a["ptr"], total, n).tolist()
            if a["layout"] == "edges":
                values = [restore(full[2 * ptr[i]:2 * ptr[i + 1]].reshape(2, -1), dtype,
                                  torch_) for i in range(n)]
            else:
                values = [restore(full[ptr[i]:ptr[i + 1]], dtype, torch_) for i in range(n)]
        if a.get("container") == "list":
            values = [v.tolist() for v in values]
        return values

    def graphs(self, field: str) -> GraphList:
        """The graphs of ``field`` (the fused ones rebuilt when the writer did not store them)."""
        if field in self._graphs:
            return self._graphs[field]
        spec = self.specs[field]
        if spec["kind"] == "fused":
            if field != "graphs":
                raise ValueError(f"{field!r} cannot be rebuilt by fusion")
            sides = [self.graphs(f) if f in self.specs and self.specs[f]["kind"] == "graphs"
                     else None for f in ("visual_graphs", "report_graphs")]
            out = rebuild_fused(spec, *sides)
        else:
            order = spec.get("order", sorted(spec["attrs"]))
            if sorted(order) != sorted(spec["attrs"]):
                raise ValueError(f"the order {order!r} does not list the attributes")
            out = GraphList({key: self.column(field, key) for key in order})
        self._graphs[field] = out
        return out
