"""Benchmark the report reader against the CheXpert labeler on real IU reports.

Runs :func:`neural_sk.text.label_reports` on the ``report`` column (FINDINGS + IMPRESSION)
of the IU chest X-ray reports and compares it with the CheXpert labeler's columns
``chexpert_<observation>``. Both sides are binarised the same way: mentioned as present or
uncertain (1 or -1) is positive; absent or not mentioned (0 or NaN) is negative. The
CheXpert labels come from a rule-based labeler, so this measures agreement, not accuracy.

Prints one JSON object: per observation precision / recall / F1 / support (labeler
positives), macro F1 over the eight observations, label_reports throughput (reports/s,
one process, after the pipeline is built), n_reports. ``present_only`` repeats the scores
counting only our present (1) as positive: the labeler columns in this file mark hedged
mentions ("possible pneumonia") 0, see ``labeler_by_our_status`` (the labeler's positive
rate among reports we read as present, uncertain, absent or not mentioned). A full run (no
--quick) also writes the object to benchmarks/results/bench_reports.json.

Usage::

    python benchmarks/bench_reports.py [--quick] [--csv PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "iu_reports" / "reports_train.csv"
RESULT = ROOT / "benchmarks" / "results" / "bench_reports.json"
EVALUATED = ("pneumonia", "consolidation", "lung-opacity", "pleural-effusion", "atelectasis",
             "cardiomegaly", "edema", "pneumothorax")


def _scores(pred: np.ndarray, ref: np.ndarray) -> dict[str, float | int]:
    tp = int(np.sum(pred & ref))
    fp = int(np.sum(pred & ~ref))
    fn = int(np.sum(~pred & ref))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "support": int(ref.sum()), "tp": tp, "fp": fp, "fn": fn}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 300 reports only")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="IU reports CSV")
    args = parser.parse_args(argv)
    if not args.csv.exists():
        parser.error(f"reports not found at {args.csv}; pass --csv PATH")

    from neural_sk.text import label_reports

    frame = pd.read_csv(args.csv)
    if args.quick:
        frame = frame.iloc[:300]
    reports = frame["report"].fillna("").tolist()

    label_reports(reports[:8])  # build the spaCy pipeline and matchers outside the timing
    start = time.perf_counter()
    labels = label_reports(reports)
    elapsed = time.perf_counter() - start

    per_observation, present_only = {}, {}
    for name in EVALUATED:
        ours = labels[name].to_numpy()
        ref = np.isin(frame[f"chexpert_{name}"].to_numpy(), (1, -1))
        per_observation[name] = _scores(np.isin(ours, (1.0, -1.0)), ref)
        present_only[name] = _scores(ours == 1.0, ref)
    # How the labeler treats what we read as present / uncertain / absent / unmentioned:
    # its positive rate in each group (the README says it marks uncertain mentions 1).
    by_status = {}
    for name in EVALUATED:
        ours = labels[name].to_numpy()
        ref = np.isin(frame[f"chexpert_{name}"].to_numpy(), (1, -1))
        groups = {"present": ours == 1, "uncertain": ours == -1, "absent": ours == 0,
                  "not_mentioned": np.isnan(ours)}
        by_status[name] = {
            key: {"n": int(mask.sum()),
                  "labeler_positive_rate": round(float(ref[mask].mean()), 3) if mask.any()
                  else None}
            for key, mask in groups.items()
        }
    f1s = [per_observation[name]["f1"] for name in EVALUATED]
    f1s_present = [present_only[name]["f1"] for name in EVALUATED]
    result = {
        "benchmark": "bench_reports",
        "csv": args.csv.name,
        "quick": bool(args.quick),
        "n_reports": len(reports),
        "text_column": "report (FINDINGS + IMPRESSION)",
        "positive": "present or uncertain (1 or -1), both sides",
        "per_observation": per_observation,
        "macro_f1": round(float(np.mean(f1s)), 4),
        "min_f1": round(float(np.min(f1s)), 4),
        "present_only": {
            "positive": "ours: present (1) only; labeler: 1 or -1 as above",
            "per_observation": present_only,
            "macro_f1": round(float(np.mean(f1s_present)), 4),
            "min_f1": round(float(np.min(f1s_present)), 4),
        },
        "labeler_by_our_status": by_status,
        "reports_per_s": round(len(reports) / elapsed, 1),
        "seconds": round(elapsed, 3),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
                   f"{platform.python_version()}",
    }
    print(json.dumps(result, indent=2))
    if not args.quick:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
