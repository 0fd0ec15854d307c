"""Reading a shard's members without trusting it: every size is checked before it is read.

A shard is someone else's file until proven otherwise. Its checksum proves it is intact,
not that it is honest (anyone can recompute a SHA-256), so reading is bounded as well:

- ``meta.json`` is read only when the ZIP directory declares it under :data:`META_MAX_BYTES`;
- each array's dtype and shape come from the metadata; the ZIP directory's uncompressed size
  and the ``.npy`` header must agree with them before a byte of data is decompressed, and
  all the arrays together must fit in :func:`member_budget` (a multiple of the file's size);
- decompression is streamed into an array of the declared size and stops there.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ArchiveError
from .format import META_NAME

__all__ = ["META_MAX_BYTES", "member_budget", "open_file", "KnownTail", "read_meta",
           "read_arrays"]

META_MAX_BYTES = 8 << 20
# Uncompressed bytes an archive may hold per byte of file: far above what numeric arrays
# deflate by (about 1-20x), far below a zip bomb's 1000x. Small files get a floor.
_MAX_RATIO = 64
_MIN_BUDGET = 64 << 20
_NPY_HEADER_MAX = 10_000  # numpy's own limit on a .npy header
_CHUNK = 1 << 20
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def member_budget(file_bytes: int) -> int:
    """The most uncompressed bytes the arrays of a ``file_bytes`` file may declare."""
    return max(_MIN_BUDGET, _MAX_RATIO * int(file_bytes))


def open_file(path: Path, *, follow_symlinks: bool = True) -> BinaryIO:
    """Open ``path`` for reading; with ``follow_symlinks=False`` a symbolic link fails
    (``OSError``) instead of being followed."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(path, flags), "rb")


class KnownTail:
    """A shard's file handle for :class:`zipfile.ZipFile` that does not read the 64 KiB
    before the end record.

    A ZIP with a comment (the checksum trailer) makes ``zipfile`` read the last 64 KiB of
    the file to search for its end record: most of a small shard, a sizeable share of any
    read of a few fields. The trailer's length is fixed and checked first, so the end
    record's place is known: a whole-rest read from before it gets zeros (which hold no
    record signature) up to the last ``tail`` bytes, then those bytes from the file; every
    other call goes to the file as it is.
    """

    def __init__(self, fh: BinaryIO, size: int, tail: int) -> None:
        self._fh, self._start = fh, max(size - tail, 0)

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            pos = self._fh.tell()
            if pos < self._start:
                self._fh.seek(self._start)
                return bytes(self._start - pos) + self._fh.read()
        return self._fh.read(n)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


def read_meta(zf: zipfile.ZipFile, shown: str) -> dict:
    """``meta.json`` of an open shard, refused when it declares more than the cap."""
    try:
        info = zf.getinfo(META_NAME)
    except KeyError:
        raise ArchiveError(f"{shown} is not a neural_sk archive (no {META_NAME})") from None
    if info.file_size > META_MAX_BYTES:
        raise ArchiveError(f"{shown}: {META_NAME} declares {info.file_size} bytes, more than "
                           f"the {META_MAX_BYTES} an archive's metadata may take")
    with zf.open(info) as fh:
        raw = fh.read(META_MAX_BYTES + 1)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ArchiveError(f"{shown}: {META_NAME} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ArchiveError(f"{shown}: {META_NAME} is not a JSON object")
    return meta


def _declared(meta: Mapping, shown: str) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """name -> (dtype, shape) of every array, as the metadata declares them."""
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict):
        raise ArchiveError(f"{shown}: metadata field 'arrays' is not an object")
    out = {}
    for name, spec in arrays.items():
        where = f"{shown}: metadata field 'arrays.{name}'"
        try:
            dtype = np.dtype(spec["dtype"])
            shape = spec["shape"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ArchiveError(f"{where} is malformed ({type(exc).__name__}: {exc})") from None
        if dtype.hasobject or dtype.kind not in "biufc":
            raise ArchiveError(f"{where} has dtype {dtype.str}; only numbers are stored")
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ArchiveError(f"{where} has shape {shape!r}; expected a list of ints >= 0")
        out[name] = (dtype, tuple(shape))
    return out


def read_arrays(zf: zipfile.ZipFile, meta: Mapping, file_bytes: int, shown: str,
                names: set[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays the metadata declares (only ``names`` when given), each checked against
    the ZIP directory and its ``.npy`` header before its data is decompressed; the ZIP's
    CRC-32 of each member read is checked at its end."""
    declared = _declared(meta, shown)
    infos = {i.filename: i for i in zf.infolist()}
    found = {n[:-4] for n in infos if n.endswith(".npy")}
    extra = set(infos) - {n + ".npy" for n in found} - {META_NAME}
    if found != set(declared) or extra:
        odd = sorted((found ^ set(declared)) | extra)
        raise ArchiveError(f"{shown} is damaged: members {odd} are missing or unexpected")
    total = sum(d.itemsize * int(np.prod(s, dtype=np.int64)) for d, s in declared.values())
    budget = member_budget(file_bytes)
    if total > budget:
        raise ArchiveError(f"{shown}: its metadata declares {total} bytes of arrays, more than "
                           f"{budget} for a file of {file_bytes} bytes; refusing to inflate it")
    out = {}
    for name in sorted(declared if names is None else set(declared) & names):
        dtype, shape = declared[name]
        out[name] = _read_member(zf, infos[name + ".npy"], dtype, shape, shown)
    return out


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dtype: np.dtype,
                 shape: tuple[int, ...], shown: str) -> np.ndarray:
    where = f"{shown}: member {info.filename!r}"
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ArchiveError(f"{where} uses an unsupported compression")
    if not nbytes <= info.file_size <= nbytes + _NPY_HEADER_MAX:
        raise ArchiveError(f"{where} declares {info.file_size} bytes in the ZIP directory; "
                           f"its metadata says {nbytes} bytes of data")
    with zf.open(info) as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy version {version}")
            header = read_header(fh, max_header_size=_NPY_HEADER_MAX)
        except ValueError as exc:
            raise ArchiveError(f"{where} has a bad .npy header ({exc})") from None
        got_shape, fortran, got_dtype = header
        if got_dtype != dtype or tuple(got_shape) != shape:
            raise ArchiveError(f"{where} holds {got_dtype.str} {tuple(got_shape)}; its "
                               f"metadata says {dtype.str} {shape}")
        arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
        _read_exactly(fh, memoryview(arr.reshape(-1).view(np.uint8)), where)
        if fh.read(1):
            raise ArchiveError(f"{where} holds more data than its header declares")
    return arr.T if fortran else arr


def _read_exactly(fh: Any, view: memoryview, where: str) -> None:
    """Fill ``view`` from ``fh`` in chunks (the ZIP stream stops at its declared size)."""
    pos, size = 0, len(view)
    while pos < size:
        n = fh.readinto(view[pos:pos + _CHUNK])
        if not n:
            raise ArchiveError(f"{where} is truncated ({pos} of {size} bytes)")
        pos += n
