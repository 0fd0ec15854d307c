"""Peak memory of one ``AttentionScorer.fit`` epoch on 500 and 3,000 studies: it should be flat.

The studies are written to disk first (PNG files and a CSV of paths, reports and labels, as
a real archive would be). Each size is then fitted in a fresh subprocess (one torch thread,
``num_workers="auto"``), after a warm-up fit on 16 studies that loads the model weights, the
tokenizer and the libraries. Per size it reports:

- ``peak_rss_mib``: the fitting process's resident-set high-water mark during the fit
  (``VmHWM`` reset after the warm-up through ``/proc/self/clear_refs``; ``ru_maxrss``
  where that is not available), and ``baseline_rss_mib``, the resident set just before it;
- ``worker_peak_rss_mib``: the largest DataLoader worker's high-water mark (workers are
  forked from the fitting process, so much of it is shared with it);
- seconds and studies per second.

Flat means ``rss_ratio`` (peak at the largest size / peak at the smallest) near 1; the goal
is <= 1.2. The full run uses the default scorer (EfficientNet-Lite0, whose frozen prefix is
cached in a temporary file, the tiny T5 decoder) at 128 px (224 px takes over an hour on a
busy 2-core machine); ``--quick`` uses tiny Swin (no
prefix cache: pixels are read and augmented every epoch) at 64 px on fewer studies. A full
run also writes the JSON to benchmarks/results/bench_fit_memory.json.

Usage::

    python benchmarks/bench_fit_memory.py [--quick] [--sizes 500 3000]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from _common import emit
from _memory import peak_rss_mib, reset_peak_rss, rss_mib, run_child, write_png_studies

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "bench_fit_memory.json"
FULL = {"vision_model": "efficientnet-lite0", "text_model": "tiny", "image_size": 128,
        "batch_size": 16, "epochs": 1, "max_report_tokens": 32}
QUICK = {"vision_model": "tiny-swin", "text_model": "tiny", "image_size": 64,
         "batch_size": 16, "epochs": 1, "max_report_tokens": 32}


def _workers(params: dict, images: list) -> int | str:
    try:
        from neural_sk.models.loading import resolve_num_workers
    except ImportError:  # code from before the DataLoader path
        return "n/a"
    return resolve_num_workers(params["num_workers"], images, params["batch_size"])


def _child(csv: str, n: str, settings: str) -> dict:
    """Runs in a fresh process: fit one epoch on the first ``n`` studies and measure."""
    import warnings

    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from neural_sk import AttentionScorer

    params = {**json.loads(settings), "random_state": 0, "device": "cpu"}
    if "num_workers" in AttentionScorer().get_params():  # the same script measures older code
        params["num_workers"] = "auto"
    table = pd.read_csv(csv)
    warnings.simplefilter("ignore")  # one epoch: the head-at-chance warning is expected
    warm = table.iloc[:16]
    AttentionScorer(**params).fit(warm[["image", "report"]], warm["label"].to_numpy())
    reset = reset_peak_rss()  # the warm-up does not count
    baseline = rss_mib()
    frame = table.iloc[: int(n)]
    start = time.perf_counter()
    scorer = AttentionScorer(**params).fit(frame[["image", "report"]], frame["label"].to_numpy())
    seconds = time.perf_counter() - start
    peak = peak_rss_mib(reset)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "n_studies": len(frame),
        "num_workers": _workers(params, frame["image"].tolist()),
        "seconds": round(seconds, 2),
        "studies_per_s": round(len(frame) / seconds, 1),
        "baseline_rss_mib": round(baseline, 1) if baseline else None,
        "peak_rss_mib": round(peak, 1),
        "fit_growth_mib": round(peak - baseline, 1) if baseline else None,
        "peak_rss_source": "VmHWM (reset after warm-up)" if reset else "ru_maxrss",
        "worker_peak_rss_mib": round(workers, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 and 360 studies, tiny Swin")
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return {}
    sizes = args.sizes or ([60, 360] if args.quick else [500, 3000])
    settings = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench_fit_memory_") as tmp:
        t0 = time.perf_counter()
        csv = write_png_studies(Path(tmp), max(sizes), settings["image_size"], relative=False)
        prepare = time.perf_counter() - t0
        runs = [run_child([sys.executable, __file__, "--child", str(csv), str(n),
                           json.dumps(settings)], f"{n} studies") for n in sizes]
    small, large = runs[0], runs[-1]
    result = {
        "quick": bool(args.quick),
        "settings": {**settings, "torch_threads": 1, "input": "CSV of PNG paths"},
        "runs": runs,
        "rss_ratio": round(large["peak_rss_mib"] / small["peak_rss_mib"], 3),
        "rss_growth_mib": round(large["peak_rss_mib"] - small["peak_rss_mib"], 1),
        "worker_rss_ratio": round(large["worker_peak_rss_mib"]
                                  / max(small["worker_peak_rss_mib"], 1e-9), 3),
        "studies_ratio": round(large["n_studies"] / small["n_studies"], 1),
        "goal": "rss_ratio <= 1.2",
        "goal_met": large["peak_rss_mib"] / small["peak_rss_mib"] <= 1.2,
        "prepare_seconds": round(prepare, 1),
    }
    out = args.out or (RESULT if not args.quick and args.sizes is None else None)
    return emit("bench_fit_memory", result, argv=argv, out=out)


if __name__ == "__main__":
    main(sys.argv[1:])
