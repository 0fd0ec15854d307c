"""One shard of a compress run: its rows through the model, written as one archive file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import save_studies
from ..io.format import lean_fields
from ..io.manifest import shard_entry, shard_name
from ..studies import StudySet, concat_study_sets
from .errors import CompressError
from .model import Chain, run_batch
from .source import image_name, json_scalar, study_ids

__all__ = ["Options", "compress_shard", "shard_task"]


@dataclass(frozen=True)
class Options:
    out: str
    batch_size: int
    on_error: str
    feature_dtype: str
    fields: tuple | None
    pixels: str | None


def stored_fields(studies: StudySet, fields: tuple | None) -> StudySet:
    """Only the fields the archive keeps (drops the full patch features early)."""
    names = list(fields) if fields is not None else lean_fields(studies)
    missing = [f for f in names if getattr(studies, f) is None]
    if missing:
        raise CompressError(f"fields {missing} were asked for, but the model does not produce "
                            f"them (it produces {studies.fields})")
    values = {f: getattr(studies, f) for f in names if f != "ids"}
    return StudySet(ids=studies.ids, grid_shape=studies.grid_shape, info=studies.info, **values)


def compress_shard(chain: Chain, k: int, start: int, chunk: pd.DataFrame,
                    opts: Options) -> dict:
    """Compute one shard, write its file atomically, and return its manifest entry."""
    ids = study_ids(chunk, start)
    parts, images, failed = [], [], []
    bs = opts.batch_size
    for b in range(0, len(chunk), bs):
        part = chunk.iloc[b:b + bs]
        part_ids = ids[b:b + bs]
        kept, reasons = run_batch(chain, part)
        ok = []
        for j, reason in enumerate(reasons):
            if reason is None:
                ok.append(j)
                continue
            record = {"row": start + b + j, "id": part_ids[j],
                      "image": image_name(part["image"].iloc[j]), "reason": str(reason)}
            if opts.on_error == "fail":
                raise CompressError(f"study {record['id']!r} (row {record['row']}, image "
                                    f"{record['image']!r}) failed: {record['reason']}")
            failed.append(record)
        if kept is not None and ok:
            kept = kept.replace(ids=np.asarray([part_ids[j] for j in ok]))
            parts.append(stored_fields(kept, opts.fields))
            if opts.pixels is not None:
                images.extend(part["image"].iloc[j] for j in ok)
    if not parts:
        return shard_entry(k, (start, start + len(chunk)), failed)
    shard = concat_study_sets(parts)
    written = save_studies(Path(opts.out) / shard_name(k), shard,
                           feature_dtype=opts.feature_dtype,
                           fields=[f for f in shard.fields if f not in ("grid_shape", "info")],
                           images=images if opts.pixels else None, pixels=opts.pixels)
    return shard_entry(k, (start, start + len(chunk)), failed, written,
                       [json_scalar(v) for v in shard.ids])


def shard_task(chain: Chain, k: int, start: int, chunk: pd.DataFrame, opts: Options) -> dict:
    """What a Dask worker runs: one shard (its file is written by the worker)."""
    return compress_shard(chain, k, start, chunk, opts)
