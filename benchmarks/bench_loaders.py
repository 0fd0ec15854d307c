"""Indexing a MIMIC-CXR tree: our one-walk index versus the public NEURAL code's per-study scan.

Writes a MIMIC-CXR-layout tree (``files/pXX/pNNNNNNNN/sNNNNNNNN/<dicom_id>.dcm`` as empty
placeholders, ``sNNNNNNNN.txt`` reports of one short paragraph each, the CheXpert label CSV and the
metadata CSV) in a temporary folder at two sizes, then times:

* ours: ``load_mimic_cxr(root)`` end to end (one walk of the tree, CSV merges, frontal-view choice,
  reading and sectioning every report: ``ratio``), and ``index_mimic_tree`` (the walk) alone
  against the public code's glob + file lookups alone (``index_ratio``);
* the public code (basiralab/NEURAL ``src/datasets.py``, ``load_data_stage1``), re-implemented
  faithfully minus the image decoding: ``glob`` every ``*.txt`` into a dict by file name, ``glob``
  every ``*.dcm`` into a list, then for each study of the CSV
  ``next((p for p in all_images if f"/s{study_id}/" in p), None)`` (a scan of the whole list), read
  the report and cut its IMPRESSION with the same regular expression. The loop is timed on every
  study, or on a random subset of ``--scan-budget`` studies and extrapolated to all of them when
  the tree is larger; the JSON says so (``baseline_scan_extrapolated``).

Prints one JSON object; ``--quick`` uses 500 and 2,000 studies instead of 5,000 and 20,000.
The last full run is kept in ``benchmarks/results/bench_loaders.json`` (``--out``).

Usage::

    python benchmarks/bench_loaders.py [--quick] [--out benchmarks/results/bench_loaders.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from neural_sk.datasets.mimic import index_mimic_tree, load_mimic_cxr

STUDIES_PER_PATIENT = 3  # MIMIC-CXR: 227,835 studies of 65,379 patients (about 3.5)
REPORT = ("                                 FINAL REPORT\n EXAMINATION:  CHEST (PA AND LAT)\n\n"
          " INDICATION:  ___ with cough\n\n FINDINGS:\n\n PA and lateral views of the chest. "
          "{finding}\n\n IMPRESSION:\n\n {impression}\n")


def write_tree(root: Path, n_studies: int, seed: int = 0) -> dict:
    """A MIMIC-CXR tree of ``n_studies``: two thirds PA + LATERAL, one third AP only (about 1.67
    images per study, as in MIMIC-CXR), empty image files, short reports, label and metadata CSVs."""
    rng = np.random.default_rng(seed)
    meta, labels = [], []
    n_images = 0
    for k in range(n_studies):
        patient = k // STUDIES_PER_PATIENT
        # Spread patients over the p10..p19 groups as the real ids are.
        subject = 10_000_000 + (patient % 10) * 1_000_000 + patient // 10
        study = 50_000_000 + k
        pdir = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}"
        sdir = pdir / f"s{study}"
        sdir.mkdir(parents=True, exist_ok=True)
        views = ("PA", "LATERAL") if k % 3 else ("AP",)
        for j, view in enumerate(views):
            dicom_id = f"{k:08x}-{j:08x}-{subject:08x}-{study:08x}"
            open(sdir / f"{dicom_id}.dcm", "wb").close()
            meta.append((dicom_id, subject, study, view))
            n_images += 1
        positive = bool(rng.random() < 0.3)
        (pdir / f"s{study}.txt").write_text(REPORT.format(
            finding="Right lower lobe consolidation." if positive else "The lungs are clear.",
            impression="Right lower lobe pneumonia." if positive else "No acute process."))
        labels.append((subject, study, 1.0 if positive else 0.0))
    pd.DataFrame(meta, columns=["dicom_id", "subject_id", "study_id", "ViewPosition"]).to_csv(
        root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    pd.DataFrame(labels, columns=["subject_id", "study_id", "Pneumonia"]).to_csv(
        root / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False)
    return {"n_studies": n_studies, "n_images": n_images}


# -- the public code's lookup, re-implemented (basiralab/NEURAL src/datasets.py, src/utils.py) --

def _public_extract_impression(text: str) -> str:
    match = re.search(r"IMPRESSION:\s*(.*?)(?=\n[A-Z\s]+:|$)", text, re.IGNORECASE | re.DOTALL)
    return match.group(1).strip() if match else text.strip()


def public_glob(root: Path) -> tuple[dict[str, str], list[str]]:
    all_reports = {os.path.basename(p): p
                   for p in glob.glob(os.path.join(root, "**", "*.txt"), recursive=True)}
    all_images = glob.glob(os.path.join(root, "**", "*.dcm"), recursive=True)
    return all_reports, all_images


def public_per_study(df: pd.DataFrame, all_reports: dict[str, str],
                     all_images: list[str]) -> tuple[int, float]:
    """The public loop; returns the studies found and the seconds spent in the file lookup
    alone (the dict get and the scan of the image list), timed around those two lines."""
    found, lookup_s = 0, 0.0
    clock = time.perf_counter
    for _, row in df.iterrows():
        study_id = str(int(row["study_id"]))
        t0 = clock()
        report_path = all_reports.get(f"s{study_id}.txt")
        image_path = next((p for p in all_images if f"/s{study_id}/" in p), None)
        lookup_s += clock() - t0
        if report_path and image_path:
            with open(report_path, encoding="utf-8") as fh:
                _public_extract_impression(fh.read())
            found += 1
    return found, lookup_s


def bench_size(n_studies: int, *, repeats: int, scan_budget: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_loaders_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        info = write_tree(root, n_studies, seed=seed)
        write_s = time.perf_counter() - t0

        ours, ours_index = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            index_mimic_tree(root / "files")
            ours_index.append(time.perf_counter() - t0)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # nothing may be dropped in this tree
                t0 = time.perf_counter()
                X, y = load_mimic_cxr(root)
                ours.append(time.perf_counter() - t0)
        assert len(X) == n_studies, (len(X), n_studies)
        assert set(X["view"]) <= {"PA", "AP"}

        # The public code: CSV order of the study list, as its loop reads it.
        df = pd.read_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz")
        t0 = time.perf_counter()
        all_reports, all_images = public_glob(root)
        glob_s = time.perf_counter() - t0
        assert len(all_images) == info["n_images"]
        if n_studies <= scan_budget:
            subset = df
        else:
            rows = sorted(random.Random(seed).sample(range(n_studies), scan_budget))
            subset = df.iloc[rows]
        t0 = time.perf_counter()
        found, lookup_s = public_per_study(subset, all_reports, all_images)
        scan_s = time.perf_counter() - t0
        assert found == len(subset)
    per_study_scan = scan_s / len(subset)
    baseline_s = glob_s + per_study_scan * n_studies
    baseline_index_s = glob_s + lookup_s / len(subset) * n_studies
    ours_s = float(np.median(ours))
    ours_index_s = float(np.median(ours_index))
    return {
        "n_studies": n_studies,
        "n_images": info["n_images"],
        "write_tree_s": round(write_s, 3),
        "ours_s": round(ours_s, 4),
        "ours_runs_s": [round(t, 4) for t in ours],
        "ours_index_s": round(ours_index_s, 4),
        "ours_s_per_study": ours_s / n_studies,
        "baseline_glob_s": round(glob_s, 4),
        "baseline_scan_s_per_study": per_study_scan,
        "baseline_scan_measured_on": len(subset),
        "baseline_scan_extrapolated": len(subset) < n_studies,
        "baseline_s": round(baseline_s, 3),
        "baseline_s_per_study": baseline_s / n_studies,
        "ratio": round(baseline_s / ours_s, 2),
        # File lookup only: the public glob + per-study dict get and list scan, versus our walk.
        "baseline_index_s": round(baseline_index_s, 3),
        "index_ratio": round(baseline_index_s / ours_index_s, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 and 2,000 studies")
    parser.add_argument("--sizes", type=int, nargs="+", help="tree sizes (studies)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per size (median)")
    parser.add_argument("--scan-budget", type=int, default=20000,
                        help="studies the public per-study scan is timed on (then extrapolated)")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([500, 2000] if args.quick else [5000, 20000])
    results = [bench_size(n, repeats=args.repeats, scan_budget=args.scan_budget, seed=0)
               for n in sorted(sizes)]
    small, large = results[0], results[-1]
    out = {
        "benchmark": "bench_loaders",
        "what": "index a MIMIC-CXR tree and join labels/views/reports: load_mimic_cxr (one walk "
                "+ merges) vs the public NEURAL per-study scan of the image list",
        "quick": args.quick,
        "sizes": [r["n_studies"] for r in results],
        "results": results,
        "ratio": large["ratio"],
        "ratio_at_n_studies": large["n_studies"],
        "index_ratio": large["index_ratio"],
        # Seconds per study at the large size over the small one: ~1 for linear, ~n_large/n_small
        # for quadratic.
        "ours_per_study_growth": round(large["ours_s_per_study"] / small["ours_s_per_study"], 2),
        "baseline_per_study_growth": round(
            large["baseline_s_per_study"] / small["baseline_s_per_study"], 2),
        "size_growth": round(large["n_studies"] / small["n_studies"], 2),
        "baseline_extrapolated": any(r["baseline_scan_extrapolated"] for r in results),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "command": "python benchmarks/bench_loaders.py" + (" --quick" if args.quick else ""),
    }
    text = json.dumps(out, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
