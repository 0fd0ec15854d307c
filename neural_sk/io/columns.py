"""Per-study columns as flat arrays: the writer that collects an archive's members, and the
readers of its plain (non-graph) fields.

Per-study lists (strings, ragged arrays) are flattened and stored with offsets; every array
records the bytes each study owes each field, so :func:`~neural_sk.io.archive_nbytes` reports
what is written, not a model of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..graphs import offsets
from .format import compact_int, decode_strings, encode_strings

__all__ = ["Writer", "writable", "stored_dtype", "unpack_bits", "read_ptr", "read_strings",
           "read_ragged"]


class Writer:
    """Collects the arrays of one archive and the bytes each study owes each field."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrays: dict[str, np.ndarray] = {}
        self.per_study: dict[str, np.ndarray] = {}
        self.per_member: dict[str, np.ndarray] = {}  # member name -> bytes per study
        self._ptr_names: dict[bytes, str] = {}

    def add(self, name: str, arr: np.ndarray, field: str, per_study: np.ndarray | None = None
            ) -> str:
        """Store ``arr`` as member ``name``, charged to ``field`` (per study, or evenly)."""
        arr = np.ascontiguousarray(arr)
        if arr.dtype == object:
            raise TypeError(f"{name}: object arrays cannot be stored without pickle")
        self.arrays[name] = arr
        if per_study is None:  # shared arrays are spread evenly over the studies
            per_study = np.full(self.n, arr.nbytes / self.n if self.n else 0.0)
        self.per_member[name] = np.asarray(per_study, dtype=np.float64)
        acc = self.per_study.setdefault(field, np.zeros(self.n, dtype=np.float64))
        acc += self.per_member[name]
        return name

    def add_ptr(self, name: str, counts: np.ndarray, field: str) -> str:
        """Offsets ``[n + 1]`` of per-study runs; identical offsets are stored once."""
        ptr = compact_int(offsets(counts))
        key = ptr.dtype.str.encode() + ptr.tobytes()
        if key in self._ptr_names:
            return self._ptr_names[key]
        self._ptr_names[key] = name
        return self.add(name, ptr, field)

    def add_rows(self, name: str, arr: np.ndarray, field: str) -> str:
        """An array whose first axis is the study."""
        row = arr.nbytes / max(len(arr), 1)
        return self.add(name, arr, field, np.full(self.n, row))

    def add_strings(self, name: str, strings: Sequence[str | None], field: str) -> dict:
        """One (optional) string per study."""
        none = np.array([s is None for s in strings], dtype=bool)
        blob, offsets, lengths = encode_strings(["" if s is None else s for s in strings])
        self.add(name, blob, field, lengths.astype(np.float64))
        spec = {"kind": "strings", "data": name,
                "offsets": self.add_ptr(name + ".offsets", lengths, field)}
        if none.any():
            spec["none"] = self.add_rows(name + ".none", none, field)
        return spec

    def add_ragged(self, name: str, arrays: Sequence[np.ndarray], field: str,
                   store_dtype: Any = None) -> dict:
        """Per-study arrays ``[T_i, ...]`` concatenated along axis 0."""
        mats = [np.asarray(a) for a in arrays]
        if not mats:
            return {"kind": "ragged", "data": self.add(name, np.zeros(0, np.uint8), field),
                    "ptr": self.add_ptr(name + ".ptr", np.zeros(0, np.int64), field),
                    "dtype": "float32", "shape": []}
        tail = mats[0].shape[1:]
        for i, m in enumerate(mats):
            if m.ndim < 1 or m.shape[1:] != tail:
                raise ValueError(f"{field}[{i}] has shape {m.shape}; expected (T, *{tail})")
        dtype = mats[0].dtype
        flat = np.concatenate(mats) if mats else np.zeros((0, *tail), dtype)
        if store_dtype == "int":
            stored = compact_int(flat)
        else:
            stored = flat.astype(store_dtype or dtype, copy=False)
        counts = np.array([len(m) for m in mats], dtype=np.int64)
        row = stored.itemsize * int(np.prod(tail, dtype=np.int64))
        self.add(name, stored, field, (counts * row).astype(np.float64))
        return {"kind": "ragged", "data": name,
                "ptr": self.add_ptr(name + ".ptr", counts, field),
                "dtype": dtype.name, "shape": list(tail)}


def writable(arr: np.ndarray) -> np.ndarray:
    """The array, copied when read-only."""
    # Arrays read from a ZIP member wrap immutable bytes; torch wants writable memory.
    return arr if arr.flags.writeable else arr.copy()


def stored_dtype(name: Any) -> np.dtype:
    """A dtype named in the metadata; only numbers are ever stored (bfloat16 reads as
    float32), so anything else (strings, objects) is refused before an array is cast."""
    dtype = np.dtype("float32" if name == "bfloat16" else name)
    if dtype.kind not in "biufc" or dtype.itemsize > 16:
        raise ValueError(f"dtype {name!r} is not a stored numeric type")
    return dtype


def unpack_bits(packed: np.ndarray, count: Any) -> np.ndarray:
    """Rows of ``count`` bits packed by ``np.packbits(..., axis=1)``, checked (NumPy would pad
    a larger count with zeros)."""
    if (not isinstance(count, int) or isinstance(count, bool) or packed.ndim != 2
            or not 0 <= 8 * packed.shape[1] - count < 8):
        raise ValueError(f"{count!r} bits do not match packed rows of shape {packed.shape}")
    return np.unpackbits(packed, axis=1, count=count)


def read_ptr(arrays: Mapping[str, np.ndarray], name: str, total: int,
             count: int | None = None) -> np.ndarray:
    """Offsets member ``name`` as int64, checked: ``count + 1`` of them (when given), from 0,
    never decreasing, ending at ``total`` (the length of what they cut)."""
    ptr = arrays[name].astype(np.int64)
    if (ptr.ndim != 1 or ptr.size == 0 or ptr[0] != 0 or np.any(np.diff(ptr) < 0)
            or ptr[-1] != total or (count is not None and ptr.size != count + 1)):
        raise ValueError(f"offsets {name!r} do not cut {total} items into "
                         f"{'some' if count is None else count} runs")
    return ptr


def read_strings(arrays: Mapping[str, np.ndarray], spec: Mapping, n: int) -> list:
    """The strings (None where missing) of a ``"strings"`` spec."""
    blob = arrays[spec["data"]]
    out = decode_strings(blob, read_ptr(arrays, spec["offsets"], blob.size, n))
    if "none" in spec:
        none = arrays[spec["none"]]
        out = [None if missing else s for s, missing in zip(out, none)]
    return out


def read_ragged(arrays: Mapping[str, np.ndarray], spec: Mapping, n: int) -> list[np.ndarray]:
    """The per-study arrays of a ``"ragged"`` spec (views of one flat array)."""
    full = writable(arrays[spec["data"]].astype(stored_dtype(spec["dtype"]), copy=False))
    full = full.reshape(-1, *spec["shape"])
    ptr = read_ptr(arrays, spec["ptr"], len(full), n).tolist()
    return [full[ptr[i]:ptr[i + 1]] for i in range(n)]
