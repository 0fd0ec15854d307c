"""The compress job: the output folder, the loop over shards (local or on Dask), the CLI."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import ArchiveError, IncompatibleArchiveError, check_compatible
from ..io.format import FEATURE_DTYPES, MANIFEST_NAME, PIXEL_FORMATS
from ..io.manifest import (SHARD_RE, TEMP_RE, Manifest, kept_entries, new_header,
                           read_manifest)
from .errors import CompressError
from .lock import locked
from .model import Chain, load_model
from .shard import Options, compress_shard, shard_task
from .source import Source, study_ids

__all__ = ["compress", "run_compress_cli"]


def _prepare_out(out: Path, header: dict, resume: bool, info: dict | None) -> dict[int, dict]:
    """Check the output folder (locked by this run) and return the finished shards (by
    index) to keep."""
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
    device: str | None = None,
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
        Output folder: ``shard-*.npz`` files and ``manifest.json``. While the run lasts it
        also holds ``compress.lock`` (the run's pid and host): a second run on the same
        folder is refused while this one is alive.
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
    feature_dtype : {"float16", "float32", "int8"}, default="float16"
        Storage type of the kept patch features (``"int8"``: quantised with one scale per
        study, about half the bytes of float16; lossy).
    fields : list of str, default=None
        StudySet fields to store (``ids`` always are). By default the minimum from which the
        rest is rebuilt: the visual graphs (kept patches' features, positions, attention),
        the report graphs (each finding as a code into a vocabulary stored once), and the
        keep mask and fused graphs, which cost nothing as they are rebuilt on load. The
        full attention map and the report text are left out when the graphs hold what is
        read of them: name them (e.g. ``fields=["visual_graphs", "report_graphs", "graphs",
        "keep_mask", "attention", "reports"]``) to keep them.
    pixels : {"png", "jpeg"} or None, default=None
        Also store the image tiles under the kept patches (see :func:`neural_sk.io.save_studies`).
    device : str or None, default=None
        Device for the model's steps (``"cpu"``, ``"cuda"``, ``"auto"``...); None keeps the
        device each step was saved with. Checked before anything is written.

    Returns
    -------
    dict
        The manifest: ``shards`` (index, rows, file, n_studies, ids, failed, bytes, sha256),
        ``failed`` (row, id, image, reason), ``n_rows``, ``n_studies``, ``n_failed``,
        ``bytes``, ``info`` (the scorer's identity), ``complete``.

    Raises
    ------
    CompressError
        A study failed under ``on_error="fail"``, ``resume`` met different settings, ``out``
        is a file, another live compress run holds ``out``, or the model asks for a device
        this machine lacks (raised before any shard is written).
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
    chain, model_desc = load_model(model, device=device)
    source = Source(input)
    out = Path(out)
    opts = Options(out=str(out), batch_size=int(batch_size), on_error=on_error,
                    feature_dtype=feature_dtype,
                    fields=None if fields is None else tuple(fields), pixels=pixels)
    info = chain.info
    header = new_header(input=source.describe, model=model_desc, info=info,
                        shard_size=int(shard_size), batch_size=int(batch_size),
                        on_error=on_error, feature_dtype=feature_dtype,
                        fields=None if fields is None else list(fields), pixels=pixels)
    if out.exists() and not out.is_dir():
        raise CompressError(f"out {str(out)!r} is a file; give a folder (it is created when "
                            "missing)")
    out.mkdir(parents=True, exist_ok=True)
    with locked(out):
        entries = _prepare_out(out, header, resume, json.loads(json.dumps(info)))
        manifest = Manifest(out / MANIFEST_NAME, header, entries)
        return _run(chain, source, int(shard_size), manifest, opts, client, verbose)


def _run(chain: Chain, source: Source, shard_size: int, manifest: Manifest, opts: Options,
         client: Any, verbose: int) -> dict:
    """Compute the shards the manifest lacks, then mark it complete."""
    out, entries = Path(opts.out), dict(manifest.entries)
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
        for j, study in enumerate(study_ids(chunk, start)):
            if study in seen and seen[study] != start + j:
                raise CompressError(f"study id {study!r} appears twice (row {start + j} and an "
                                    "earlier row); study ids must be unique")
            seen[study] = start + j

    n_rows = 0
    try:
        if client is None:
            for k, start, chunk in source.chunks(shard_size):
                n_rows = start + len(chunk)
                if k in entries:
                    if bar is not None:
                        bar.update(len(chunk))
                    continue
                check_ids(chunk, start)
                manifest.add(compress_shard(chain, k, start, chunk, opts))
                if bar is not None:
                    bar.update(len(chunk))
        else:
            n_rows = _run_on_dask(client, chain, source, shard_size, entries, opts,
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


def _run_on_dask(client: Any, chain: Chain, source: Source, shard_size: int,
                 entries: Mapping[int, dict], opts: Options, manifest: Manifest, bar: Any,
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
            fut = client.submit(shard_task, chain_future, k, start, chunk, opts,
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
        0 when every study was archived; 3 when some studies failed (each is listed with
        its reason in the manifest's ``failed``); 1 when the run stopped with an error
        (configuration, model, input, or a study under ``--on-error fail``). Usage errors
        exit with 2 from the argument parser.

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
                            fields=getattr(args, "fields", None),
                            pixels=getattr(args, "pixels", None),
                            device=getattr(args, "device", None))
    except (CompressError, IncompatibleArchiveError, ArchiveError, FileExistsError,
            FileNotFoundError, ValueError, TypeError) as exc:
        print(f"neural-sk compress: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
    n_shards = sum(1 for s in manifest["shards"] if s["file"])
    per_study = manifest["bytes"] / max(manifest["n_studies"], 1)
    print(f"compressed {manifest['n_studies']} of {manifest['n_rows']} studies into {n_shards} "
          f"shard(s), {manifest['bytes']} bytes ({per_study:,.0f} per study), in {args.out}; "
          f"{manifest['n_failed']} failed"
          + (" (reasons in manifest.json)" if manifest["n_failed"] else ""))
    return 3 if manifest["n_failed"] else 0
