"""``neural-sk compress``: turn an archive of studies into shards of small graphs, exactly once.

:func:`compress` streams the studies of a CSV, a DataFrame or an image folder through a fitted
model (every step of a :func:`~neural_sk.make_neural_pipeline` pipeline except the final
classifier, or a fitted :class:`~neural_sk.AttentionScorer`), batch by batch, and writes:

- shards ``shard-000000.npz``, ``shard-000001.npz`` ... (:func:`neural_sk.io.save_studies`
  files: no pickle, checksummed), shard ``k`` holding input rows
  ``[k * shard_size, (k + 1) * shard_size)``; each is written to a temporary file and renamed;
- ``manifest.json`` (also written atomically): the source of truth. It lists every finished
  shard with its rows, file, study ids and digest, and every study that could not be processed
  with the reason (``on_error="skip"``).

Peak memory holds one batch of images and one shard of kept graphs, whatever the archive's
size. After an interruption (even ``kill -9``), ``resume=True`` skips the shards the manifest
lists and recomputes the others, so every study ends up exactly once: in one shard, or in the
manifest's ``failed`` list. A shard file that the manifest does not list is rewritten.

With ``client=`` (a ``dask.distributed.Client``) the shards are computed on a Dask cluster: the
workers write the shard files (the output folder must be visible to them), the driver alone
writes the manifest, so the exactly-once rule is the same.

Model files are loaded with joblib (that is, pickle): load only models you trust. The archives
written here never need pickle to be read.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import ArchiveError, IncompatibleArchiveError, check_compatible, save_studies
from .io.format import FEATURE_DTYPES, MANIFEST_NAME, PIXEL_FORMATS, default_fields
from .io.manifest import (SHARD_RE, TEMP_RE, Manifest, kept_entries, new_header,
                          read_manifest, shard_entry, shard_name)
from .studies import StudySet, concat_study_sets

__all__ = ["CompressError", "compress", "run_compress_cli"]

# Exceptions that say the machine or the model is broken, not one study: they stop the run.
_FATAL = (MemoryError, RuntimeError, KeyboardInterrupt, SystemExit)


class CompressError(RuntimeError):
    """A study failed under ``on_error="fail"``, or the run cannot go on; the message names it.

    Examples
    --------
    >>> str(CompressError("study 's1' (row 3, image 'a.png') failed: file not found"))
    "study 's1' (row 3, image 'a.png') failed: file not found"
    """


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
class _Chain:
    """The transform steps of a fitted model, set to record (not raise) per-study errors."""

    def __init__(self, steps: list) -> None:
        self.steps = steps

    @property
    def info(self) -> dict | None:
        for step in self.steps:
            info = getattr(step, "info_", None)
            if info is not None:
                return dict(info)
        return None

    def transform(self, X: pd.DataFrame) -> StudySet:
        out: Any = X
        for step in self.steps:
            out = step.transform(out)
        if not isinstance(out, StudySet):
            raise TypeError(f"the model's last transform step returned {type(out).__name__}, "
                            "not a StudySet")
        return out


def _load_model(model: Any) -> tuple[_Chain, dict]:
    """Resolve ``model`` (a joblib path or a fitted object) into its chain of transformers."""
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    described: dict[str, Any] = {"type": None}
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"model file {str(model)!r} does not exist")
        import joblib

        described["path"] = str(path.resolve())
        model = joblib.load(path)
    described["type"] = type(model).__name__
    if isinstance(model, Pipeline):
        steps = [est for _, est in model.steps if est not in (None, "passthrough")]
        if steps and hasattr(steps[-1], "predict"):
            steps = steps[:-1]  # the classifier: the archive keeps what it would consume
    elif hasattr(model, "transform"):
        steps = [model]
    else:
        raise TypeError(f"model must be a fitted Pipeline or transformer (or a joblib file of "
                        f"one), got {type(model).__name__}")
    if not steps:
        raise ValueError("the model has no transform step before its classifier")
    chain = []
    for step in steps:
        check_is_fitted(step)
        step = copy.copy(step)  # shallow: shares the fitted weights, not the caller's params
        params = step.get_params(deep=False) if hasattr(step, "get_params") else {}
        if "on_error" in params:
            step.set_params(on_error="skip")
        if "verbose" in params:
            step.set_params(verbose=0)  # one progress bar, ours
        chain.append(step)
    described["steps"] = [type(s).__name__ for s in chain]
    return _Chain(chain), described


# --------------------------------------------------------------------------------------
# The input
# --------------------------------------------------------------------------------------
_REQUIRED = ("image", "report")


class _Source:
    """Rows of the input, one shard-aligned chunk at a time."""

    def __init__(self, source: Any) -> None:
        self.frame: pd.DataFrame | None = None
        self.csv: Path | None = None
        if isinstance(source, pd.DataFrame):
            self.frame = source
            self.describe = "<DataFrame>"
            columns = list(source.columns)
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                from .datasets.folder import load_image_folder

                self.frame, _ = load_image_folder(path)
                columns = list(self.frame.columns)
            elif path.is_file():
                self.csv = path
                try:
                    columns = list(pd.read_csv(path, nrows=0).columns)
                except Exception as exc:
                    raise ValueError(f"cannot read the input CSV {str(path)!r}: {exc}") from exc
            else:
                raise FileNotFoundError(f"input {str(source)!r} does not exist")
            self.describe = str(path.resolve())
        else:
            raise TypeError("input must be a CSV path, a folder of images or a DataFrame, got "
                            f"{type(source).__name__}")
        missing = [c for c in _REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"input {self.describe} is missing column(s) {missing}; it has "
                             f"{columns} (a CSV needs 'image' paths and 'report' text)")

    def count(self) -> int:
        if self.frame is not None:
            return len(self.frame)
        return sum(len(c) for c in pd.read_csv(self.csv, usecols=["image"], chunksize=65536))

    def chunks(self, shard_size: int) -> Iterator[tuple[int, int, pd.DataFrame]]:
        """(shard index, first row, rows) for each shard, in order."""
        if self.frame is not None:
            for k, start in enumerate(range(0, len(self.frame), shard_size)):
                yield k, start, self.frame.iloc[start:start + shard_size]
            return
        folder = self.csv.parent
        dtypes = {"image": str, "report": str, "study_id": str}
        reader = pd.read_csv(self.csv, chunksize=shard_size, dtype=dtypes)
        start = 0
        for k, chunk in enumerate(reader):
            # Relative image paths are relative to the CSV's folder.
            chunk = chunk.copy()
            chunk["image"] = [p if not isinstance(p, str) or os.path.isabs(p)
                              else os.path.join(folder, p) for p in chunk["image"]]
            yield k, start, chunk
            start += len(chunk)


def _ids(chunk: pd.DataFrame, start: int) -> list:
    if "study_id" not in chunk.columns:
        return list(range(start, start + len(chunk)))
    ids = []
    for j, value in enumerate(chunk["study_id"]):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
            raise CompressError(f"study_id of row {start + j} is empty; every study needs an id "
                                "(or drop the study_id column to use row numbers)")
        ids.append(_json_scalar(value))
    return ids


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return str(value)


def _image_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    return f"<{type(source).__name__}>"


# --------------------------------------------------------------------------------------
# One shard
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Options:
    out: str
    batch_size: int
    on_error: str
    feature_dtype: str
    fields: tuple | None
    pixels: str | None


def _run_batch(chain: _Chain, part: pd.DataFrame) -> tuple[StudySet | None, list]:
    """Transform a batch; returns (the studies that worked, a reason or None per row).

    A batch that raises is split into single studies, so one bad study never costs the
    others; the exception of a single study is its reason.
    """
    try:
        studies = chain.transform(part)
    except _FATAL:
        raise
    except Exception as exc:
        if len(part) == 1:
            return None, [f"{type(exc).__name__}: {exc}"]
        kept, reasons = [], []
        for j in range(len(part)):
            one, why = _run_batch(chain, part.iloc[j:j + 1])
            reasons.extend(why)
            if one is not None:
                kept.append(one)
        return (concat_study_sets(kept) if kept else None), reasons
    if len(studies) != len(part):
        raise CompressError(f"the model returned {len(studies)} studies for {len(part)} rows "
                            f"(rows {part.index[0]!r}..{part.index[-1]!r}); a step dropped "
                            "studies")
    reasons = list(studies.errors) if studies.errors is not None else [None] * len(part)
    ok = np.array([r is None for r in reasons], dtype=bool)
    if not ok.any():
        return None, reasons
    return (studies if ok.all() else studies[ok]), reasons


def _stored(studies: StudySet, fields: tuple | None) -> StudySet:
    """Only the fields the archive keeps (drops the full patch features early)."""
    names = list(fields) if fields is not None else [
        f for f in default_fields(studies) if f != "errors"]
    missing = [f for f in names if getattr(studies, f) is None]
    if missing:
        raise CompressError(f"fields {missing} were asked for, but the model does not produce "
                            f"them (it produces {studies.fields})")
    values = {f: getattr(studies, f) for f in names if f != "ids"}
    return StudySet(ids=studies.ids, grid_shape=studies.grid_shape, info=studies.info, **values)


def _compress_shard(chain: _Chain, k: int, start: int, chunk: pd.DataFrame,
                    opts: _Options) -> dict:
    """Compute one shard, write its file atomically, and return its manifest entry."""
    ids = _ids(chunk, start)
    parts, images, failed = [], [], []
    bs = opts.batch_size
    for b in range(0, len(chunk), bs):
        part = chunk.iloc[b:b + bs]
        part_ids = ids[b:b + bs]
        kept, reasons = _run_batch(chain, part)
        ok = []
        for j, reason in enumerate(reasons):
            if reason is None:
                ok.append(j)
                continue
            record = {"row": start + b + j, "id": part_ids[j],
                      "image": _image_name(part["image"].iloc[j]), "reason": str(reason)}
            if opts.on_error == "fail":
                raise CompressError(f"study {record['id']!r} (row {record['row']}, image "
                                    f"{record['image']!r}) failed: {record['reason']}")
            failed.append(record)
        if kept is not None and ok:
            kept = kept.replace(ids=np.asarray([part_ids[j] for j in ok]))
            parts.append(_stored(kept, opts.fields))
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
                       [_json_scalar(v) for v in shard.ids])


def _shard_task(chain: _Chain, k: int, start: int, chunk: pd.DataFrame, opts: _Options) -> dict:
    """What a Dask worker runs: one shard (its file is written by the worker)."""
    return _compress_shard(chain, k, start, chunk, opts)


# --------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------
def _prepare_out(out: Path, header: dict, resume: bool, info: dict | None) -> dict[int, dict]:
    """Check the output folder and return the finished shards (by index) to keep."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST_NAME
    shard_files = [p.name for p in out.iterdir() if SHARD_RE.match(p.name)]
    if not resume:
        if manifest_path.exists() or shard_files:
            raise FileExistsError(
                f"{str(out)!r} already holds an archive ({MANIFEST_NAME} or shard files); pass "
                "resume=True (--resume) to finish it, or choose an empty folder")
        return {}
    for p in out.iterdir():  # temporary files of an interrupted write
        if TEMP_RE.match(p.name):
            p.unlink(missing_ok=True)
    if not manifest_path.exists():
        return {}  # nothing was recorded: any shard file there is rewritten
    try:
        old = read_manifest(out)
    except ArchiveError as exc:
        raise CompressError(f"cannot resume: {exc}") from exc
    check_compatible(old.get("info"), info,
                     what=f"the archive in {str(out)!r} and the model given now")
    for key in ("shard_size", "feature_dtype", "fields", "pixels", "input"):
        if old.get(key) != header.get(key):
            raise CompressError(
                f"cannot resume {str(out)!r}: it was started with {key}={old.get(key)!r}, now "
                f"{key}={header.get(key)!r}; resume with the same settings or use a new folder")
    return kept_entries(old, out)


# --------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------
def compress(
    input: Any,
    model: Any,
    out: str | os.PathLike,
    *,
    batch_size: int = 32,
    shard_size: int = 256,
    resume: bool = False,
    on_error: str = "skip",
    client: Any = None,
    verbose: int = 1,
    feature_dtype: str = "float16",
    fields: list[str] | None = None,
    pixels: str | None = None,
) -> dict:
    """Compress an archive of studies into checksummed shards and a manifest.

    Parameters
    ----------
    input : str, path-like or DataFrame
        A CSV file with ``image`` (path; relative paths are relative to the CSV's folder) and
        ``report`` columns, a folder of images that
        :func:`neural_sk.datasets.load_image_folder` understands, or a DataFrame with the same
        columns. A ``study_id`` column, when present, gives each study's id; otherwise the id is
        the row number (0-based).
    model : str, path-like or estimator
        A fitted pipeline from :func:`~neural_sk.make_neural_pipeline` (all steps but the final
        classifier are applied) or a fitted :class:`~neural_sk.AttentionScorer`, or a joblib
        file of one. Joblib files are pickles: load only models you trust.
    out : str or path-like
        Output folder: ``shard-*.npz`` files and ``manifest.json``.
    batch_size : int, default=32
        Studies per model call; with the images of one batch, this bounds the memory.
    shard_size : int, default=256
        Input rows per shard; shard ``k`` holds rows ``[k * shard_size, (k + 1) * shard_size)``.
    resume : bool, default=False
        Finish an interrupted run in ``out``: shards the manifest lists are kept, the others
        are computed. Without it, a folder that already holds an archive is an error.
    on_error : {"skip", "fail"}, default="skip"
        A study that cannot be processed (unreadable image, non-text report...) is listed in
        the manifest's ``failed`` with its reason (``"skip"``), or stops the run with a
        :class:`CompressError` naming it (``"fail"``).
    client : dask.distributed.Client, default=None
        Compute shards on this Dask cluster (workers write the shards; ``out`` must be on a
        file system they share with the driver).
    verbose : int, default=1
        Show a progress bar (``tqdm.auto``) when > 0.
    feature_dtype : {"float16", "float32"}, default="float16"
        Storage type of the kept patch features.
    fields : list of str, default=None
        StudySet fields to store; by default everything the model produces except the full
        ``patch_features`` (kept in the visual graphs) and ``errors``.
    pixels : {"png", "jpeg"} or None, default=None
        Also store the image tiles under the kept patches (see :func:`neural_sk.io.save_studies`).

    Returns
    -------
    dict
        The manifest: ``shards`` (index, rows, file, n_studies, ids, failed, bytes, sha256),
        ``failed`` (row, id, image, reason), ``n_rows``, ``n_studies``, ``n_failed``,
        ``bytes``, ``info`` (the scorer's identity), ``complete``.

    Raises
    ------
    CompressError
        A study failed under ``on_error="fail"``, or ``resume`` met different settings.
    IncompatibleArchiveError
        ``resume`` with a model other than the one that started the archive.

    Examples
    --------
    >>> import tempfile
    >>> from neural_sk import AttentionScorer
    >>> from neural_sk.datasets import make_synthetic_cxr
    >>> from neural_sk.io import load_studies
    >>> X, y = make_synthetic_cxr(6, image_size=64, random_state=0)
    >>> scorer = AttentionScorer(vision_model="tiny-swin", text_model=None, image_size=64,
    ...                          epochs=0, random_state=0).fit(X, y)
    >>> out = tempfile.mkdtemp()
    >>> manifest = compress(X, scorer, out, shard_size=4, verbose=0)
    >>> manifest["n_studies"], len(manifest["shards"]), manifest["complete"]
    (6, 2, True)
    >>> load_studies(out).ids.tolist() == X["study_id"].tolist()
    True
    """
    for name, value in (("batch_size", batch_size), ("shard_size", shard_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {FEATURE_DTYPES}, got {feature_dtype!r}")
    if pixels not in (None, *PIXEL_FORMATS):
        raise ValueError(f"pixels must be None, 'png' or 'jpeg', got {pixels!r}")
    chain, model_desc = _load_model(model)
    source = _Source(input)
    out = Path(out)
    opts = _Options(out=str(out), batch_size=int(batch_size), on_error=on_error,
                    feature_dtype=feature_dtype,
                    fields=None if fields is None else tuple(fields), pixels=pixels)
    info = chain.info
    header = new_header(input=source.describe, model=model_desc, info=info,
                        shard_size=int(shard_size), batch_size=int(batch_size),
                        on_error=on_error, feature_dtype=feature_dtype,
                        fields=None if fields is None else list(fields), pixels=pixels)
    entries = _prepare_out(out, header, resume, json.loads(json.dumps(info)))
    manifest = Manifest(out / MANIFEST_NAME, header, entries)
    if not entries and not (out / MANIFEST_NAME).exists():
        manifest.write(claim=True)  # the folder is now claimed by this run

    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=source.count(), desc="compress", unit="study")
    seen: dict[Any, int] = {}
    for entry in entries.values():
        for study in entry["ids"]:
            seen[study] = -1  # done: any later row with this id is a duplicate
        for f in entry["failed"]:
            seen[f["id"]] = f["row"]

    def check_ids(chunk: pd.DataFrame, start: int) -> None:
        for j, study in enumerate(_ids(chunk, start)):
            if study in seen and seen[study] != start + j:
                raise CompressError(f"study id {study!r} appears twice (row {start + j} and an "
                                    "earlier row); study ids must be unique")
            seen[study] = start + j

    n_rows = 0
    try:
        if client is None:
            for k, start, chunk in source.chunks(int(shard_size)):
                n_rows = start + len(chunk)
                if k in entries:
                    if bar is not None:
                        bar.update(len(chunk))
                    continue
                check_ids(chunk, start)
                manifest.add(_compress_shard(chain, k, start, chunk, opts))
                if bar is not None:
                    bar.update(len(chunk))
        else:
            n_rows = _run_on_dask(client, chain, source, int(shard_size), entries, opts,
                                  manifest, bar, check_ids)
    finally:
        if bar is not None:
            bar.close()
        if manifest.dirty:
            manifest.write()
    # Shard files no entry points to (an input that shrank, a run that died mid-write).
    listed = {e["file"] for e in manifest.entries.values() if e.get("file")}
    for p in out.iterdir():
        if SHARD_RE.match(p.name) and p.name not in listed:
            p.unlink(missing_ok=True)
    return manifest.write(complete=True, n_rows=n_rows)


def _run_on_dask(client: Any, chain: _Chain, source: _Source, shard_size: int,
                 entries: Mapping[int, dict], opts: _Options, manifest: Manifest, bar: Any,
                 check_ids: Any) -> int:
    """Submit the missing shards to Dask, a bounded number at a time; returns the row count."""
    from distributed import wait

    workers = len(client.scheduler_info().get("workers", {})) or 1
    limit = 2 * workers
    token = uuid.uuid4().hex[:8]
    chain_future = client.scatter(chain, broadcast=True)
    pending: set = set()
    sizes: dict[Any, int] = {}

    def collect(done: set) -> None:
        for fut in done:
            entry = fut.result()  # re-raises a worker's CompressError here
            manifest.add(entry)
            if bar is not None:
                bar.update(sizes.pop(fut.key, 0))

    n_rows = 0
    try:
        for k, start, chunk in source.chunks(shard_size):
            n_rows = start + len(chunk)
            if k in entries:
                if bar is not None:
                    bar.update(len(chunk))
                continue
            check_ids(chunk, start)
            fut = client.submit(_shard_task, chain_future, k, start, chunk, opts,
                                key=f"neural-sk-shard-{token}-{k}", pure=False)
            sizes[fut.key] = len(chunk)
            pending.add(fut)
            while len(pending) >= limit:
                done, pending = wait(pending, return_when="FIRST_COMPLETED")
                collect(done)
        while pending:
            done, pending = wait(pending, return_when="FIRST_COMPLETED")
            collect(done)
    except BaseException:
        if pending:
            client.cancel(list(pending))
        raise
    return n_rows


def run_compress_cli(args: Any) -> int:
    """Run ``neural-sk compress`` from parsed arguments and print a one-line summary.

    Parameters
    ----------
    args : argparse.Namespace
        ``input``, ``model``, ``out``, ``batch_size``, ``shard_size``, ``resume``,
        ``on_error``, ``scheduler`` (address of a Dask scheduler, or None) and ``verbose``.

    Returns
    -------
    int
        0 on success (failed studies under ``skip`` are listed in the manifest), 1 when the
        run stopped with an error.

    Examples
    --------
    >>> import argparse
    >>> args = argparse.Namespace(input="missing.csv", model="missing.joblib", out="o",
    ...                           batch_size=8, shard_size=64, resume=False, on_error="skip",
    ...                           scheduler=None, verbose=0)
    >>> run_compress_cli(args)  # the error goes to stderr
    1
    """
    import sys

    client = None
    try:
        if getattr(args, "scheduler", None):
            from distributed import Client

            client = Client(args.scheduler)
        manifest = compress(args.input, args.model, args.out, batch_size=args.batch_size,
                            shard_size=args.shard_size, resume=args.resume,
                            on_error=args.on_error, client=client, verbose=args.verbose,
                            feature_dtype=getattr(args, "feature_dtype", "float16"),
                            pixels=getattr(args, "pixels", None))
    except (CompressError, IncompatibleArchiveError, ArchiveError, FileExistsError,
            FileNotFoundError, ValueError, TypeError) as exc:
        print(f"neural-sk compress: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    n_shards = sum(1 for s in manifest["shards"] if s["file"])
    print(f"compressed {manifest['n_studies']} of {manifest['n_rows']} studies into {n_shards} "
          f"shard(s), {manifest['bytes']} bytes, in {args.out}; {manifest['n_failed']} failed"
          + (" (reasons in manifest.json)" if manifest["n_failed"] else ""))
    return 0
