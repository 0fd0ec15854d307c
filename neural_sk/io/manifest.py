"""The manifest of a sharded archive (a folder written by ``compress``), in one place.

``manifest.json`` is the folder's source of truth: a header (format, input, model, settings),
one entry per finished shard (index, input rows, file, study ids, failed studies, bytes,
digest), the failed studies, and ``complete`` once the run ended. It is always written
atomically, so a reader sees the old manifest or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from .errors import ArchiveError, NotAnArchiveError
from .format import MANIFEST_NAME
from .members import open_file
from .shards import fsync_dir, read_shard

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "MANIFEST_MAX_BYTES", "SHARD_RE", "TEMP_RE",
           "new_header", "shard_name", "shard_entry", "write_json_atomic", "read_manifest",
           "kept_entries", "read_shards", "Manifest"]

MANIFEST_FORMAT = "neural_sk.manifest"
MANIFEST_VERSION = 1
# About 100 bytes per study (its id, and the reason of a failed one): room for millions.
MANIFEST_MAX_BYTES = 256 << 20
SHARD_RE = re.compile(r"^shard-(\d{6,})\.npz$")
# Temporary files of an interrupted write (a shard's or the manifest's).
TEMP_RE = re.compile(r"^\.(shard-\d+\.npz|manifest\.json)\.tmp-")


def new_header(**settings: Any) -> dict:
    """The header of a new manifest: format, versions, then the run's ``settings``."""
    return {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION,
            "neural_sk_version": __version__, **settings}


def shard_name(index: int) -> str:
    """The file name of shard ``index``."""
    return f"shard-{index:06d}.npz"


def shard_entry(index: int, rows: tuple[int, int], failed: list[dict],
                written: Mapping | None = None, ids: Sequence = ()) -> dict:
    """The manifest entry of one shard (``written``: what ``save_studies`` returned)."""
    entry = {"index": int(index), "rows": [int(rows[0]), int(rows[1])], "file": None,
             "n_studies": 0, "ids": [], "failed": failed, "bytes": 0, "sha256": None}
    if written is not None:
        entry.update(file=Path(written["path"]).name, n_studies=int(written["n_studies"]),
                     ids=list(ids), bytes=int(written["file_bytes"]),
                     sha256=written["sha256"])
    return entry


def write_json_atomic(path: Path, data: Mapping) -> None:
    """Write JSON through a temporary file, fsync and rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_manifest(folder: Path) -> dict:
    """The manifest of ``folder``, checked field by field; :class:`ArchiveError` naming the
    file and the field when it is not one (or is over :data:`MANIFEST_MAX_BYTES`)."""
    path = Path(folder) / MANIFEST_NAME
    shown = repr(str(path))
    try:
        with open_file(path, follow_symlinks=False) as fh:
            raw = fh.read(MANIFEST_MAX_BYTES + 1)
    except OSError:
        raise ArchiveError(f"cannot read the manifest {shown}: it is not a file inside the "
                           "archive folder") from None
    if len(raw) > MANIFEST_MAX_BYTES:
        raise ArchiveError(f"the manifest {shown} is over {MANIFEST_MAX_BYTES} bytes")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise ArchiveError(f"cannot read the manifest {shown}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ArchiveError(f"{shown} is not a neural_sk manifest (field 'format')")
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise ArchiveError(f"the manifest {shown}: field 'shards' is not a list")
    for i, entry in enumerate(shards):
        _check_entry(entry, f"the manifest {shown}: field 'shards[{i}]")
    if len({e["index"] for e in shards}) != len(shards):
        raise ArchiveError(f"the manifest {shown}: field 'shards' repeats a shard index")
    return manifest


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise ArchiveError(f"{where}' is not an object")
    index = entry.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ArchiveError(f"{where}.index' is {index!r}, not an int >= 0")
    file = entry.get("file")
    if file is not None and not _plain_name(file):
        raise ArchiveError(f"{where}.file' is {file!r}: a shard must be a plain file name "
                           "inside the archive folder")
    for key in ("ids", "failed"):
        if not isinstance(entry.get(key, []), list):
            raise ArchiveError(f"{where}.{key}' is not a list")
    size = entry.get("bytes", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ArchiveError(f"{where}.bytes' is {size!r}, not an int >= 0")


def _plain_name(name: Any) -> bool:
    """A file name with no folder part: no separator, not ``.`` / ``..``, not absolute."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\0" not in name and not os.path.isabs(name)
            and Path(name).name == name)


def kept_entries(manifest: Mapping, folder: Path) -> dict[int, dict]:
    """The entries whose shard is on disk at its recorded size (by index): what a resumed
    run keeps. A lost or half-written shard is left out, so it is computed again."""
    entries = {}
    for entry in manifest.get("shards", []):
        file = entry.get("file")
        if file is not None:
            path = Path(folder) / file
            if not path.is_file() or path.stat().st_size != entry.get("bytes"):
                continue
        entries[int(entry["index"])] = entry
    return entries


def read_shards(path: str | os.PathLike | Sequence, fields: Sequence[str] | None = None
                ) -> Iterator[tuple[Path, dict, dict]]:
    """``(file, meta, arrays)`` of each shard of a folder with a manifest (in row order),
    a list of files, or one file (only the arrays of ``fields``, when given: see
    :func:`~neural_sk.io.shards.read_shard`).

    A folder's shards are its manifest's plain file names, read without following symbolic
    links; one that is missing, a link, not a regular file or not an archive gets the same
    :class:`ArchiveError`, so a manifest cannot be used to probe what exists elsewhere.
    """
    if isinstance(path, (list, tuple)):
        for file in path:
            yield Path(file), *read_shard(Path(file), fields=fields)
        return
    path = Path(path)
    if not path.is_dir():
        yield path, *read_shard(path, fields=fields)
        return
    if not (path / MANIFEST_NAME).is_file():
        raise FileNotFoundError(f"{str(path)!r} is a folder without {MANIFEST_NAME}; "
                                "give an archive file or a folder written by compress")
    manifest = read_manifest(path)
    if manifest.get("complete") is not True:
        warnings.warn(f"the archive in {str(path)!r} is incomplete (an interrupted "
                      "compress run): loading the shards written so far; finish it with "
                      "resume=True", stacklevel=3)
    shards = sorted(manifest["shards"], key=lambda s: s["index"])
    for entry in shards:
        if entry.get("file") is None:
            continue
        file = path / entry["file"]
        try:
            if not stat.S_ISREG(os.lstat(file).st_mode):
                raise NotAnArchiveError(file)
            meta, arrays = read_shard(file, follow_symlinks=False, fields=fields)
        except (OSError, NotAnArchiveError):
            raise ArchiveError(
                f"the manifest {str(path / MANIFEST_NAME)!r} lists shard {entry['file']!r}, "
                "which is not an archive file in that folder (missing, a link, or not an "
                "archive)") from None
        yield file, meta, arrays


class Manifest:
    """A compress run's record of finished shards; written after shards finish (throttled).

    Parameters
    ----------
    path : Path
        The ``manifest.json`` to write.
    header : dict
        The run's format, input, model and settings.
    entries : dict
        Finished shards by index (from :func:`kept_entries` on resume).
    """

    def __init__(self, path: Path, header: dict, entries: dict[int, dict]) -> None:
        self.path, self.header, self.entries = path, header, entries
        self._last_write = -np.inf
        self._write_cost = 0.0
        self.dirty = False

    def data(self, *, complete: bool = False, n_rows: int | None = None) -> dict:
        """The manifest as it would be written now."""
        shards = [self.entries[k] for k in sorted(self.entries)]
        failed = [f for s in shards for f in s["failed"]]
        out = dict(self.header)
        out.update(
            complete=complete,
            n_rows=n_rows,
            n_studies=int(sum(s["n_studies"] for s in shards)),
            n_failed=len(failed),
            bytes=int(sum(s["bytes"] for s in shards)),
            shards=shards,
            failed=failed,
        )
        return out

    def add(self, entry: dict) -> None:
        """Record a finished shard (written to disk now or with a later shard)."""
        self.entries[entry["index"]] = entry
        self.dirty = True
        # Rewriting a large manifest after every shard would cost O(n^2): at most ~10% of
        # the time goes to it. A shard missing from the manifest is only recomputed on resume.
        if time.monotonic() - self._last_write >= max(1.0, 10 * self._write_cost):
            self.write()

    def write(self, *, claim: bool = False, **kwargs: Any) -> dict:
        """Write the manifest atomically; ``claim``: the empty one that claims the folder."""
        t0 = time.monotonic()
        data = self.data(**kwargs)
        write_json_atomic(self.path, data)
        if not claim:  # the first finished shard is always recorded at once
            self._write_cost = time.monotonic() - t0
            self._last_write = time.monotonic()
        self.dirty = False
        return data
