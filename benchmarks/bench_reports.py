"""Benchmark the report reader against the CheXpert labeler on real IU reports.

Runs :func:`neural_sk.text.label_reports` on the ``report`` column (FINDINGS + IMPRESSION)
of the IU chest X-ray reports and compares it with the CheXpert labeler's columns
``chexpert_<observation>`` (binary). The CheXpert labels come from a rule-based labeler, so
this measures agreement, not accuracy.

Which of our values count as positive. The file's README says its 1 means "present or
uncertain", but its columns behave as present-only: among reports whose only findings we
read as hedged ("may represent pneumonia", "possible effusion"), the labeler's own
``no-finding`` column is 1 for most (``evidence`` in the output; it would be 0 if hedged
mentions were positive), and its positive rate among mentions we read as uncertain is low
(``labeler_by_our_status``). So the headline scores (``per_observation``, ``macro_f1``)
count our present (1) as positive; ``present_or_uncertain`` repeats them counting our 1 or
-1, as the README's wording would have it.

Prints one JSON object: per observation precision / recall / F1 / support (labeler
positives), macro F1 over the eight observations, label_reports throughput (reports/s,
one process, after the pipeline is built), n_reports. A full run (no --quick) also writes
the object to benchmarks/results/bench_reports.json.

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

    per_observation, either = {}, {}
    for name in EVALUATED:
        ours = labels[name].to_numpy()
        ref = frame[f"chexpert_{name}"].to_numpy() == 1
        per_observation[name] = _scores(ours == 1.0, ref)
        either[name] = _scores(np.isin(ours, (1.0, -1.0)), ref)
    # How the labeler treats what we read as present / uncertain / absent / unmentioned:
    # its positive rate in each group.
    by_status = {}
    for name in EVALUATED:
        ours = labels[name].to_numpy()
        ref = frame[f"chexpert_{name}"].to_numpy() == 1
        groups = {"present": ours == 1, "uncertain": ours == -1, "absent": ours == 0,
                  "not_mentioned": np.isnan(ours)}
        by_status[name] = {
            key: {"n": int(mask.sum()),
                  "labeler_positive_rate": round(float(ref[mask].mean()), 3) if mask.any()
                  else None}
            for key, mask in groups.items()
        }
    # The labeler's no-finding where our reading has hedged findings only: near 0 if the
    # labeler counted hedged mentions positive, near its rate for clean reports if not.
    findings = [c for c in labels.columns if c not in ("no-finding", "support-devices")]
    values = labels[findings].to_numpy()
    hedged_only = (values == -1).any(axis=1) & ~(values == 1).any(axis=1)
    clean = ~np.isin(values, (1.0, -1.0)).any(axis=1)
    no_finding = frame["chexpert_no-finding"].to_numpy() == 1
    evidence = {
        "labeler_no_finding_rate_when_we_read_only_hedged_findings": {
            "n": int(hedged_only.sum()),
            "rate": round(float(no_finding[hedged_only].mean()), 3) if hedged_only.any()
            else None},
        "labeler_no_finding_rate_when_we_read_no_finding": {
            "n": int(clean.sum()),
            "rate": round(float(no_finding[clean].mean()), 3) if clean.any() else None},
    }
    f1s = [per_observation[name]["f1"] for name in EVALUATED]
    f1s_either = [either[name]["f1"] for name in EVALUATED]
    result = {
        "benchmark": "bench_reports",
        "csv": args.csv.name,
        "quick": bool(args.quick),
        "n_reports": len(reports),
        "text_column": "report (FINDINGS + IMPRESSION)",
        "positive": "ours: present (1); labeler: 1",
        "per_observation": per_observation,
        "macro_f1": round(float(np.mean(f1s)), 4),
        "min_f1": round(float(np.min(f1s)), 4),
        "present_or_uncertain": {
            "positive": "ours: present or uncertain (1 or -1); labeler: 1",
            "per_observation": either,
            "macro_f1": round(float(np.mean(f1s_either)), 4),
            "min_f1": round(float(np.min(f1s_either)), 4),
        },
        "evidence": evidence,
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
