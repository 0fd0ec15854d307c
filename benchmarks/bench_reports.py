"""Benchmark the report reader against the CheXpert labeler, and (``--generation``) the
reports the scorer's decoder writes.

**Reader** (default). 
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

**Generation** (``--generation``). The levers of issue 18 for generated reports, on the
demo's held-out synthetic split (by patient): each training variant (the decoder's
conditioning x epochs) is one scorer fit; each decoding variant re-generates the held-out
reports from that fit. Per row: clinical efficacy (present-finding precision / recall / F1
and macro-F1, :func:`neural_sk.metrics.clinical_efficacy`), location agreement (exact
anatomy label, and by side and level) on all held-out studies and on the positives, the
share of reports that repeat a sentence, mean words per report, and the stage-1 head's
AUC. The findings writer's reports (``report_decoder={"writer": "findings"}``, the default
with the findings head) are rows of the same table. Two reference rows bound the location metric: a writer that names the true zone by
its lobe (``ceiling_lobe_name``) and one that uses the very words of the report's findings
(``ceiling_report_words``). A full run writes benchmarks/results/bench_reports_generation.json.

Usage::

    python benchmarks/bench_reports.py [--quick] [--csv PATH]
    python benchmarks/bench_reports.py --generation [--quick] [--device auto]
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
    parser.add_argument("--quick", action="store_true",
                        help="first 300 reports only; with --generation, a CI-sized run")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="IU reports CSV")
    parser.add_argument("--generation", action="store_true",
                        help="measure the generated reports' levers instead of the reader")
    parser.add_argument("--device", default="auto", help="with --generation: the scorer's")
    parser.add_argument("--jobs", type=int, default=1,
                        help="with --generation: training variants fitted at once (processes)")
    parser.add_argument("--variants", type=lambda t: t.split(","),
                        help="with --generation: training variants, comma-separated")
    parser.add_argument("--decodings", type=lambda t: t.split(","),
                        help=f"with --generation: some of {list(DECODING)}, comma-separated")
    parser.add_argument("--n-samples", type=int, help="with --generation: studies (demo's: 700)")
    parser.add_argument("--image-size", type=int, help="with --generation: pixels (demo's: 224)")
    args = parser.parse_args(argv)
    if args.generation:
        return run_generation(args.quick, args.device, argv, args.jobs, args.n_samples,
                              args.image_size, args.variants, args.decodings)
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


# -- generated reports ----------------------------------------------------------------------
RESULT_GENERATION = ROOT / "benchmarks" / "results" / "bench_reports_generation.json"
# Decoding variants, each applied to every fitted scorer: main's greedy decoding (sentences
# may repeat), then one lever at a time, then beams with n-gram blocking; last, the findings
# writer (no decoding: the findings head's report; only where the scorer has that head).
_DECODER = {"writer": "decoder"}
DECODING = {
    "greedy": {**_DECODER, "no_repeat_sentence": False},
    "greedy_no_repeat_sentence": _DECODER,
    "no_repeat_ngram_3": {**_DECODER, "no_repeat_ngram_size": 3, "no_repeat_sentence": False},
    "repetition_penalty_1.3": {**_DECODER, "repetition_penalty": 1.3,
                               "no_repeat_sentence": False},
    "beam_4": {**_DECODER, "num_beams": 4},
    "beam_4_long": {**_DECODER, "num_beams": 4, "length_penalty": 2.0},
    "beam_4_ngram_3": {**_DECODER, "num_beams": 4, "no_repeat_ngram_size": 3},
    "findings_writer": {"writer": "findings"},
    "findings_writer_0.3": {"writer": "findings", "findings_threshold": 0.3},
}
_WRITER = ("findings_writer", "findings_writer_0.3")


def _efficacy(generated: list[str], reference: list[str], positive: np.ndarray) -> dict:
    from neural_sk.metrics import clinical_efficacy

    ce = clinical_efficacy(generated, reference)
    pos = clinical_efficacy([g for g, p in zip(generated, positive) if p],
                            [r for r, p in zip(reference, positive) if p])
    return {
        "ce_precision": round(ce["precision"], 4), "ce_recall": round(ce["recall"], 4),
        "ce_f1": round(ce["f1"], 4), "ce_macro_f1": round(ce["macro_f1"], 4),
        "pneumonia_f1": round(ce["per_observation"]["pneumonia"]["f1"], 4),
        "location_agreement": round(ce["location_agreement"], 4),
        "location_agreement_side_level": round(ce["location_agreement_side_level"], 4),
        "n_located": ce["n_located"],
        "location_agreement_positives": round(pos["location_agreement"], 4),
        "location_agreement_side_level_positives":
            round(pos["location_agreement_side_level"], 4),
        "n_located_positives": pos["n_located"],
        "repeated_sentence_rate": round(ce["repeated_sentence_rate"], 4),
        "mean_words": round(float(np.mean([len(g.split()) for g in generated])), 1),
    }


def _ceilings(split, reference: list[str]) -> dict:
    """Location metric of writers that state only the lesion, knowing its zone: by its lobe
    name, or in the words the report's findings use."""
    zone, words = split.X_test["lesion_zone"].tolist(), split.X_test["lesion_location"].tolist()
    positive = np.asarray(split.y_test) == 1
    out = {}
    for name, places in (("ceiling_lobe_name", zone), ("ceiling_report_words", words)):
        written = ["No acute cardiopulmonary process." if not pos else
                   f"Airspace opacity and consolidation in the {p}, consistent with pneumonia."
                   for p, pos in zip(places, positive)]
        out[name] = {k: v for k, v in _efficacy(written, reference, positive).items()
                     if k.startswith("location")}
    return out


def _training_variants(quick: bool, epochs: int, names: list[str] | None = None) -> dict:
    """(conditioning, epochs) per training variant; ``names`` picks some (``--variants``)."""
    variants = {"none": ("none", epochs), "head": ("head", epochs),
                "findings": ("findings", epochs), "none_x2_epochs": ("none", 2 * epochs),
                "findings_x2_epochs": ("findings", 2 * epochs),
                "findings_x4_epochs": ("findings", 4 * epochs)}
    if names:
        return {name: variants[name] for name in names}
    if quick:
        return {name: variants[name] for name in ("none", "findings")}
    return {name: variants[name] for name in list(variants)[:5]}


def _training_rows(name: str, conditioning: str, epochs: int, split, settings, quick: bool,
                   device: str, threads: int | None = None,
                   decodings: list[str] | None = None) -> list[dict]:
    """Fit one scorer; one row per decoding variant of its held-out reports."""
    from _common import roc_auc

    from neural_sk import AttentionScorer

    if threads:
        import torch

        torch.set_num_threads(threads)
    s = settings
    reference = split.X_test["report"].tolist()
    positive = np.asarray(split.y_test) == 1
    start = time.perf_counter()
    scorer = AttentionScorer(vision_model=s.vision_model, image_size=s.image_size,
                             epochs=epochs, random_state=s.random_state, device=device,
                             max_report_tokens=48 if quick else 128,
                             report_decoder={"conditioning": conditioning})
    scorer.fit(split.X_train, split.y_train)
    fit_s = time.perf_counter() - start
    head_auc = roc_auc(split.y_test, scorer.predict_proba(split.X_test))
    # The main variants get every decoding; the others the default and the best beam.
    decoding = DECODING if name in ("none", "findings") else {
        k: DECODING[k] for k in ("greedy_no_repeat_sentence", "beam_4", *_WRITER)}
    if decodings:
        decoding = {k: DECODING[k] for k in decodings}
    elif quick:
        decoding = {k: DECODING[k] for k in ("greedy", "greedy_no_repeat_sentence", *_WRITER)}
    if conditioning != "findings":  # the writer needs the findings head
        decoding = {k: v for k, v in decoding.items() if k not in _WRITER}
    rows = []
    for dec_name, options in decoding.items():
        # Inference batches only (the fit used the demo's 16): fewer decoding steps to run.
        scorer.set_params(report_decoder={"conditioning": conditioning, **options},
                          batch_size=64)
        start = time.perf_counter()
        generated = scorer.generate_reports(split.X_test)
        rows.append({"training": name, "conditioning": conditioning, "epochs": epochs,
                     "decoding": dec_name, "options": options,
                     **_efficacy(generated, reference, positive),
                     "head_auc": round(head_auc, 4), "fit_s": round(fit_s, 1),
                     "generate_s": round(time.perf_counter() - start, 1),
                     "example_positive": generated[int(np.flatnonzero(positive)[0])]})
    return rows


def run_generation(quick: bool, device: str, argv: list[str] | None, jobs: int = 1,
                   n_samples: int | None = None, image_size: int | None = None,
                   variants: list[str] | None = None, decodings: list[str] | None = None) -> dict:
    """Fit one scorer per training variant (``jobs`` at a time, each in its own process);
    score every decoding variant's reports. The demo's settings unless overridden."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import emit

    from neural_sk.demo import DemoSettings, held_out_split

    s = DemoSettings.quick() if quick else DemoSettings()
    s.n_samples, s.image_size = n_samples or s.n_samples, image_size or s.image_size
    split = held_out_split(s.n_samples, image_size=s.image_size, test_size=s.test_size,
                           random_state=s.random_state)
    reference = split.X_test["report"].tolist()
    positive = np.asarray(split.y_test) == 1
    variants = _training_variants(quick, s.epochs, variants)
    if jobs > 1:
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_training_rows, name, cond, epochs, split, s, quick, device,
                                   threads, decodings) for name, (cond, epochs) in variants.items()]
            rows = []
            for future in as_completed(futures):  # each variant's rows as soon as it is done
                rows.extend(future.result())
                print(json.dumps(future.result()), file=sys.stderr, flush=True)
    else:
        rows = [row for name, (cond, epochs) in variants.items()
                for row in _training_rows(name, cond, epochs, split, s, quick, device,
                                          decodings=decodings)]
    result = {"quick": quick, "n_train": len(split.X_train), "n_test": len(split.X_test),
              "n_test_positive": int(positive.sum()), "vision_model": s.vision_model,
              "image_size": s.image_size, "reference_rows": _ceilings(split, reference),
              "rows": rows}
    demo_sized = (not quick and n_samples in (None, 700) and image_size in (None, 224)
                  and not variants and not decodings)
    return emit("bench_reports_generation", result, argv=argv,
                out=RESULT_GENERATION if demo_sized else None)


if __name__ == "__main__":
    main(sys.argv[1:])
