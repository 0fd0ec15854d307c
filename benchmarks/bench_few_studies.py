"""Does the default scorer learn from a few hundred studies? Stage-1 AUC and localisation.

Fits ``AttentionScorer(random_state=SEED)`` with default settings (plus any ``--set``
overrides) on N synthetic training studies and scores held-out synthetic studies (other
patients, other seed). Prints one JSON object with, for each configuration:

- auc: stage-1 AUC of the classification head (``predict_proba``) on the held-out studies;
- hit_at_1: share of held-out positives whose top patch touches the lesion (beside chance);
- median_enrichment: mean score on lesion patches / elsewhere, positives (chance = 1);
- fit_s, epochs run, and with a validation split the epoch kept and its validation AUC.

Goal (issue 17): with 160 training studies, hit_at_1 >= 0.6 and auc >= 0.8, while 480 learn
as well as before. The table of what was tried is in ``results/bench_few_studies.json``.

    python benchmarks/bench_few_studies.py [--quick] [--n-train 160] [--set epochs=6 ...]
        [--config schedule=constant]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def evaluate(n_train: int, n_test: int, image_size: int, seed: int, params: dict) -> dict:
    import torch
    from sklearn.metrics import roc_auc_score

    from neural_sk import AttentionScorer
    from neural_sk.datasets import make_synthetic_cxr
    from neural_sk.metrics import enrichment, hit_at_k, hit_at_k_chance, patch_lesion_masks

    X, y = make_synthetic_cxr(n_train, image_size=image_size, random_state=seed)
    X_te, y_te, masks = make_synthetic_cxr(n_test, image_size=image_size,
                                           random_state=seed + 10_000, return_masks=True)
    t = time.perf_counter()
    scorer = AttentionScorer(image_size=image_size, random_state=seed, **params).fit(X, y)
    fit_s = time.perf_counter() - t
    auc = float(roc_auc_score(y_te, scorer.predict_proba(X_te)[:, 1]))
    attention = scorer.set_params(report_source="given").transform(X_te).attention
    lesion = patch_lesion_masks(np.asarray(masks), scorer.grid_shape_)
    pos = y_te == 1
    return {
        "params": params, "n_train": n_train, "n_test": n_test, "image_size": image_size,
        "seed": seed, "auc": round(auc, 3),
        "hit_at_1": round(float(hit_at_k(attention[pos], lesion[pos], k=1)), 3),
        "hit_at_1_chance": round(float(hit_at_k_chance(lesion[pos], k=1)), 3),
        "median_enrichment": round(float(np.nanmedian(enrichment(attention[pos], lesion[pos]))), 2),
        "epochs_run": len(scorer.history_), **_kept_epoch(scorer.history_),
        "final_loss": round(scorer.history_[-1]["loss"], 4) if scorer.history_ else None,
        "final_classification_loss": (round(scorer.history_[-1]["classification"], 4)
                                      if scorer.history_ else None),
        "fit_s": round(fit_s, 1), "torch_threads": torch.get_num_threads(),
    }


def _override_training_config(fields: dict) -> None:
    """Make every fit in this process train with these TrainingConfig fields."""
    import dataclasses

    from neural_sk.models import training

    build = training.TrainingConfig.from_params.__func__
    training.TrainingConfig.from_params = classmethod(
        lambda cls, params: dataclasses.replace(build(cls, params), **fields))


def _kept_epoch(history: list[dict]) -> dict:
    """The epoch early stopping kept (lowest validation loss) and its validation AUC."""
    if not history or "val_loss" not in history[0]:
        return {}
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    return {"kept_epoch": best + 1, "val_auc": round(history[best]["val_auc"], 3),
            "val_loss": round(history[best]["val_loss"], 4)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="128 px and 60 held-out studies instead of 224 px and 200")
    parser.add_argument("--n-train", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="PARAM=VALUE",
                        help="AttentionScorer parameters to override (JSON values)")
    parser.add_argument("--config", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="TrainingConfig fields to override, for ablations of choices that "
                             "are not parameters (e.g. schedule=constant)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    params = {key: _value(value) for key, value in (item.split("=", 1) for item in args.set)}
    if args.config:
        _override_training_config({key: _value(value) for key, value in
                                   (item.split("=", 1) for item in args.config)})
    image_size, n_test = (128, 60) if args.quick else (224, 200)
    row = evaluate(args.n_train, n_test, image_size, args.seed, params)
    result = {
        "benchmark": "bench_few_studies",
        "goal": "n_train=160, default settings: hit_at_1 >= 0.6 and auc >= 0.8",
        **row,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "command": "python benchmarks/bench_few_studies.py" + (" --quick" if args.quick else "")
        + (f" --n-train {args.n_train}" if args.n_train != 160 else "")
        + (" --set " + " ".join(args.set) if args.set else "")
        + (" --config " + " ".join(args.config) if args.config else ""),
    }
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
