"""One archive file (a *shard*): a StudySet to ZIP members and back, checksummed.

The file is a ZIP of ``.npy`` members (``numpy.load(path, allow_pickle=False)`` reads it)
plus ``meta.json``; it is written to a temporary file, fsynced and renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..studies import PER_STUDY_FIELDS, StudySet
from .checksums import (TRAILER_LEN, TRAILER_PLACEHOLDER, check_trailer, payload_digest,
                        write_trailer)
from .columns import (Writer, read_ptr, read_ragged, read_strings, stored_dtype,
                      unpack_bits, writable)
from .errors import ArchiveError
from .derived import mask_from_patch_ids
from .format import (ACCOUNTING, FORMAT, FORMAT_VERSION, GRAPH_FIELDS, META_NAME,
                     READABLE_VERSIONS, compact_int, jsonable, quantise_int8)
from .graph_decoder import GraphDecoder
from .graph_encoder import GraphEncoder
from .members import KnownTail, open_file, read_arrays, read_meta

__all__ = ["collect_members", "encode_studies", "decode_studies", "write_shard", "read_shard", "fsync_dir"]

# Fixed ZIP timestamps make the same StudySet give the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


# --------------------------------------------------------------------------------------
# StudySet <-> members
# --------------------------------------------------------------------------------------
def _ids_spec(w: Writer, ids: np.ndarray) -> dict:
    """ids as strings, with the kind needed to give back the same values."""
    kind = "int" if ids.dtype.kind in "iu" else "bool" if ids.dtype.kind == "b" else "str"
    spec = w.add_strings("ids", [str(v) for v in ids.tolist()], "ids")
    spec["ids_kind"] = kind
    return spec


def _field_spec(w: Writer, graphs: GraphEncoder, studies: StudySet, field: str,
                feature_dtype: str) -> dict:
    value, ids = getattr(studies, field), studies.ids
    if field in ("reports", "errors"):
        bad = [i for i, s in enumerate(value) if s is not None and not isinstance(s, str)]
        if bad:
            i = bad[0]
            raise TypeError(f"{field}[{i}] (study {ids[i]!r}) is "
                            f"{type(value[i]).__name__}, not str")
        return w.add_strings(field, value, field)
    if field == "attention":
        arr = np.asarray(value)
        return {"kind": "dense", "data": w.add_rows(field, arr, field), "dtype": arr.dtype.name}
    if field == "patch_features":
        arr = np.asarray(value)
        if feature_dtype == "int8" and arr.ndim == 3 and np.isfinite(arr).all():
            q, scale = quantise_int8(arr.reshape(-1, arr.shape[2]),
                                     np.full(len(arr), arr.shape[1]))
            return {"kind": "dense", "dtype": arr.dtype.name, "encoding": "int8",
                    "data": w.add_rows(field, q.reshape(arr.shape), field),
                    "scale": w.add_rows(field + ".scale", scale, field)}
        stored = arr.astype("float16" if feature_dtype == "int8" else feature_dtype,
                            copy=False)
        return {"kind": "dense", "dtype": arr.dtype.name,
                "data": w.add_rows(field, stored, field)}
    if field == "keep_mask":
        arr = np.asarray(value, dtype=bool)
        if arr.ndim != 2:
            raise ValueError(f"keep_mask must be 2-D (n, P), got shape {arr.shape}")
        return {"kind": "bits", "n_patches": int(arr.shape[1]),
                "data": w.add_rows(field, np.packbits(arr, axis=1), field)}
    if field == "token_attention":
        return w.add_ragged(field, value, field)
    if field == "token_offsets":
        return w.add_ragged(field, value, field, store_dtype="int")
    if field in GRAPH_FIELDS:
        return graphs.add(field, value, ids)  # StudySet holds every graph field as a GraphList
    raise ValueError(f"cannot store field {field!r}")  # pragma: no cover - all handled above


def collect_members(studies: StudySet, fields: Sequence[str], feature_dtype: str,
                    extra: Any = None) -> tuple[Writer, dict, Any]:
    """The writer holding an archive's members (and the bytes each study owes each field
    and member), the fields' specs and the pixels' metadata: what :func:`encode_studies`
    writes, without writing it."""
    n = len(studies)
    w = Writer(n)
    graphs = GraphEncoder(w, feature_dtype, studies.grid_shape)
    meta_fields: dict[str, Any] = {"ids": _ids_spec(w, studies.ids)}
    for field in fields:
        if field != "ids":
            meta_fields[field] = _field_spec(w, graphs, studies, field, feature_dtype)
            # A field rebuilt on load still has its column (of zeros) in the accounting.
            w.per_study.setdefault(field, np.zeros(n, dtype=np.float64))
    if "keep_mask" in meta_fields and "visual_graphs" in graphs.patch_ids:
        _mask_from_graphs(w, meta_fields, graphs.patch_ids["visual_graphs"], studies.keep_mask)
    pixel_meta = extra(w) if extra is not None else None
    return w, meta_fields, pixel_meta


def encode_studies(studies: StudySet, fields: Sequence[str], feature_dtype: str,
                   extra: Any = None) -> tuple[dict[str, np.ndarray], dict]:
    """The members and metadata of an archive of ``fields`` (in pipeline order).

    ``extra(writer)``, when given, adds more members (the pixel tiles) and returns their
    metadata, stored as ``meta["pixels"]``.
    """
    n = len(studies)
    w, meta_fields, pixel_meta = collect_members(studies, fields, feature_dtype, extra)
    # Bytes each study owes each field (the accounting array itself is overhead).
    accounting = list(w.per_study)
    table = np.stack([np.round(w.per_study[f]) for f in accounting], axis=1) if accounting \
        else np.zeros((n, 0))
    arrays = dict(w.arrays)
    arrays[ACCOUNTING] = compact_int(table.astype(np.int64)).reshape(n, len(accounting))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neural_sk_version": __version__,
        "n_studies": n,
        "grid_shape": None if studies.grid_shape is None else list(studies.grid_shape),
        "info": jsonable(studies.info) if studies.info is not None else None,
        "feature_dtype": feature_dtype,
        "fields": meta_fields,
        "pixels": pixel_meta,
        "accounting_fields": accounting,
        "nbytes": {f: int(np.round(w.per_study[f].sum())) for f in accounting},
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)}
                   for name, a in arrays.items()},
        "payload_sha256": payload_digest(arrays),
    }
    return arrays, meta


def _mask_from_graphs(w: Writer, meta_fields: dict, patch_spec: Mapping,
                      keep_mask: np.ndarray) -> None:
    """Drop the stored keep mask when the visual graphs' patch ids rebuild it exactly."""
    mask = np.asarray(keep_mask, dtype=bool)
    pid = np.asarray(w.arrays[patch_spec["data"]])
    counts = np.diff(w.arrays[patch_spec["ptr"]].astype(np.int64))
    if (mask.ndim != 2 or len(counts) != len(mask) or pid.ndim != 1
            or (pid.size and int(pid.max()) >= mask.shape[1])
            or not np.array_equal(mask.sum(axis=1), counts)
            or not np.array_equal(mask_from_patch_ids(pid, counts, mask.shape[1]), mask)):
        return
    spec = meta_fields["keep_mask"]
    for name in (spec["data"],):
        w.per_study["keep_mask"] -= w.per_member.pop(name)
        del w.arrays[name]
    meta_fields["keep_mask"] = {"kind": "patch_ids", "n_patches": int(mask.shape[1]),
                                "data": patch_spec["data"], "ptr": patch_spec["ptr"]}


def decode_studies(meta: Mapping, arrays: Mapping[str, np.ndarray],
                   fields: Iterable[str] | None, shown: str = "the archive") -> StudySet:
    """The StudySet of ``fields`` (all stored ones when None) from an archive's members.

    Every field is cross-checked against the header (study count, patch grid) and its
    offsets against the arrays they cut; anything malformed is an :class:`ArchiveError`
    naming ``shown`` (the file) and the field.
    """
    n, grid = _header(meta, shown)
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
    graphs = GraphDecoder(arrays, specs, n, grid)
    for field in (f for f in specs if f in wanted):
        try:
            values[field] = value = _decode_field(field, specs[field], arrays, n, graphs)
            if len(value) != n:
                raise ValueError(f"{len(value)} studies where n_studies is {n}")
            width = getattr(value, "shape", (n, None))[1:2]
            if grid is not None and field in _GRID_FIELDS and width != (grid[0] * grid[1],):
                raise ValueError(f"{width[0] if width else None} patches for a {grid} grid")
        except ArchiveError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                UnicodeDecodeError, OverflowError) as exc:
            raise ArchiveError(f"{shown}: metadata field 'fields.{field}' is malformed or "
                               f"does not match its arrays ({type(exc).__name__}: {exc})"
                               ) from None
    try:
        return StudySet(grid_shape=grid, info=meta.get("info"), **values)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{shown}: the stored fields do not form a StudySet ({exc})"
                           ) from None


_GRID_FIELDS = ("attention", "keep_mask", "patch_features")


def _header(meta: Mapping, shown: str) -> tuple[int, tuple[int, int] | None]:
    """``n_studies`` and ``grid_shape``, checked."""
    n = meta.get("n_studies")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ArchiveError(f"{shown}: metadata field 'n_studies' is {n!r}, not an int >= 0")
    grid = meta.get("grid_shape")
    if grid is not None and not (isinstance(grid, list) and len(grid) == 2 and all(
            isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid)):
        raise ArchiveError(f"{shown}: metadata field 'grid_shape' is {grid!r}, not two ints > 0")
    fields = meta.get("fields")
    if not isinstance(fields, dict) or not isinstance(fields.get("ids"), dict) or not all(
            isinstance(spec, dict) for spec in fields.values()):
        raise ArchiveError(f"{shown}: metadata field 'fields' is not an object of field specs "
                           "with 'ids'")
    return n, None if grid is None else (grid[0], grid[1])


def _decode_field(field: str, spec: Mapping, arrays: Mapping[str, np.ndarray], n: int,
                  graphs: GraphDecoder) -> Any:
    kind = spec["kind"]
    if field == "ids":
        return _read_ids(arrays, spec, n)
    if kind == "strings":
        return read_strings(arrays, spec, n)
    if kind == "dense":
        data = arrays[spec["data"]]
        if spec.get("encoding") == "int8":
            scale = arrays[spec["scale"]].astype(np.float64).reshape(-1)
            data = data * scale.reshape(-1, *([1] * (data.ndim - 1)))
        return writable(data.astype(stored_dtype(spec["dtype"]), copy=False))
    if kind == "bits":
        return unpack_bits(arrays[spec["data"]], spec["n_patches"]).astype(bool)
    if kind == "patch_ids":
        pid = arrays[spec["data"]]
        counts = np.diff(read_ptr(arrays, spec["ptr"], pid.size, n))
        n_patches = spec["n_patches"]
        if not isinstance(n_patches, int) or (pid.size and int(pid.max()) >= n_patches):
            raise ValueError(f"patch ids do not fit {n_patches!r} patches")
        return mask_from_patch_ids(pid, counts, n_patches)
    if kind == "ragged":
        return read_ragged(arrays, spec, n)
    if kind in ("graphs", "fused"):
        return graphs.graphs(field)
    raise ValueError(f"unknown field kind {kind!r}")


def _read_ids(arrays: Mapping[str, np.ndarray], spec: Mapping, n: int) -> np.ndarray:
    ids = read_strings(arrays, spec, n)
    if spec.get("ids_kind") == "int":
        return np.array([int(v) for v in ids], dtype=np.int64)
    if spec.get("ids_kind") == "bool":
        return np.array([v == "True" for v in ids], dtype=bool)
    return np.array(ids, dtype=str) if ids else np.zeros(0, dtype=str)


# --------------------------------------------------------------------------------------
# Members <-> file
# --------------------------------------------------------------------------------------
def write_shard(path: Path, members: Mapping[str, np.ndarray], meta: Mapping,
                compression: bool) -> str:
    """Write the ZIP (atomically: temporary file, fsync, rename); return the file digest."""
    meta_bytes = json.dumps(meta, sort_keys=True, separators=(",", ":"),
                            allow_nan=False).encode()
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
                info = zipfile.ZipInfo(META_NAME, date_time=_ZIP_DATE)
                # The metadata is JSON, a few kB per shard: deflated it costs a quarter.
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, meta_bytes)
                zf.comment = TRAILER_PLACEHOLDER
            digest = write_trailer(fh)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return digest


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows it)."""
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


def read_shard(path: Path, *, follow_symlinks: bool = True,
               fields: Iterable[str] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a shard's metadata and arrays (never unpickling), every size bounded (see
    :mod:`neural_sk.io.members`).

    With ``fields=None`` the whole file is verified: its SHA-256, then every array's. With
    ``fields``, only the members those fields need are read, each checked by its CRC-32, so
    a few fields of a large file cost a few of its bytes and damage in them is still found.
    """
    shown = repr(str(path))
    if follow_symlinks and not path.is_file():
        raise FileNotFoundError(f"archive {shown} does not exist")
    with open_file(path, follow_symlinks=follow_symlinks) as fh:
        check_trailer(fh, shown, verify=fields is None)
        size = fh.seek(0, os.SEEK_END)
        try:
            # The end record (22 bytes) then the checksum trailer close the file.
            with zipfile.ZipFile(KnownTail(fh, size, 22 + TRAILER_LEN)) as zf:
                meta = read_meta(zf, shown)
                _check_format(meta, shown)
                names = None if fields is None else _members_for(meta, fields, shown)
                arrays = read_arrays(zf, meta, size, shown, names)
        except ArchiveError:
            raise
        except Exception as exc:
            raise ArchiveError(f"cannot read archive {shown}: {type(exc).__name__}: {exc}"
                               ) from exc
    if names is None and payload_digest(arrays) != meta.get("payload_sha256"):
        raise ArchiveError(f"archive {shown} is damaged: the arrays' SHA-256 does not match "
                           "its metadata")
    return meta, arrays


def _members_for(meta: Mapping, fields: Iterable[str], shown: str) -> set[str]:
    """The arrays that ``fields`` (and ``ids``) are read from, following the fused graphs'
    references to the visual and report graphs."""
    specs = meta.get("fields")
    if not isinstance(specs, dict):
        raise ArchiveError(f"{shown}: metadata field 'fields' is not an object")
    wanted = {"ids", *fields}
    if "graphs" in wanted:
        wanted |= {"visual_graphs", "report_graphs"}
    declared = meta.get("arrays") if isinstance(meta.get("arrays"), dict) else {}
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and value in declared:
            names.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)

    for field in wanted & set(specs):
        walk(specs[field])
    return names


def _check_format(meta: Mapping, shown: str) -> None:
    if meta.get("format") != FORMAT:
        raise ArchiveError(f"{shown} is not a neural_sk archive (format {meta.get('format')!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version not in READABLE_VERSIONS:
        raise ArchiveError(
            f"{shown} has format version {version!r}; this neural_sk "
            f"({__version__}) reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: upgrade neural_sk")
