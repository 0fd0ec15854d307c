"""Peak memory of ``neural_sk.compress`` on 1,000 and 5,000 synthetic studies: it should be flat.

The studies are written to disk first (64-px PNG files and a CSV of paths and reports, as a
real archive would be), and a tiny pipeline is fitted once (tiny Swin, tiny T5, one epoch).
Each size is then compressed in a fresh subprocess (batch 32, shard 256, one torch thread),
after a warm-up on 8 studies that loads the model, spaCy and the tokenizer. Per size it reports:

- ``peak_rss_mib``: the process's resident-set high-water mark during the run (``VmHWM``
  reset after the warm-up through ``/proc/self/clear_refs``; ``ru_maxrss`` where that is not
  available), and ``baseline_rss_mib``, the resident set just before it;
- ``tracemalloc_peak_mib``: the peak of Python and NumPy allocations during the run (torch's
  own allocator is not traced);
- seconds, studies per second, shards, archive bytes and bytes per study.

Flat means ``peak_rss_mib`` and ``tracemalloc_peak_mib`` do not grow with the number of
studies (``rss_ratio`` near 1). A full run also writes the JSON to
benchmarks/results/bench_compress_memory.json.

Usage::

    python benchmarks/bench_compress_memory.py [--quick] [--sizes 1000 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from _memory import peak_rss_mib, reset_peak_rss, rss_mib, run_child, write_png_studies

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "bench_compress_memory.json"
IMAGE_SIZE = 64


def _child(csv: str, model: str, out: str, warmup_csv: str) -> dict:
    """Runs in a fresh process: compress one CSV and measure."""
    import tracemalloc

    import joblib
    import torch

    torch.set_num_threads(1)
    from neural_sk.compress import compress

    pipe = joblib.load(model)
    compress(warmup_csv, pipe, out + "-warmup", verbose=0)
    reset = reset_peak_rss()  # the warm-up does not count
    baseline = rss_mib()
    tracemalloc.start()
    start = time.perf_counter()
    manifest = compress(csv, pipe, out, batch_size=32, shard_size=256, verbose=0)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = peak_rss_mib(reset)
    return {
        "n_studies": manifest["n_rows"],
        "n_compressed": manifest["n_studies"],
        "n_failed": manifest["n_failed"],
        "shards": len(manifest["shards"]),
        "seconds": round(seconds, 2),
        "studies_per_s": round(manifest["n_rows"] / seconds, 1),
        "baseline_rss_mib": round(baseline, 1) if baseline else None,
        "peak_rss_mib": round(peak, 1),
        "peak_rss_source": "VmHWM (reset after warm-up)" if reset else "ru_maxrss",
        "tracemalloc_peak_mib": round(traced_peak / 2**20, 2),
        "archive_bytes": manifest["bytes"],
        "bytes_per_study": round(manifest["bytes"] / max(manifest["n_studies"], 1), 1),
    }


def _fit_model(path: Path) -> None:
    import warnings

    import joblib

    from neural_sk import make_neural_pipeline
    from neural_sk.datasets import make_synthetic_cxr

    X, y = make_synthetic_cxr(24, image_size=IMAGE_SIZE, random_state=0)
    pipe = make_neural_pipeline(
        scorer__vision_model="tiny-swin", scorer__text_model="tiny",
        scorer__image_size=IMAGE_SIZE, scorer__epochs=1, scorer__random_state=0,
        pruner__keep_ratio=0.25, gnn__epochs=1, gnn__random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    joblib.dump(pipe, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 studies")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return {}
    sizes = args.sizes or ([200, 1000] if args.quick else [1000, 5000])

    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="bench_compress_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        model = tmp / "model.joblib"
        _fit_model(model)
        full = write_png_studies(tmp / "data", max(sizes), IMAGE_SIZE, relative=True)
        table = pd.read_csv(full)
        csvs = {}
        for n in sorted(set(sizes) | {8}):
            csvs[n] = tmp / "data" / f"studies_{n}.csv"
            table.iloc[:n].to_csv(csvs[n], index=False)
        prepare = time.perf_counter() - t0
        runs = [run_child([sys.executable, __file__, "--child", str(csvs[n]), str(model),
                           str(tmp / f"out_{n}"), str(csvs[8])], f"{n} studies") for n in sizes]
    small, large = runs[0], runs[-1]
    result = {
        "benchmark": "bench_compress_memory",
        "command": "python benchmarks/bench_compress_memory.py" + (" --quick" if args.quick
                                                                  else ""),
        "quick": bool(args.quick),
        "settings": {"image_size": IMAGE_SIZE, "vision_model": "tiny-swin",
                     "text_model": "tiny", "batch_size": 32, "shard_size": 256,
                     "keep_ratio": 0.25, "torch_threads": 1, "input": "CSV of PNG paths"},
        "runs": runs,
        "rss_ratio": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3),
        "rss_growth_mib": round(large["peak_rss_mib"] - small["peak_rss_mib"], 1),
        "tracemalloc_ratio": round(large["tracemalloc_peak_mib"]
                                   / max(small["tracemalloc_peak_mib"], 1e-9), 3),
        "studies_ratio": round(large["n_studies"] / small["n_studies"], 1),
        "prepare_seconds": round(prepare, 1),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
                   f"{platform.python_version()}, {os.cpu_count()} CPUs",
    }
    print(json.dumps(result, indent=2))
    if not args.quick and args.sizes is None:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
