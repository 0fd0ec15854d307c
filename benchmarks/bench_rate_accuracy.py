"""Rate against accuracy, in bytes: NEURAL's kept graphs beside lossy codecs and the full image.

On the synthetic set with a held-out split grouped by patient, AUC against bytes per study for:

- NEURAL visual-only and fused graphs at several keep ratios (bytes of the kept graph stored
  at float16, as :mod:`neural_sk.io` stores it);
- the same keep ratios with random patches instead of attention-ranked ones (the control);
- JPEG, JPEG 2000 and WebP at several qualities, each through the full-image classifier;
- the uncompressed full-image classifier (bytes: the image as PNG);
- the ablation visual-only / report-only / fused, with generated reports (the held-out
  figures) and with the given reports (optimistic: the label comes from that report).

Held-out studies are scored with reports written by the fitted decoder. Prints one JSON object,
writes it and a plot with ``--out DIR``.

    python benchmarks/bench_rate_accuracy.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def _auc(y, proba) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, proba[:, 1]))


def run(quick: bool, seed: int = 0) -> dict:
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.pipeline import Pipeline

    from neural_sk import AttentionScorer, GNNClassifier, GraphFuser, PatchPruner, ReportGraphBuilder
    from neural_sk.baselines import CodecCompressor, ImageClassifier
    from neural_sk.datasets import make_synthetic_cxr
    from neural_sk.metrics import (
        hit_rate_chance, image_nbytes, kept_graph_bytes, lesion_hit_rate, patch_lesion_masks,
    )

    if quick:
        n, size, epochs, preset, gnn_epochs = 60, 64, 2, "tiny-swin", 10
        ratios = [0.1, 0.25]
        codecs = [("jpeg", 10), ("webp", 10), ("jpeg2000", 50)]
    else:
        n, size, epochs, preset, gnn_epochs = 400, 224, 10, "efficientnet-lite0", 40
        ratios = [0.01, 0.023, 0.05, 0.1]
        codecs = [("jpeg", 5), ("jpeg", 10), ("jpeg", 30), ("jpeg", 70), ("webp", 5),
                  ("webp", 10), ("webp", 30), ("jpeg2000", 20), ("jpeg2000", 50),
                  ("jpeg2000", 100), ("jpeg2000", 200)]
    X, y, masks = make_synthetic_cxr(n, image_size=size, random_state=seed, return_masks=True)
    masks = np.asarray(masks)
    train, test = next(GroupShuffleSplit(1, test_size=0.4, random_state=seed)
                       .split(X, y, groups=X["patient_id"]))
    Xtr, Xte, ytr, yte = X.iloc[train], X.iloc[test], y[train], y[test]
    rows: list[dict] = []
    t0 = time.perf_counter()

    scorer = AttentionScorer(vision_model=preset, image_size=size, epochs=epochs,
                             random_state=seed).fit(Xtr, ytr)
    tr = scorer.transform(Xtr)
    te = scorer.set_params(report_source="generated").transform(Xte)
    te_given = te.replace(reports=scorer.set_params(report_source="given").transform(Xte).reports)
    builder = ReportGraphBuilder().fit(tr)
    lesion = patch_lesion_masks(masks[test], te.grid_shape)

    def gnn():
        return GNNClassifier(epochs=gnn_epochs, random_state=seed)

    hits = {}
    for ratio in ratios:
        for rank_by in ("attention", "random"):
            pruner = PatchPruner(keep_ratio=ratio, rank_by=rank_by, random_state=seed).fit(tr)
            ptr, pte = pruner.transform(tr), pruner.transform(te)
            visual = gnn().fit(ptr.visual_graphs, ytr)
            name = "neural_visual" if rank_by == "attention" else "random_patches_visual"
            rows.append({"method": name, "keep_ratio": ratio,
                         "bytes_per_study": float(np.mean(kept_graph_bytes(pte, dtype="float16"))),
                         "auc": _auc(yte, visual.predict_proba(pte.visual_graphs))})
            hits[(ratio, rank_by)] = float(lesion_hit_rate(pte.keep_mask, lesion, yte))
            if rank_by == "attention":
                ftr = GraphFuser().fit_transform(builder.transform(ptr))
                fte = GraphFuser().fit(ftr).transform(builder.transform(pte))
                fused = gnn().fit(ftr.graphs, ytr)
                rows.append({"method": "neural_fused", "keep_ratio": ratio,
                             "bytes_per_study": float(np.mean(kept_graph_bytes(
                                 fte, dtype="float16", field="graphs"))),
                             "auc": _auc(yte, fused.predict_proba(fte.graphs))})
    neural_s = time.perf_counter() - t0

    # Ablation at the paper's keep ratio: which modality carries the AUC?
    ablation = {}
    ratio = 0.023 if 0.023 in ratios else ratios[0]
    pruner = PatchPruner(keep_ratio=ratio).fit(tr)
    ptr = builder.transform(pruner.transform(tr))
    for strategy in ("visual", "report", "centrality"):
        fuser = GraphFuser(strategy=strategy).fit(ptr)
        model = gnn().fit(fuser.transform(ptr).graphs, ytr)
        for source, studies in (("generated", te), ("given", te_given)):
            graphs = fuser.transform(builder.transform(pruner.transform(studies))).graphs
            key = {"visual": "visual_only", "report": "report_only", "centrality": "fused"}[strategy]
            ablation[f"{key}_{source}_reports"] = _auc(yte, model.predict_proba(graphs))

    t1 = time.perf_counter()
    png = float(np.mean([image_nbytes(img) for img in Xte["image"]]))
    clf_params = dict(vision_model=preset, image_size=size, epochs=epochs, random_state=seed)
    full = ImageClassifier(**clf_params).fit(Xtr, ytr)
    rows.append({"method": "full_image", "bytes_per_study": png,
                 "auc": _auc(yte, full.predict_proba(Xte))})
    for codec, quality in codecs:
        pipe = Pipeline([("codec", CodecCompressor(codec=codec, quality=quality)),
                         ("clf", ImageClassifier(**clf_params))]).fit(Xtr, ytr)
        coded = pipe[0].transform(Xte)
        rows.append({"method": codec, "quality": quality,
                     "bytes_per_study": float(coded["nbytes"].mean()),
                     "auc": _auc(yte, pipe[1].predict_proba(coded))})
    baselines_s = time.perf_counter() - t1

    k05 = 0.05 if 0.05 in ratios else ratios[-1]
    pte05 = PatchPruner(keep_ratio=k05).fit(te).transform(te)
    goals = _goals(rows, hits, k05, lesion, pte05, yte, hit_rate_chance)
    return {
        "rows": rows, "ablation": ablation, "goals": goals,
        "hit_rate": {f"{r}_{rank}": v for (r, rank), v in hits.items()},
        "n_train": int(len(train)), "n_test": int(len(test)), "image_size": size,
        "preset": preset, "neural_s": round(neural_s, 1), "baselines_s": round(baselines_s, 1),
    }


def _goals(rows, hits, k05, lesion, pte05, yte, hit_rate_chance) -> dict:
    def pick(method, ratio):
        return next(r for r in rows if r["method"] == method and r.get("keep_ratio") == ratio)

    ratios = sorted({r["keep_ratio"] for r in rows if "keep_ratio" in r})
    paper = 0.023 if 0.023 in ratios else ratios[0]
    neural = pick("neural_visual", paper)
    codec_rows = [r for r in rows if "quality" in r and r["bytes_per_study"] >= neural["bytes_per_study"]]
    best_codec = max(codec_rows, key=lambda r: r["auc"]) if codec_rows else None
    full = next(r for r in rows if r["method"] == "full_image")
    return {
        "neural_visual_auc_at_paper_ratio": neural["auc"],
        "neural_bytes_per_study": neural["bytes_per_study"],
        "best_codec_at_same_or_more_bytes": best_codec,
        "beats_best_codec": bool(best_codec is None or neural["auc"] >= best_codec["auc"]),
        "full_image_auc": full["auc"],
        "within_0.02_of_full_image": bool(neural["auc"] >= full["auc"] - 0.02),
        "hit_rate_at_0.05": hits[(k05, "attention")],
        "hit_rate_chance_at_0.05": float(hit_rate_chance(pte05.keep_mask, lesion, yte)),
        "attention_minus_random_auc": {
            str(r): pick("neural_visual", r)["auc"] - pick("random_patches_visual", r)["auc"]
            for r in ratios
        },
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON and the plot")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = {"benchmark": "bench_rate_accuracy", **run(args.quick, args.seed),
              "machine": f"{platform.machine()} {os.cpu_count()} cpu",
              "command": "python benchmarks/bench_rate_accuracy.py" + (" --quick" if args.quick else "")}
    print(json.dumps(result))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from neural_sk.plotting import plot_rate_accuracy

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        suffix = "_quick" if args.quick else ""
        (out / f"bench_rate_accuracy{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot_rate_accuracy(result["rows"], ax=ax)
        ax.set_title("AUC against bytes per study (held-out synthetic split)")
        fig.tight_layout()
        fig.savefig(out / f"rate_accuracy{suffix}.png", dpi=110)
        plt.close(fig)
    return result


if __name__ == "__main__":
    main()
