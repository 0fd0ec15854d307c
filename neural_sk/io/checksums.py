"""Checksums of an archive: the SHA-256 of its arrays and of the whole file.

The arrays' digest (``payload_sha256``) sits in the metadata; the file's digest is the ZIP
comment, the file's last bytes (the *trailer*), covering everything before it. So a single
flipped byte anywhere in the file is found before anything in it is trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, BinaryIO

import numpy as np

from .errors import ArchiveError, NotAnArchiveError

__all__ = ["TRAILER_PREFIX", "TRAILER_LEN", "TRAILER_PLACEHOLDER", "payload_digest",
           "file_digest", "write_trailer", "check_trailer"]

TRAILER_PREFIX = b"neural_sk-sha256:"
TRAILER_LEN = len(TRAILER_PREFIX) + 64
# Written as the ZIP comment first (the right length), then overwritten by the real digest.
TRAILER_PLACEHOLDER = TRAILER_PREFIX + b"0" * 64
_HASH_CHUNK = 1 << 20


def payload_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the arrays: names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.ascontiguousarray(arrays[name])
        digest.update(name.encode())
        digest.update(arr.dtype.str.encode())
        digest.update(repr(arr.shape).encode())
        digest.update(memoryview(arr).cast("B") if arr.size else b"")
    return digest.hexdigest()


def file_digest(handle: Any, length: int) -> str:
    """SHA-256 of the first ``length`` bytes of an open binary file, read in chunks."""
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


def write_trailer(handle: BinaryIO) -> str:
    """Replace the placeholder trailer at the end of ``handle`` by the file's digest."""
    handle.flush()
    size = handle.seek(0, 2)
    digest = file_digest(handle, size - TRAILER_LEN)
    handle.seek(size - TRAILER_LEN)
    handle.write(TRAILER_PREFIX + digest.encode())
    handle.flush()
    return digest


def check_trailer(handle: BinaryIO, shown: str, *, verify: bool = True) -> None:
    """Raise :class:`ArchiveError` unless the file ends in a trailer that (with ``verify``)
    matches its content; without ``verify`` only the trailer's presence is checked, and
    damage is found by the CRC-32 of each member read."""
    size = handle.seek(0, 2)
    if size < TRAILER_LEN:
        raise NotAnArchiveError(f"{shown} is not a neural_sk archive or is truncated "
                           f"({size} bytes)")
    handle.seek(size - TRAILER_LEN)
    trailer = handle.read(TRAILER_LEN)
    if not trailer.startswith(TRAILER_PREFIX):
        raise NotAnArchiveError(f"{shown} is not a neural_sk archive, or it is damaged or "
                           "truncated: its checksum trailer is missing")
    if not verify:
        return
    expected = trailer[len(TRAILER_PREFIX):].decode("ascii", "replace")
    actual = file_digest(handle, size - TRAILER_LEN)
    if actual != expected:
        raise ArchiveError(f"archive {shown} is damaged: its SHA-256 checksum does not match "
                           f"(stored {expected[:16]}..., computed {actual[:16]}...); "
                           "restore it from a copy or recompute it")
