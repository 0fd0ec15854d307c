"""Save and load studies: the archive's public functions.

See :mod:`neural_sk.io` for what an archive is and promises.
"""

from __future__ import annotations

import os
from functools import partial
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..studies import PER_STUDY_FIELDS, StudySet, concat_study_sets
from .errors import IncompatibleArchiveError
from .format import ACCOUNTING, FEATURE_DTYPES, PIXEL_FORMATS, check_compatible, default_fields
from .manifest import read_shards
from .shards import collect_members, decode_studies, encode_studies, read_shard, write_shard
from .tiles import add_pixels

__all__ = ["save_studies", "load_studies", "verify_archive", "archive_info", "archive_nbytes",
           "studies_nbytes"]


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
    feature_dtype : {"float16", "float32", "int8"}, default="float16"
        Storage type of patch features: the graphs' node features ``x`` and, when stored,
        ``patch_features``. Loading gives them back in their original dtype. ``"int8"``
        quantises them with one float32 scale per study (half the bytes of float16; every
        value within half a step, the study's largest magnitude / 254).
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
    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}")
    if pixels not in (None, *PIXEL_FORMATS):
        raise ValueError(f"pixels must be None, 'png' or 'jpeg', got {pixels!r}")
    fields = _stored_fields(studies, fields)
    extra = None if pixels is None else partial(add_pixels, studies=studies, images=images,
                                                fmt=pixels, quality=jpeg_quality)
    arrays, meta = encode_studies(studies, fields, feature_dtype, extra)
    digest = write_shard(Path(path), arrays, meta, compression)
    return {"path": str(path), "n_studies": len(studies), "file_bytes": os.path.getsize(path),
            "sha256": digest}


def _stored_fields(studies: StudySet, fields: Iterable[str] | None) -> list[str]:
    """The fields to store, checked, in pipeline order (so the fused graphs come after the
    visual and report graphs they are rebuilt from)."""
    if fields is None:
        fields = default_fields(studies)
    else:
        fields = list(dict.fromkeys(fields))
        unknown = [f for f in fields if f not in PER_STUDY_FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; fields are {list(PER_STUDY_FIELDS)}")
        empty = [f for f in fields if getattr(studies, f) is None]
        if empty:
            raise ValueError(f"field(s) {empty} are not filled in this StudySet "
                             f"(filled: {studies.fields})")
    return [f for f in PER_STUDY_FIELDS if f in fields]


def studies_nbytes(studies: StudySet, *, fields: Iterable[str] | None = None,
                   feature_dtype: str = "float16", members: bool = False) -> Any:
    """Bytes each study would take in an archive, per field: what :func:`save_studies`
    writes (the same encoder), without writing a file.

    Parameters
    ----------
    studies : StudySet
    fields : iterable of str, default=None
        As in :func:`save_studies`. A field rebuilt on load (the fused graphs, the keep
        mask) costs 0 when the fields it is rebuilt from are stored with it.
    feature_dtype : {"float16", "float32", "int8"}, default="float16"
        As in :func:`save_studies`.
    members : bool, default=False
        One column per stored array (``"visual_graphs/x"``, ...) instead of per field.
        Arrays shared by all studies (offsets, vocabularies) are spread evenly over them.

    Returns
    -------
    pandas.DataFrame
        Indexed by study id, one column per field (or member) and a ``total`` column.
        Per-file overhead (ZIP and ``.npy`` headers, metadata) is not in it:
        :func:`archive_nbytes` gives the file's.

    Examples
    --------
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> s = StudySet(ids=["a", "b"], attention=np.full((2, 4), 0.25, np.float32))
    >>> studies_nbytes(s)["attention"].tolist()
    [16, 16]
    """
    import pandas as pd

    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}")
    w, _, _ = collect_members(studies, _stored_fields(studies, fields), feature_dtype)
    table = w.per_member if members else {f: v for f, v in w.per_study.items() if f != "ids"}
    frame = pd.DataFrame({k: np.round(v).astype(np.int64) for k, v in table.items()},
                         index=pd.Index(studies.ids, name="id"))
    frame["total"] = frame.sum(axis=1)
    return frame


def load_studies(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                 fields: Iterable[str] | None = None, info: Mapping | None = None) -> StudySet:
    """Read an archive written by :func:`save_studies` (or a folder written by ``compress``).

    The file's checksum is verified first (only the asked members' with ``fields``); every
    array is read as plain numbers, never unpickled, each size checked before it is read.
    Graph fields come back as :class:`~neural_sk.graphs.GraphList` objects whose graphs
    have their original dtypes (features stored at float16 come back as float32 values
    rounded to float16).

    Parameters
    ----------
    path : path, folder, or list of paths
        One archive file; a folder holding ``manifest.json`` and its shards (loaded in row
        order); or several archive files, joined in order.
    fields : iterable of str, default=None
        Per-study fields to rebuild (``ids`` always are); all stored fields by default.
        With ``fields``, only the members those fields are stored in are read, each checked
        by its CRC-32 (damage elsewhere is not looked for: :func:`verify_archive` checks
        every byte); without, the whole file's SHA-256 is verified first.
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
    fields = None if fields is None else list(fields)
    parts, first = [], None
    for file, meta, arrays in read_shards(path, fields):
        part = decode_studies(meta, arrays, fields, shown=repr(str(file)))
        if parts:
            check_compatible(parts[0].info, part.info,
                             what=f"archives {str(first)!r} and {str(file)!r}")
            if parts[0].grid_shape != part.grid_shape:
                raise IncompatibleArchiveError(
                    f"archives {str(first)!r} and {str(file)!r} have different patch grids "
                    f"{parts[0].grid_shape} and {part.grid_shape}")
        else:
            first = file
        parts.append(part)
    if not parts:
        raise ValueError(f"no archive files in {path!r}")
    if info is not None:
        check_compatible(info, parts[0].info, what=f"the expected scorer and {str(path)!r}")
    if len(parts) == 1:
        return parts[0]
    nonempty = [p for p in parts if len(p)] or parts[:1]
    return concat_study_sets(nonempty)


def verify_archive(path: str | os.PathLike | Sequence[str | os.PathLike]) -> dict:
    """Check every byte of an archive: checksums, sizes, and that every field decodes.

    :func:`load_studies` with ``fields=`` reads only the members those fields need (each
    checked by its CRC-32); this reads everything, as a full ``load_studies`` does, without
    keeping the studies.

    Parameters
    ----------
    path : path, folder or list of paths
        As in :func:`load_studies`.

    Returns
    -------
    dict
        ``files`` (number of archive files), ``n_studies`` and ``file_bytes``.

    Raises
    ------
    ArchiveError
        Naming the first damaged or malformed file.

    Examples
    --------
    >>> import os, tempfile
    >>> from neural_sk import StudySet
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, StudySet(reports=["a", "b"]))
    >>> verify_archive(path)["n_studies"]
    2
    """
    files = n = size = 0
    for file, meta, arrays in read_shards(path):
        n += len(decode_studies(meta, arrays, None, shown=repr(str(file))))
        files, size = files + 1, size + os.path.getsize(file)
    return {"files": files, "n_studies": n, "file_bytes": size}


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
    2
    """
    meta, _ = read_shard(Path(path))
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
    for file, meta, arrays in read_shards(path):
        file_bytes += os.path.getsize(file)
        ids = decode_studies(meta, arrays, ["ids"]).ids
        table = arrays[ACCOUNTING].astype(np.int64).reshape(len(ids), -1)
        frames.append(pd.DataFrame(table, columns=meta["accounting_fields"],
                                   index=pd.Index(ids, name="id")))
    per_study = pd.concat(frames).fillna(0).astype(np.int64)
    per_study["total"] = per_study.sum(axis=1)
    fields = {c: int(per_study[c].sum()) for c in per_study.columns if c != "total"}
    payload = int(per_study["total"].sum())
    return {"file_bytes": int(file_bytes), "payload_bytes": payload,
            "overhead_bytes": int(file_bytes - payload), "fields": fields,
            "per_study": per_study}
