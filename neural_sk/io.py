"""Save and load compressed study archives, without pickle.

An archive is one ``.npz`` file (a ZIP of ``.npy`` arrays, readable with
``numpy.load(path, allow_pickle=False)``) plus a ``meta.json`` member:

- **No code runs when a file is loaded.** Every member is a plain numeric array read with
  ``allow_pickle=False``, or JSON. Graphs are rebuilt from their arrays; nothing is unpickled.
- **Damage is detected.** The metadata holds the SHA-256 of the arrays (``payload_sha256``), and
  the ZIP comment, the file's last bytes, holds the SHA-256 of everything before it, so a single
  flipped byte anywhere in the file raises :class:`ArchiveError` naming the file.
- **Compact.** Kept patch features (the graphs' ``x``) are stored at ``feature_dtype``
  (float16 by default); edges as local node indices in the smallest unsigned type (uint8 for up
  to 256 nodes); integer grid positions, patch indices, statuses and char offsets in the
  smallest integer type; the keep mask as bits. Per-study lists (graphs, strings, token
  attention) are flattened and stored with offsets. Loading restores the original dtypes.
- **Traceable.** The fitted scorer's identity (``StudySet.info``: presets, image size, grid,
  weight hash) is stored, and :func:`check_compatible` refuses to mix features of different
  encoders. :func:`archive_nbytes` gives the bytes of every field, per study.
- **Viewable (optional).** With ``pixels="png"`` or ``"jpeg"``, the image tiles under the kept
  patches are stored at source resolution; :func:`load_tiles` / :func:`load_sparse_images` (or
  :func:`neural_sk.plotting.show_pruned` with ``tiles=``) rebuild the sparse image.

A folder written by :func:`neural_sk.compress.compress` (shards plus ``manifest.json``) loads
like a single file.
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import os
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .studies import PER_STUDY_FIELDS, StudySet, concat_study_sets

__all__ = [
    "ArchiveError",
    "IncompatibleArchiveError",
    "FORMAT_VERSION",
    "save_studies",
    "load_studies",
    "check_compatible",
    "archive_nbytes",
    "archive_info",
    "load_tiles",
    "load_sparse_images",
]

FORMAT = "neural_sk.archive"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
_META = "meta.json"
_ACCOUNTING = "_nbytes_per_study"
_TRAILER_PREFIX = b"neural_sk-sha256:"
_TRAILER_LEN = len(_TRAILER_PREFIX) + 64
# Fixed ZIP timestamps make the same StudySet give the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_FEATURE_DTYPES = ("float16", "float32")
_PIXEL_FORMATS = ("png", "jpeg")
_GRAPH_FIELDS = ("visual_graphs", "report_graphs", "graphs")
_HASH_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive file is damaged, truncated, not an archive, or of an unknown format version.

    Examples
    --------
    >>> try:
    ...     load_studies(__file__)
    ... except ArchiveError as err:
    ...     print("not a neural_sk archive" in str(err))
    True
    """


class IncompatibleArchiveError(ValueError):
    """Two sets of studies come from different scorers; their features must not be mixed.

    Examples
    --------
    >>> try:
    ...     check_compatible({"model_hash": "a"}, {"model_hash": "b"})
    ... except IncompatibleArchiveError as err:
    ...     print(str(err).split(";")[0])
    studies come from different scorers (model_hash: 'a' != 'b')
    """


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """Plain JSON types (tuples become lists, NumPy scalars Python numbers)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def check_compatible(info_a: Mapping | None, info_b: Mapping | None, *,
                     what: str = "studies") -> None:
    """Raise when two scorer identities differ, so features of different encoders never mix.

    Parameters
    ----------
    info_a, info_b : dict or None
        ``StudySet.info`` of each side (the scorer's ``info_``: presets, method, image size,
        grid shape, feature width, weight hash). Two None are compatible; None and a dict
        are not.
    what : str, default="studies"
        What is being compared, for the message (e.g. the two file names).

    Raises
    ------
    IncompatibleArchiveError
        Naming every key whose value differs.

    Examples
    --------
    >>> a = {"vision_model": "tiny-swin", "image_size": 64, "grid_shape": (4, 4)}
    >>> check_compatible(a, {"vision_model": "tiny-swin", "image_size": 64,
    ...                      "grid_shape": [4, 4]})  # tuples and lists compare equal
    >>> try:
    ...     check_compatible(a, dict(a, image_size=128))
    ... except IncompatibleArchiveError as err:
    ...     print(str(err).split(";")[0])
    studies come from different scorers (image_size: 64 != 128)
    """
    if info_a is None and info_b is None:
        return
    if info_a is None or info_b is None:
        raise IncompatibleArchiveError(
            f"{what}: one side has no scorer identity (info is None) and the other has "
            f"{_jsonable(info_a if info_b is None else info_b)}; refusing to mix them"
        )
    a, b = _jsonable(dict(info_a)), _jsonable(dict(info_b))
    diffs = [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if a.get(k) != b.get(k)]
    if diffs:
        raise IncompatibleArchiveError(
            f"{what} come from different scorers ({'; '.join(diffs)}); their patch "
            "features and attention are not comparable, so they are not mixed"
        )


def _uint_dtype(max_value: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def _compact_int(arr: np.ndarray) -> np.ndarray:
    """The integer array in the smallest integer type that holds its range."""
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = int(arr.min()), int(arr.max())
    if lo >= 0:
        return arr.astype(_uint_dtype(hi), copy=False)
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return arr.astype(dtype, copy=False)
    return arr.astype(np.int64, copy=False)


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _encode_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTF-8 bytes of all strings, their offsets, and each string's byte length."""
    # surrogatepass: any Python str round-trips, even one with lone surrogates.
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, _offsets(lengths), lengths


def _decode_strings(blob: np.ndarray, offsets: np.ndarray) -> list[str]:
    data = blob.tobytes()
    offsets = offsets.astype(np.int64).tolist()
    return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offsets[:-1], offsets[1:])]


def _to_numpy(value: Any) -> tuple[np.ndarray, str, bool]:
    """(array, original dtype name, was it a torch tensor)."""
    if hasattr(value, "detach") and hasattr(value, "dtype"):
        import torch

        dtype = str(value.dtype).replace("torch.", "")
        tensor = value.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy(), dtype, True
    arr = np.asarray(value)
    return arr, arr.dtype.name, False


def _restore(arr: np.ndarray, dtype: str, torch_: bool) -> Any:
    if torch_:
        import torch

        if dtype == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(torch.bfloat16)
        return torch.from_numpy(arr)
    return arr


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
class _Writer:
    """Collects the arrays of one archive and the bytes each study owes each field."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.arrays: dict[str, np.ndarray] = {}
        self.per_study: dict[str, np.ndarray] = {}
        self._ptr_names: dict[bytes, str] = {}
        # (field, key) -> flattened original values, to find repeats in the fused graphs.
        self.cache: dict[tuple[str, str], tuple] = {}

    def add(self, name: str, arr: np.ndarray, field: str, per_study: np.ndarray | None = None
            ) -> str:
        arr = np.ascontiguousarray(arr)
        if arr.dtype == object:
            raise TypeError(f"{name}: object arrays cannot be stored without pickle")
        self.arrays[name] = arr
        acc = self.per_study.setdefault(field, np.zeros(self.n, dtype=np.float64))
        if per_study is None:  # shared arrays are spread evenly over the studies
            if self.n:
                acc += arr.nbytes / self.n
        else:
            acc += per_study
        return name

    def add_ptr(self, name: str, counts: np.ndarray, field: str) -> str:
        """Offsets ``[n + 1]`` of per-study runs; identical offsets are stored once."""
        ptr = _compact_int(_offsets(counts))
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
        blob, offsets, lengths = _encode_strings(["" if s is None else s for s in strings])
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
            stored = _compact_int(flat)
        else:
            stored = flat.astype(store_dtype or dtype, copy=False)
        counts = np.array([len(m) for m in mats], dtype=np.int64)
        row = stored.itemsize * int(np.prod(tail, dtype=np.int64))
        self.add(name, stored, field, (counts * row).astype(np.float64))
        return {"kind": "ragged", "data": name, "ptr": self.add_ptr(name + ".ptr", counts, field),
                "dtype": dtype.name, "shape": list(tail)}

    def add_graphs(self, field: str, graphs: Sequence[Any], ids: np.ndarray,
                   feature_dtype: str) -> dict:
        dicts = []
        for i, g in enumerate(graphs):
            if hasattr(g, "to_dict"):
                dicts.append(g.to_dict())
            elif isinstance(g, Mapping):
                dicts.append(dict(g))
            else:
                raise TypeError(f"{field}[{i}] (study {ids[i]!r}) is {type(g).__name__}, "
                                "not a torch_geometric Data")
        keys: list[str] = []
        for d in dicts:
            keys.extend(k for k in d if k not in keys and d[k] is not None)
        node_type = None
        if field == "graphs" and dicts and all(d.get("node_type") is not None for d in dicts):
            node_type = np.concatenate([_to_numpy(d["node_type"])[0].reshape(-1)
                                        for d in dicts]).astype(np.int64)
        attrs = {}
        for key in keys:
            values = [d.get(key) for d in dicts]
            attrs[key] = self._add_attribute(field, key, values, ids, feature_dtype, node_type)
        return {"kind": "graphs", "attrs": attrs}

    def _add_attribute(self, field: str, key: str, values: list, ids: np.ndarray,
                       feature_dtype: str, node_type: np.ndarray | None) -> dict:
        name = f"{field}/{key}"
        present = np.array([v is not None for v in values], dtype=bool)
        spec: dict[str, Any] = {}
        first = next(v for v in values if v is not None)

        def bad(i: int, why: str) -> TypeError:
            return TypeError(f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} {why}")

        if isinstance(first, str):
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, str):
                    raise bad(i, f"is {type(v).__name__}, but str in other graphs")
            spec.update(self.add_strings(name, list(values), field), container="str")
        elif isinstance(first, (list, tuple)) and all(
                isinstance(s, str) for v in values if v is not None for s in v):
            names = [list(v) if v is not None else None for v in values]
            ref = self._find_ref(field, key, ("string_lists", names))
            if ref is not None:
                return {"kind": "ref", "field": ref}
            self.cache[(field, key)] = ("string_lists", names)
            flat = [s for v in names if v is not None for s in v]
            counts = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
            blob, offsets, lengths = _encode_strings(flat)
            per_graph = np.zeros(self.n)
            np.add.at(per_graph, np.repeat(np.arange(self.n), counts), lengths)
            self.add(name, blob, field, per_graph)
            spec.update(kind="string_lists", data=name,
                        offsets=self.add(name + ".offsets", _compact_int(offsets), field),
                        ptr=self.add_ptr(name + ".ptr", counts, field))
        elif isinstance(first, (bool, int, float, np.generic)) and not hasattr(first, "detach"):
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, (bool, int, float, np.generic)):
                    raise bad(i, f"is {type(v).__name__}, but a number in other graphs")
            kinds = {type(v).__name__ for v in values if v is not None}
            py = "bool" if kinds == {"bool"} else "int" if kinds <= {"int", "bool"} else "float"
            filled = np.array([0 if v is None else v for v in values])
            stored = _compact_int(filled) if py != "float" else filled.astype(np.float64)
            spec.update(kind="scalars", data=self.add_rows(name, stored, field), python=py)
        elif hasattr(first, "detach") or isinstance(first, (np.ndarray, list, tuple)):
            spec = self._add_tensor_attribute(field, key, name, values, present, ids,
                                              feature_dtype, node_type)
            if spec["kind"] == "ref":
                return spec
        else:
            raise bad(int(np.argmax(present)),
                      f"is {type(first).__name__}: only tensors, arrays, strings and numbers "
                      "can be stored (the format never pickles)")
        if not present.all():
            spec["present"] = self.add_rows(name + ".present", present, field)
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

    def _add_tensor_attribute(self, field, key, name, values, present, ids, feature_dtype,
                              node_type):
        converted = []
        dtype = torch_ = container = None
        for i, v in enumerate(values):
            if v is None:
                converted.append(None)
                continue
            is_list = isinstance(v, (list, tuple))
            arr, dt, is_torch = _to_numpy(np.asarray(v) if is_list else v)
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
        spec: dict[str, Any] = {"kind": "tensor", "dtype": dtype, "torch": torch_}
        if container:
            spec["container"] = container
        if key == "edge_index" and all(a.ndim == 2 and a.shape[0] == 2 for a in arrays):
            # One [2, E_i] block per study (sources then targets), so a loaded graph's
            # edge_index is a contiguous view of its own block.
            counts = np.array([0 if a is None else a.shape[1] for a in converted], np.int64)
            flat = np.concatenate([a.reshape(-1) for a in arrays])
            if flat.size and flat.min() < 0:
                i = next(i for i, a in enumerate(converted)
                         if a is not None and a.size and a.min() < 0)
                raise ValueError(f"{field}[{i}] (study {ids[i]!r}) has a negative node index "
                                 "in edge_index")
            stored = _compact_int(flat)
            self.add(name, stored, field, (counts * 2 * stored.itemsize).astype(np.float64))
            spec.update(layout="edges", data=name, shape=[],
                        ptr=self.add_ptr(name + ".ptr", counts, field))
            return spec
        if all(a.ndim == 0 for a in arrays):
            flat = np.stack([np.zeros((), arrays[0].dtype) if a is None else a
                             for a in converted])
            stored = _compact_int(flat) if np.issubdtype(flat.dtype, np.integer) else flat
            spec.update(layout="scalar", data=self.add_rows(name, stored, field), shape=[])
            return spec
        tail = arrays[0].shape[1:]
        for i, a in enumerate(converted):
            if a is not None and (a.ndim == 0 or a.shape[1:] != tail):
                raise ValueError(
                    f"{field}[{i}] (study {ids[i]!r}): attribute {key!r} has shape "
                    f"{a.shape}, but (*, {', '.join(map(str, tail))}) in other graphs")
        counts = np.array([0 if a is None else len(a) for a in converted], np.int64)
        flat = np.concatenate(arrays)
        entry = ("tensor", dtype, torch_, tuple(tail), counts, present, flat)
        ref = self._find_ref(field, key, entry)
        if ref is not None:
            return {"kind": "ref", "field": ref}
        self.cache[(field, key)] = entry
        spec.update(layout="rows", shape=list(tail),
                    ptr=self.add_ptr(name + ".ptr", counts, field))
        floating = np.issubdtype(flat.dtype, np.floating)
        if (field == "graphs" and key in ("x", "pos") and floating
                and self._fused_derivation(key, flat, counts, present, node_type)):
            spec["layout"] = "fused_" + key  # rebuilt from the visual and report graphs
            return spec
        if floating and flat.ndim == 2 and flat.size and np.isin(flat, (0, 1)).all():
            # One-hot or binary features (the report graphs'): one bit each, exactly.
            stored = np.packbits(flat.astype(bool), axis=1)
            spec["encoding"] = "bits"
        elif floating and key == "x":
            stored = flat.astype(feature_dtype, copy=False)
        elif (floating and flat.size and np.isfinite(flat).all() and flat.min() >= 0
              and (np.mod(flat, 1) == 0).all() and flat.max() < 2**32):
            stored = _compact_int(flat.astype(np.int64))  # grid positions and the like
            spec["encoding"] = "int"
        elif np.issubdtype(flat.dtype, np.integer):
            stored = _compact_int(flat)
        else:
            stored = flat
        row = stored.nbytes / max(len(stored), 1)
        self.add(name, stored, field, (counts * row).astype(np.float64))
        spec["data"] = name
        return spec


def _pixel_array(source: Any, fmt: str) -> np.ndarray:
    """The image at source resolution as uint8 (or uint16 for PNG) grey levels."""
    if isinstance(source, np.ndarray) and source.ndim == 2 and source.dtype == np.uint8:
        return source
    if (fmt == "png" and isinstance(source, np.ndarray) and source.ndim == 2
            and source.dtype == np.uint16):
        return source
    from .datasets.images import read_image

    return np.round(read_image(source) * 255.0).astype(np.uint8)


def _encode_tiles(image: Any, patch_index: np.ndarray, grid_shape: tuple[int, int],
                  fmt: str, quality: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """One study's kept tiles side by side in one PNG/JPEG strip."""
    from PIL import Image

    from .plotting import extract_tiles

    arr = _pixel_array(image, fmt)
    tiles, _ = extract_tiles(arr, patch_index, grid_shape)
    k, th, tw = tiles.shape
    if k == 0:
        return b"", (int(th), int(tw)), arr.shape
    strip = np.ascontiguousarray(tiles.transpose(1, 0, 2).reshape(th, k * tw))
    buf = _io.BytesIO()
    if fmt == "png":
        Image.fromarray(strip).save(buf, format="PNG")
    else:
        Image.fromarray(strip).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue(), (int(th), int(tw)), arr.shape


def _payload_digest(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(arr.dtype.str.encode())
        digest.update(repr(arr.shape).encode())
        digest.update(memoryview(arr).cast("B") if arr.size else b"")
    return digest.hexdigest()


def _file_digest(handle: Any, length: int) -> str:
    digest = hashlib.sha256()
    handle.seek(0)
    remaining = length
    while remaining > 0:
        chunk = handle.read(min(_HASH_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def _write_zip(path: Path, members: Mapping[str, np.ndarray], meta: bytes,
               compression: bool) -> str:
    """Write the ZIP (atomically: temporary file, fsync, rename); return the file digest."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    method = zipfile.ZIP_DEFLATED if compression else zipfile.ZIP_STORED
    try:
        with open(tmp, "w+b") as fh:
            with zipfile.ZipFile(fh, "w", compression=method) as zf:
                for name, arr in members.items():
                    info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
                    info.compress_type = method
                    with zf.open(info, "w", force_zip64=arr.nbytes > (1 << 30)) as out:
                        np.lib.format.write_array(out, arr, allow_pickle=False)
                info = zipfile.ZipInfo(_META, date_time=_ZIP_DATE)
                info.compress_type = method
                zf.writestr(info, meta)
                # Placeholder of the right length; the real digest is written below.
                zf.comment = _TRAILER_PREFIX + b"0" * 64
            fh.flush()
            size = fh.seek(0, os.SEEK_END)
            digest = _file_digest(fh, size - _TRAILER_LEN)
            fh.seek(size - _TRAILER_LEN)
            fh.write(_TRAILER_PREFIX + digest.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return digest


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _default_fields(studies: StudySet) -> list[str]:
    fields = [f for f in PER_STUDY_FIELDS if getattr(studies, f) is not None]
    if studies.visual_graphs is not None and "patch_features" in fields:
        # The kept patches' features live in the visual graphs: the full [n, P, d] block is
        # what the archive exists to drop.
        fields.remove("patch_features")
    return fields


def save_studies(
    path: str | os.PathLike,
    studies: StudySet,
    *,
    feature_dtype: str = "float16",
    fields: Iterable[str] | None = None,
    images: Sequence[Any] | None = None,
    pixels: str | None = None,
    jpeg_quality: int = 90,
    compression: bool = False,
) -> dict:
    """Write studies to one archive file, atomically and without pickle.

    Parameters
    ----------
    path : str or path-like
        The file to write (``.npz`` by convention). It is written to a temporary file in the
        same folder and renamed, so a reader never sees half a file.
    studies : StudySet
        The studies (any filled fields).
    feature_dtype : {"float16", "float32"}, default="float16"
        Storage type of patch features: the graphs' node features ``x`` and, when stored,
        ``patch_features``. Loading gives them back in their original dtype.
    fields : iterable of str, default=None
        Per-study fields to store (``ids`` always are). By default every filled field, except
        the full ``patch_features`` when ``visual_graphs`` hold the kept ones.
    images : sequence of (ndarray or path), default=None
        The studies' source images, in order; needed with ``pixels``. Paths are read one at a
        time, so a long list of paths costs no memory.
    pixels : {"png", "jpeg"} or None, default=None
        Also store the pixel tiles under each study's kept patches at source resolution, so a
        person can view the archive (:func:`load_sparse_images`). Needs ``keep_mask`` and
        ``images``. PNG is lossless (8 or 16 bits); JPEG is 8-bit at ``jpeg_quality``.
    jpeg_quality : int, default=90
        JPEG quality of the tiles with ``pixels="jpeg"``.
    compression : bool, default=False
        Deflate the ZIP members (smaller, slower to write and read).

    Returns
    -------
    dict
        ``path``, ``n_studies``, ``file_bytes`` and ``sha256`` (digest of the file's content
        before its checksum trailer).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> s = StudySet(ids=["a", "b"], reports=["no finding", "consolidation"],
    ...              attention=np.full((2, 4), 0.25, np.float32), grid_shape=(2, 2),
    ...              info={"model_hash": "0123"})
    >>> path = os.path.join(tempfile.mkdtemp(), "studies.npz")
    >>> save_studies(path, s)["n_studies"]
    2
    >>> back = load_studies(path)
    >>> back.ids.tolist(), back.reports, back.info
    (['a', 'b'], ['no finding', 'consolidation'], {'model_hash': '0123'})
    """
    if not isinstance(studies, StudySet):
        raise TypeError(f"save_studies needs a StudySet, got {type(studies).__name__}")
    if feature_dtype not in _FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {_FEATURE_DTYPES}, got {feature_dtype!r}")
    if pixels not in (None, *_PIXEL_FORMATS):
        raise ValueError(f"pixels must be None, 'png' or 'jpeg', got {pixels!r}")
    if fields is None:
        fields = _default_fields(studies)
    else:
        fields = list(dict.fromkeys(fields))
        unknown = [f for f in fields if f not in PER_STUDY_FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; fields are {list(PER_STUDY_FIELDS)}")
        empty = [f for f in fields if getattr(studies, f) is None]
        if empty:
            raise ValueError(f"field(s) {empty} are not filled in this StudySet "
                             f"(filled: {studies.fields})")
    # Pipeline order: the fused graphs can then refer to the visual and report graphs.
    fields = [f for f in PER_STUDY_FIELDS if f in fields]
    n = len(studies)
    ids = studies.ids
    w = _Writer(n)
    meta_fields: dict[str, Any] = {}

    # ids: as strings, with the kind needed to give back the same values.
    if ids.dtype.kind in "iu":
        ids_kind = "int"
    elif ids.dtype.kind == "b":
        ids_kind = "bool"
    else:
        ids_kind = "str"
    spec = w.add_strings("ids", [str(v) for v in ids.tolist()], "ids")
    spec["ids_kind"] = ids_kind
    meta_fields["ids"] = spec

    for field in fields:
        if field == "ids":
            continue
        value = getattr(studies, field)
        if field in ("reports", "errors"):
            bad = [i for i, s in enumerate(value) if s is not None and not isinstance(s, str)]
            if bad:
                i = bad[0]
                raise TypeError(f"{field}[{i}] (study {ids[i]!r}) is "
                                f"{type(value[i]).__name__}, not str")
            meta_fields[field] = w.add_strings(field, value, field)
        elif field == "attention":
            arr = np.asarray(value)
            meta_fields[field] = {"kind": "dense", "data": w.add_rows(field, arr, field),
                                  "dtype": arr.dtype.name}
        elif field == "patch_features":
            arr = np.asarray(value)
            meta_fields[field] = {
                "kind": "dense", "dtype": arr.dtype.name,
                "data": w.add_rows(field, arr.astype(feature_dtype, copy=False), field)}
        elif field == "keep_mask":
            arr = np.asarray(value, dtype=bool)
            if arr.ndim != 2:
                raise ValueError(f"keep_mask must be 2-D (n, P), got shape {arr.shape}")
            meta_fields[field] = {"kind": "bits", "n_patches": int(arr.shape[1]),
                                  "data": w.add_rows(field, np.packbits(arr, axis=1), field)}
        elif field == "token_attention":
            meta_fields[field] = w.add_ragged(field, value, field)
        elif field == "token_offsets":
            meta_fields[field] = w.add_ragged(field, value, field, store_dtype="int")
        elif field in _GRAPH_FIELDS:
            meta_fields[field] = w.add_graphs(field, value, ids, feature_dtype)
        else:  # pragma: no cover - every per-study field is handled above
            raise ValueError(f"cannot store field {field!r}")

    pixel_meta = None
    if pixels is not None:
        pixel_meta = _add_pixels(w, studies, images, pixels, jpeg_quality)

    # Bytes each study owes each field (the accounting array itself is overhead).
    accounting = list(w.per_study)
    table = np.stack([np.round(w.per_study[f]) for f in accounting], axis=1) if accounting \
        else np.zeros((n, 0))
    arrays = dict(w.arrays)
    arrays[_ACCOUNTING] = _compact_int(table.astype(np.int64)).reshape(n, len(accounting))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neural_sk_version": __version__,
        "n_studies": n,
        "grid_shape": None if studies.grid_shape is None else list(studies.grid_shape),
        "info": _jsonable(studies.info) if studies.info is not None else None,
        "feature_dtype": feature_dtype,
        "fields": meta_fields,
        "pixels": pixel_meta,
        "accounting_fields": accounting,
        "nbytes": {f: int(np.round(w.per_study[f].sum())) for f in accounting},
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)}
                   for name, a in arrays.items()},
        "payload_sha256": _payload_digest(arrays),
    }
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"),
                            allow_nan=False).encode()
    digest = _write_zip(Path(path), arrays, meta_bytes, compression)
    return {"path": str(path), "n_studies": n, "file_bytes": os.path.getsize(path),
            "sha256": digest}


def _add_pixels(w: _Writer, studies: StudySet, images: Sequence[Any] | None, fmt: str,
                quality: int) -> dict:
    if images is None:
        raise ValueError(f"pixels={fmt!r} needs the studies' source images (images=...)")
    if studies.keep_mask is None or studies.grid_shape is None:
        raise ValueError(f"pixels={fmt!r} needs a pruned StudySet (keep_mask and grid_shape)")
    if len(images) != len(studies):
        raise ValueError(f"images has {len(images)} entries for {len(studies)} studies")
    blobs, tile_shapes, image_shapes = [], [], []
    for i, (image, keep) in enumerate(zip(images, studies.keep_mask)):
        try:
            blob, tile, shape = _encode_tiles(image, np.flatnonzero(keep), studies.grid_shape,
                                              fmt, quality)
        except Exception as exc:
            where = f" ({image})" if isinstance(image, (str, os.PathLike)) else ""
            raise type(exc)(f"pixels of study {studies.ids[i]!r}{where}: {exc}") from exc
        blobs.append(blob)
        tile_shapes.append(tile)
        image_shapes.append(shape)
    lengths = np.array([len(b) for b in blobs], dtype=np.int64)
    w.add("pixels", np.frombuffer(b"".join(blobs), dtype=np.uint8), "pixels",
          lengths.astype(np.float64))
    return {
        "format": fmt,
        "quality": int(quality) if fmt == "jpeg" else None,
        "data": "pixels",
        "ptr": w.add_ptr("pixels.ptr", lengths, "pixels"),
        "tile_shape": w.add_rows("pixels.tile_shape",
                                 _compact_int(np.array(tile_shapes, np.int64).reshape(-1, 2)),
                                 "pixels"),
        "image_shape": w.add_rows("pixels.image_shape",
                                  _compact_int(np.array(image_shapes, np.int64).reshape(-1, 2)),
                                  "pixels"),
    }


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def _open_verified(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Check the file's checksum, then read its metadata and arrays (never unpickling)."""
    shown = repr(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"archive {shown} does not exist")
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < _TRAILER_LEN:
            raise ArchiveError(f"{shown} is not a neural_sk archive or is truncated "
                               f"({size} bytes)")
        fh.seek(size - _TRAILER_LEN)
        trailer = fh.read(_TRAILER_LEN)
        if not trailer.startswith(_TRAILER_PREFIX):
            raise ArchiveError(f"{shown} is not a neural_sk archive, or it is damaged or "
                               "truncated: its checksum trailer is missing")
        expected = trailer[len(_TRAILER_PREFIX):].decode("ascii", "replace")
        actual = _file_digest(fh, size - _TRAILER_LEN)
    if actual != expected:
        raise ArchiveError(f"archive {shown} is damaged: its SHA-256 checksum does not match "
                           f"(stored {expected[:16]}..., computed {actual[:16]}...); "
                           "restore it from a copy or recompute it")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz[_META].decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise ArchiveError(f"{shown} is not a neural_sk archive "
                                   f"(format {meta.get('format')!r})")
            version = meta.get("format_version")
            if not isinstance(version, int) or version > FORMAT_VERSION:
                raise ArchiveError(
                    f"{shown} has format version {version!r}; this neural_sk "
                    f"({__version__}) reads versions up to {FORMAT_VERSION}: upgrade neural_sk")
            expected_names = set(meta["arrays"])
            found = set(npz.files) - {_META}
            if found != expected_names:
                raise ArchiveError(f"{shown} is damaged: arrays {sorted(found ^ expected_names)} "
                                   "are missing or unexpected")
            arrays = {name: npz[name] for name in sorted(expected_names)}
    except ArchiveError:
        raise
    except Exception as exc:
        raise ArchiveError(f"cannot read archive {shown}: {type(exc).__name__}: {exc}") from exc
    if _payload_digest(arrays) != meta.get("payload_sha256"):
        raise ArchiveError(f"archive {shown} is damaged: the arrays' SHA-256 does not match "
                           "its metadata")
    return meta, arrays


def _writable(arr: np.ndarray) -> np.ndarray:
    # Arrays read from a ZIP member wrap immutable bytes; torch wants writable memory.
    return arr if arr.flags.writeable else arr.copy()


def _ptr(arrays: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    return arrays[name].astype(np.int64)


def _read_strings(arrays: Mapping[str, np.ndarray], spec: Mapping) -> list:
    out = _decode_strings(arrays[spec["data"]], _ptr(arrays, spec["offsets"]))
    if "none" in spec:
        none = arrays[spec["none"]]
        out = [None if missing else s for s, missing in zip(out, none)]
    return out


class _Reader:
    """Rebuilds graph attributes, resolving references and derived fused features."""

    def __init__(self, arrays: Mapping[str, np.ndarray], specs: Mapping, n: int) -> None:
        self.arrays, self.specs, self.n = arrays, specs, n
        self._flat: dict[tuple[str, str], np.ndarray] = {}
        self._values: dict[tuple[str, str], list] = {}

    def spec(self, field: str, key: str) -> Mapping:
        spec = self.specs[field]["attrs"][key]
        return spec

    def flat(self, field: str, key: str) -> np.ndarray:
        """All studies' rows of a tensor attribute, in its original NumPy dtype."""
        if (field, key) in self._flat:
            return self._flat[(field, key)]
        a = self.spec(field, key)
        if a["kind"] == "ref":
            out = self.flat(a["field"], key)
        elif a["layout"] in ("fused_x", "fused_pos"):
            out = self._fused(key, a)
        else:
            dtype = "float32" if a["dtype"] == "bfloat16" else a["dtype"]
            data = self.arrays[a["data"]]
            if a.get("encoding") == "bits":
                data = np.unpackbits(data, axis=1, count=a["shape"][0])
            out = _writable(data.astype(dtype, copy=False))
            if a["layout"] == "rows":
                out = out.reshape(-1, *a["shape"])
        self._flat[(field, key)] = out
        return out

    def _fused(self, key: str, a: Mapping) -> np.ndarray:
        node_type = self.flat("graphs", "node_type").astype(np.int64).reshape(-1)
        vis = self.flat("visual_graphs", key)
        is_vis = node_type == 0
        dtype = "float32" if a["dtype"] == "bfloat16" else a["dtype"]
        if key == "pos":
            out = np.full((len(node_type), *a["shape"]), np.nan, dtype=dtype)
            out[is_vis] = vis
            return out
        rep = self.flat("report_graphs", key)
        dv, dr = vis.shape[1], rep.shape[1]
        out = np.zeros((len(node_type), dv + dr + 1), dtype=dtype)
        out[is_vis, :dv] = vis
        out[~is_vis, dv:dv + dr] = rep
        out[~is_vis, -1] = 1
        return out

    def values(self, field: str, key: str) -> list:
        """One value per study (None where the graph lacks the attribute)."""
        if (field, key) in self._values:
            return self._values[(field, key)]
        a = self.spec(field, key)
        n, arrays = self.n, self.arrays
        kind = a["kind"]
        if kind == "ref":
            values = self.values(a["field"], key)
        elif kind == "strings":
            values = _read_strings(arrays, a)
        elif kind == "string_lists":
            names = _decode_strings(arrays[a["data"]], _ptr(arrays, a["offsets"]))
            ptr = _ptr(arrays, a["ptr"]).tolist()
            values = [names[ptr[i]:ptr[i + 1]] for i in range(n)]
        elif kind == "scalars":
            cast = {"bool": bool, "int": int, "float": float}[a["python"]]
            values = [cast(v) for v in arrays[a["data"]].tolist()]
        elif kind == "tensor":
            full = self.flat(field, key)
            dtype, torch_ = a["dtype"], a["torch"]
            if a["layout"] == "scalar":
                values = [_restore(full[i], dtype, torch_) for i in range(n)]
            else:
                ptr = _ptr(arrays, a["ptr"]).tolist()
                if a["layout"] == "edges":
                    values = [_restore(full[2 * ptr[i]:2 * ptr[i + 1]].reshape(2, -1), dtype,
                                       torch_) for i in range(n)]
                else:
                    values = [_restore(full[ptr[i]:ptr[i + 1]], dtype, torch_)
                              for i in range(n)]
            if a.get("container") == "list":
                values = [v.tolist() for v in values]
        else:
            raise ArchiveError(f"unknown graph attribute kind {kind!r}")
        if "present" in a:
            present = arrays[a["present"]]
            values = [v if p else None for v, p in zip(values, present)]
        self._values[(field, key)] = values
        return values

    def graphs(self, field: str) -> list:
        from .graphs import make_data

        columns = {key: self.values(field, key) for key in self.specs[field]["attrs"]}
        return [make_data(**{key: col[i] for key, col in columns.items()})
                for i in range(self.n)]


def _studies_from(meta: Mapping, arrays: Mapping[str, np.ndarray],
                  fields: Iterable[str] | None) -> StudySet:
    n = int(meta["n_studies"])
    specs = meta["fields"]
    wanted = set(specs) if fields is None else set(fields) | {"ids"}
    unknown = wanted - set(PER_STUDY_FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}; fields are {list(PER_STUDY_FIELDS)}")
    absent = wanted - set(specs)
    if absent and fields is not None:
        raise ValueError(f"field(s) {sorted(absent)} are not in this archive "
                         f"(it holds {sorted(specs)})")
    values: dict[str, Any] = {}
    reader = _Reader(arrays, specs, n)
    for field, spec in specs.items():
        if field not in wanted:
            continue
        kind = spec["kind"]
        if field == "ids":
            ids = _read_strings(arrays, spec)
            if spec.get("ids_kind") == "int":
                values["ids"] = np.array([int(v) for v in ids], dtype=np.int64)
            elif spec.get("ids_kind") == "bool":
                values["ids"] = np.array([v == "True" for v in ids], dtype=bool)
            else:
                values["ids"] = np.array(ids, dtype=str) if ids else np.zeros(0, dtype=str)
        elif kind == "strings":
            values[field] = _read_strings(arrays, spec)
        elif kind == "dense":
            values[field] = _writable(arrays[spec["data"]].astype(spec["dtype"], copy=False))
        elif kind == "bits":
            values[field] = np.unpackbits(arrays[spec["data"]], axis=1,
                                          count=spec["n_patches"]).astype(bool)
        elif kind == "ragged":
            full = _writable(arrays[spec["data"]].astype(spec["dtype"], copy=False))
            full = full.reshape(-1, *spec["shape"])
            ptr = _ptr(arrays, spec["ptr"]).tolist()
            values[field] = [full[ptr[i]:ptr[i + 1]] for i in range(n)]
        elif kind == "graphs":
            values[field] = reader.graphs(field)
        else:
            raise ArchiveError(f"unknown field kind {kind!r} for {field!r}")
    return StudySet(grid_shape=meta.get("grid_shape"), info=meta.get("info"), **values)


def _read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArchiveError(f"cannot read the manifest {str(path)!r}: {exc}") from exc
    if not isinstance(manifest, dict) or "shards" not in manifest:
        raise ArchiveError(f"{str(path)!r} is not a neural_sk manifest (no 'shards')")
    return manifest


def _archive_files(path: str | os.PathLike | Sequence) -> list[Path]:
    """The shard files of a folder with a manifest (in row order), a list, or one file."""
    if isinstance(path, (list, tuple)):
        return [Path(p) for p in path]
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise FileNotFoundError(f"{str(path)!r} is a folder without {MANIFEST_NAME}; "
                                    "give an archive file or a folder written by compress")
        manifest = _read_manifest(path)
        if not manifest.get("complete", False):
            import warnings

            warnings.warn(f"the archive in {str(path)!r} is incomplete (an interrupted "
                          "compress run): loading the shards written so far; finish it with "
                          "resume=True", stacklevel=3)
        shards = sorted(manifest["shards"], key=lambda s: s["index"])
        return [path / s["file"] for s in shards if s.get("file")]
    return [path]


def load_studies(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                 fields: Iterable[str] | None = None, info: Mapping | None = None) -> StudySet:
    """Read an archive written by :func:`save_studies` (or a folder written by ``compress``).

    The file's checksum is verified first; every array is read with
    ``numpy.load(..., allow_pickle=False)`` and graphs are rebuilt as
    ``torch_geometric.data.Data`` with their original dtypes (features stored at float16 come
    back as float32 values rounded to float16).

    Parameters
    ----------
    path : path, folder, or list of paths
        One archive file; a folder holding ``manifest.json`` and its shards (loaded in row
        order); or several archive files, joined in order.
    fields : iterable of str, default=None
        Per-study fields to rebuild (``ids`` always are); all stored fields by default.
    info : dict, default=None
        The scorer identity the caller expects (e.g. ``scorer.info_``); a different one
        raises :class:`IncompatibleArchiveError`.

    Returns
    -------
    StudySet

    Raises
    ------
    ArchiveError
        The file is damaged (checksum mismatch), not an archive, or of a newer format.
    IncompatibleArchiveError
        Files written by different scorers, or not the expected ``info``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, StudySet(attention=np.eye(2, dtype=np.float32)))
    >>> load_studies(path).attention
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """
    files = _archive_files(path)
    if not files:
        raise ValueError(f"no archive files in {path!r}")
    parts = []
    for file in files:
        meta, arrays = _open_verified(Path(file))
        part = _studies_from(meta, arrays, fields)
        if parts:
            check_compatible(parts[0].info, part.info,
                             what=f"archives {str(files[0])!r} and {str(file)!r}")
            if parts[0].grid_shape != part.grid_shape:
                raise IncompatibleArchiveError(
                    f"archives {str(files[0])!r} and {str(file)!r} have different patch grids "
                    f"{parts[0].grid_shape} and {part.grid_shape}")
        parts.append(part)
    if info is not None:
        check_compatible(info, parts[0].info, what=f"the expected scorer and {str(path)!r}")
    if len(parts) == 1:
        return parts[0]
    nonempty = [p for p in parts if len(p)] or parts[:1]
    return concat_study_sets(nonempty)


def archive_info(path: str | os.PathLike) -> dict:
    """The metadata of one archive file (after verifying its checksum).

    Parameters
    ----------
    path : str or path-like
        An archive file.

    Returns
    -------
    dict
        ``format_version``, ``n_studies``, ``grid_shape``, ``info`` (the scorer's identity),
        ``feature_dtype``, ``fields`` (how each field is stored), ``nbytes`` (per field),
        ``arrays`` (name, dtype and shape of every stored array) and ``payload_sha256``.

    Examples
    --------
    >>> import os, tempfile
    >>> from neural_sk import StudySet
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, StudySet(reports=["a"]))
    >>> archive_info(path)["format_version"]
    1
    """
    meta, _ = _open_verified(Path(path))
    return meta


def archive_nbytes(path: str | os.PathLike | Sequence[str | os.PathLike]) -> dict:
    """Bytes of an archive: the file(s), each field, and each study per field.

    Parameters
    ----------
    path : path, folder or list of paths
        As in :func:`load_studies`.

    Returns
    -------
    dict
        ``file_bytes`` (on disk, all files), ``payload_bytes`` (the arrays that belong to
        studies), ``overhead_bytes`` (ZIP headers, metadata, accounting), ``fields``
        (field -> bytes), and ``per_study``: a DataFrame indexed by study id with one column
        per field and a ``total`` column.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, StudySet(attention=np.full((3, 4), 0.25, np.float32)))
    >>> acc = archive_nbytes(path)
    >>> acc["fields"]["attention"], acc["per_study"]["attention"].tolist()
    (48, [16, 16, 16])
    """
    import pandas as pd

    frames, file_bytes = [], 0
    for file in _archive_files(path):
        meta, arrays = _open_verified(Path(file))
        file_bytes += os.path.getsize(file)
        ids = _studies_from(meta, arrays, ["ids"]).ids
        table = arrays[_ACCOUNTING].astype(np.int64).reshape(len(ids), -1)
        frames.append(pd.DataFrame(table, columns=meta["accounting_fields"],
                                   index=pd.Index(ids, name="id")))
    per_study = pd.concat(frames).fillna(0).astype(np.int64)
    per_study["total"] = per_study.sum(axis=1)
    fields = {c: int(per_study[c].sum()) for c in per_study.columns if c != "total"}
    payload = int(per_study["total"].sum())
    return {"file_bytes": int(file_bytes), "payload_bytes": payload,
            "overhead_bytes": int(file_bytes - payload), "fields": fields,
            "per_study": per_study}


def load_tiles(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
    """The kept pixel tiles of every study of an archive written with ``pixels=``.

    Parameters
    ----------
    path : path, folder or list of paths
        As in :func:`load_studies`.

    Returns
    -------
    list of dict
        Per study: ``tiles`` (ndarray ``[k, th, tw]``, uint8 or uint16), ``patch_index``
        (int64 ``[k]``), ``image_shape`` (source ``(H, W)``), ``grid_shape``; pass them to
        :func:`neural_sk.plotting.rebuild_sparse_image` or ``show_pruned(None, None, grid,
        tiles=..., patch_index=..., image_shape=...)``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    >>> keep = np.array([[False, False, False, True]])
    >>> s = StudySet(keep_mask=keep, grid_shape=(2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, s, images=[img], pixels="png")
    >>> load_tiles(path)[0]["tiles"][0]
    array([[10, 11],
           [14, 15]], dtype=uint8)
    """
    from PIL import Image

    out = []
    for file in _archive_files(path):
        meta, arrays = _open_verified(Path(file))
        spec = meta.get("pixels")
        if spec is None:
            raise ValueError(f"archive {str(file)!r} holds no pixels (saved without pixels=)")
        keep = _studies_from(meta, arrays, ["keep_mask"]).keep_mask
        blob = arrays[spec["data"]].tobytes()
        ptr = _ptr(arrays, spec["ptr"]).tolist()
        tile_shapes = arrays[spec["tile_shape"]].astype(np.int64)
        image_shapes = arrays[spec["image_shape"]].astype(np.int64)
        for i in range(int(meta["n_studies"])):
            index = np.flatnonzero(keep[i]).astype(np.int64)
            th, tw = (int(v) for v in tile_shapes[i])
            if ptr[i + 1] > ptr[i]:
                with Image.open(_io.BytesIO(blob[ptr[i]:ptr[i + 1]])) as im:
                    strip = np.asarray(im)
                if strip.dtype == np.int32:  # 16-bit PNGs may open in mode "I"
                    strip = strip.astype(np.uint16)
                tiles = strip.reshape(th, index.size, tw).transpose(1, 0, 2)
            else:
                tiles = np.zeros((0, th, tw), dtype=np.uint8)
            out.append({"tiles": np.ascontiguousarray(tiles), "patch_index": index,
                        "image_shape": tuple(int(v) for v in image_shapes[i]),
                        "grid_shape": tuple(meta["grid_shape"])})
    return out


def load_sparse_images(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                       fill: float = 0) -> list[np.ndarray]:
    """Rebuild each study's sparse image (kept tiles, the rest ``fill``) from an archive.

    Parameters
    ----------
    path : path, folder or list of paths
        An archive written with ``pixels=`` (as in :func:`load_studies`).
    fill : scalar, default=0
        Value of the pixels outside the kept patches.

    Returns
    -------
    list of ndarray
        One image per study at source resolution (uint8, or uint16 for 16-bit PNG tiles).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> img = np.full((4, 4), 7, dtype=np.uint8)
    >>> s = StudySet(keep_mask=np.array([[True, False, False, False]]), grid_shape=(2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, s, images=[img], pixels="png")
    >>> load_sparse_images(path)[0]
    array([[7, 7, 0, 0],
           [7, 7, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    from .plotting import rebuild_sparse_image

    return [rebuild_sparse_image(t["tiles"], t["patch_index"], t["grid_shape"],
                                 t["image_shape"], fill=fill) for t in load_tiles(path)]
