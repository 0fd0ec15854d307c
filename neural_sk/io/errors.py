"""The errors of the archive: damaged or foreign files, and studies that must not be mixed."""

from __future__ import annotations

__all__ = ["ArchiveError", "NotAnArchiveError", "IncompatibleArchiveError"]


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


class NotAnArchiveError(ArchiveError):
    """The file is no archive at all (too short, no checksum trailer): for a shard listed in
    a manifest this reads the same as a missing one, so nothing is learnt from the reply."""


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

