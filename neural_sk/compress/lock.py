"""One compress run per output folder: a lock file holding the owner's pid and host.

Two runs writing one folder would compute every shard twice, and the second's clean-up
would delete the temporary files the first is still writing. The lock is created
atomically (``O_CREAT | O_EXCL``) before anything in the folder is touched and removed when
the run ends, however it ends. A lock left by a process that no longer runs (same host) is
stale and taken over with a warning; one from another host cannot be checked from here, so
the message says how to remove it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from .errors import CompressError

__all__ = ["LOCK_NAME", "locked"]

LOCK_NAME = "compress.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    except OSError:  # pragma: no cover - e.g. an invalid pid on this platform
        return False
    return True


def _create(path: Path) -> bool:
    """Create the lock file; False when it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()},
                  fh)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def _owner(path: Path) -> dict | None:
    """The lock's content, or None when it is unreadable (being written, or damaged)."""
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold the lock on ``out`` (a folder) for the ``with`` block.

    Raises
    ------
    CompressError
        Another live process holds it (its pid and host are named), or a process on
        another host does.
    """
    path = out / LOCK_NAME
    for _ in range(3):  # a stale lock removed by a concurrent run: try again
        if _create(path):
            break
        owner = _owner(path)
        host = socket.gethostname()
        if owner is None or owner.get("host") != host:
            where = "" if owner is None else f" by pid {owner.get('pid')} on {owner.get('host')}"
            raise CompressError(
                f"{str(out)!r} is locked{where} ({LOCK_NAME}): another compress run is "
                f"writing it. If no run is, delete {str(path)!r} and try again")
        pid = owner.get("pid")
        if isinstance(pid, int) and _alive(pid):
            raise CompressError(f"{str(out)!r} is being written by a running compress "
                                f"(pid {pid} on {host}); wait for it to end, or stop it")
        warnings.warn(f"removing a stale lock on {str(out)!r} (pid {pid} on {host} no longer "
                      "runs)", stacklevel=3)
        path.unlink(missing_ok=True)
    else:  # pragma: no cover - three races in a row
        raise CompressError(f"could not lock {str(out)!r}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
