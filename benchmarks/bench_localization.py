"""Does the scorer's attention find the lesion? Localisation of each scoring method and preset.

On the synthetic set with lesion masks, for each encoder preset and seed, one scorer is fitted
(the joint loss of NEURAL) and its held-out studies are scored with every method: the MIL
head's weights, class activation, and the paper's decoder cross-attention. Held-out scores use
reports the fitted decoder *generates*: the study's own report would leak its label into the
selection. For each (preset, method, seed) the JSON gives, each beside its chance level:

- median enrichment (mean score on lesion patches / elsewhere, positives; chance = 1);
- top-5% hit rate (the top 5% of patches touch the lesion) and hit@1;
- probe AUC: a logistic regression on the mean feature of the top-5% patches, against the same
  number of random patches (the control: the label leaks into every patch).

    python benchmarks/bench_localization.py [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _probe_auc(features_tr, att_tr, y_tr, features_te, att_te, y_te, k, rng=None) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pooled(features, att):
        if rng is None:
            idx = np.argsort(-att, axis=1, kind="stable")[:, :k]
        else:
            idx = np.stack([rng.choice(att.shape[1], k, replace=False) for _ in range(len(att))])
        return np.take_along_axis(features, idx[..., None], axis=1).mean(1)

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    clf.fit(pooled(features_tr, att_tr), y_tr)
    return float(roc_auc_score(y_te, clf.predict_proba(pooled(features_te, att_te))[:, 1]))


def evaluate(preset: str, seed: int, n: int, image_size: int, epochs: int) -> list[dict]:
    from sklearn.model_selection import GroupShuffleSplit

    from neural_sk import AttentionScorer
    from neural_sk.datasets import make_synthetic_cxr
    from neural_sk.metrics import (
        enrichment, hit_at_k, hit_at_k_chance, patch_lesion_masks, top_fraction_chance,
        top_fraction_hit_rate,
    )

    X, y, masks = make_synthetic_cxr(n, image_size=image_size, random_state=seed, return_masks=True)
    masks = np.asarray(masks)
    train, test = next(GroupShuffleSplit(1, test_size=1 / 3, random_state=seed)
                       .split(X, y, groups=X["patient_id"]))
    t = time.perf_counter()
    scorer = AttentionScorer(vision_model=preset, image_size=image_size, epochs=epochs,
                             random_state=seed).fit(X.iloc[train], y[train])
    fit_s = time.perf_counter() - t
    rows = []
    for method in ("mil", "cam", "cross_attention"):
        scorer.set_params(method=method, report_source="given")
        tr = scorer.transform(X.iloc[train])
        scorer.set_params(report_source="generated")
        te = scorer.transform(X.iloc[test])
        lesion = patch_lesion_masks(masks[test], te.grid_shape)
        pos = y[test] == 1
        P = te.attention.shape[1]
        k = max(1, int(np.ceil(0.05 * P - 1e-9)))
        rng = np.random.default_rng(seed)
        rows.append({
            "preset": preset, "method": method, "seed": seed,
            "median_enrichment": float(np.nanmedian(enrichment(te.attention[pos], lesion[pos]))),
            "top5_hit_rate": float(top_fraction_hit_rate(te.attention, lesion, fraction=0.05)),
            "top5_hit_chance": float(top_fraction_chance(lesion, fraction=0.05)),
            "hit_at_1": float(hit_at_k(te.attention, lesion, k=1)),
            "hit_at_1_chance": float(hit_at_k_chance(lesion, k=1)),
            "probe_auc_kept": _probe_auc(tr.patch_features, tr.attention, y[train],
                                         te.patch_features, te.attention, y[test], k),
            "probe_auc_random": _probe_auc(tr.patch_features, tr.attention, y[train],
                                           te.patch_features, te.attention, y[test], k, rng=rng),
            "patches_kept": k, "n_patches": P, "fit_s": round(fit_s, 1),
        })
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        configs = [("tiny-swin", 64, 48, 2)]
        seeds = [0]
    else:
        configs = [("efficientnet-lite0", 224, 400, 10), ("tiny-swin", 224, 400, 10)]
        seeds = [0, 1]
    rows = []
    for preset, size, n, epochs in configs:
        for seed in seeds:
            rows.extend(evaluate(preset, seed, n, size, epochs))
    result = {
        "benchmark": "bench_localization",
        "default": "efficientnet-lite0 + mil (the demo's configuration)",
        "goals": "default: hit@1 >= 0.7 and top-5% hit >= 0.95 on both seeds",
        "rows": rows,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu",
        "command": "python benchmarks/bench_localization.py" + (" --quick" if args.quick else ""),
    }
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
