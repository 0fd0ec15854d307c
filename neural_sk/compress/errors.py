"""The error of a compress run."""

from __future__ import annotations

__all__ = ["CompressError"]


class CompressError(RuntimeError):
    """A study failed under ``on_error="fail"``, or the run cannot go on; the message names it.

    Examples
    --------
    >>> str(CompressError("study 's1' (row 3, image 'a.png') failed: file not found"))
    "study 's1' (row 3, image 'a.png') failed: file not found"
    """
