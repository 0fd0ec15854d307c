"""What an archive is: its format name and version, field kinds, and compact encodings.

Everything here is shared by the writer and the reader, so the two never disagree on a
constant or an integer-type rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..graphs import offsets

from ..studies import PER_STUDY_FIELDS, StudySet
from .errors import IncompatibleArchiveError

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST_NAME", "META_NAME", "ACCOUNTING",
           "FEATURE_DTYPES", "PIXEL_FORMATS", "GRAPH_FIELDS", "jsonable", "check_compatible",
           "default_fields", "lean_fields", "compact_int", "encode_strings",
           "decode_strings", "to_numpy", "restore", "quantise_int8", "READABLE_VERSIONS"]

FORMAT = "neural_sk.archive"
FORMAT_VERSION = 2
# Versions this reader understands (1: fused graphs and report graphs stored in full).
READABLE_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
META_NAME = "meta.json"
ACCOUNTING = "_nbytes_per_study"
FEATURE_DTYPES = ("float16", "float32", "int8")
PIXEL_FORMATS = ("png", "jpeg")
GRAPH_FIELDS = ("visual_graphs", "report_graphs", "graphs")


def jsonable(value: Any) -> Any:
    """Plain JSON types (tuples become lists, NumPy scalars Python numbers)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
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
            f"{jsonable(info_a if info_b is None else info_b)}; refusing to mix them"
        )
    a, b = jsonable(dict(info_a)), jsonable(dict(info_b))
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


def compact_int(arr: np.ndarray) -> np.ndarray:
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


def encode_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UTF-8 bytes of all strings, their offsets, and each string's byte length."""
    # surrogatepass: any Python str round-trips, even one with lone surrogates.
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return blob, offsets(lengths), lengths


def decode_strings(blob: np.ndarray, ptr: np.ndarray) -> list[str]:
    """The strings :func:`encode_strings` wrote (``ptr``: their offsets)."""
    data = blob.tobytes()
    ptr = ptr.astype(np.int64).tolist()
    return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip(ptr[:-1], ptr[1:])]


def to_numpy(value: Any) -> tuple[np.ndarray, str, bool]:
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


def restore(arr: np.ndarray, dtype: str, torch_: bool) -> Any:
    """The value :func:`to_numpy` took apart: a tensor of ``dtype`` or the array itself."""
    if torch_:
        import torch

        if dtype == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).to(torch.bfloat16)
        return torch.from_numpy(arr)
    return arr


def default_fields(studies: StudySet) -> list[str]:
    """The fields an archive stores when none are named: every filled one, less the
    full ``patch_features`` when the visual graphs hold the kept ones."""
    fields = [f for f in PER_STUDY_FIELDS if getattr(studies, f) is not None]
    if studies.visual_graphs is not None and "patch_features" in fields:
        # The kept patches' features live in the visual graphs: the full [n, P, d] block is
        # what the archive exists to drop.
        fields.remove("patch_features")
    return fields


def lean_fields(studies: StudySet) -> list[str]:
    """The fields an archive of record needs (what ``compress`` stores by default): the
    minimum from which the rest is rebuilt.

    :func:`default_fields`, less the attention map and the report text when the graphs
    carry what a model reads of them: the visual graphs hold each kept patch's features,
    position and attention; the report graphs hold each finding (concept, status, anatomy,
    where the report mentions it). Either can still be stored by naming it.
    """
    fields = default_fields(studies)
    drop = {"errors"}
    if studies.visual_graphs is not None:
        drop.add("attention")
    if studies.report_graphs is not None:
        drop.add("reports")
    return [f for f in fields if f not in drop]


def quantise_int8(flat: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``flat`` (graph ``i`` owns ``counts[i]`` of them) as int8 and one float32 scale
    per graph: ``value ~= q * scale`` with ``|q| <= 127`` and ``scale`` the graph's largest
    magnitude over 127, so every value is within half a step (``scale / 2``)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    peak = np.zeros(len(counts), dtype=np.float64)
    rows = np.abs(flat.reshape(len(flat), -1)).max(axis=1) if flat.size else np.zeros(0)
    np.maximum.at(peak, owner, rows)
    scale = (np.where(peak > 0, peak, 1.0) / 127).astype(np.float32)
    step = scale.astype(np.float64)[owner].reshape(-1, *([1] * (flat.ndim - 1)))
    q = np.clip(np.rint(flat / step), -127, 127).astype(np.int8)
    return q, scale
