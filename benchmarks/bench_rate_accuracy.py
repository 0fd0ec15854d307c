"""Rate against accuracy, in bytes: NEURAL's kept graphs beside lossy codecs and the full image.

On the synthetic set with a held-out split grouped by patient, AUC against bytes per study for:

- NEURAL visual-only and fused graphs at several keep ratios (bytes of the kept graph stored
  at float16, as :mod:`neural_sk.io` stores it);
- the same keep ratios with random patches instead of attention-ranked ones (the control);
- JPEG, JPEG 2000 and WebP at several qualities, each through the full-image classifier;
- the uncompressed full-image classifier (bytes: the image as PNG);
- the ablation visual-only / report-only / fused, with generated reports (the held-out
  figures) and with the given reports (optimistic: the label comes from that report);
- the int8 row: the fused graphs at the paper's keep ratio through an archive with int8
  features (one scale per study) against the same through a float16 archive, the GNN refitted
  on what each archive gives back (``auc_cost``) and the float model scoring both
  (``auc_cost_inference_only``).

Held-out studies are scored with reports written by the fitted decoder. Prints one JSON object,
writes it and a plot with ``--out DIR``.

    python benchmarks/bench_rate_accuracy.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import emit, held_out_split, roc_auc

from neural_sk.demo import DemoSettings, demo_pipeline, held_out_auc, score_split, visual_only


def run_int8_only(quick: bool, seed: int = 0, n_samples: int | None = None,
                  epochs: int | None = None) -> dict:
    """The int8 row alone (no sweep, no codecs), at the run's settings or smaller ones."""
    from dataclasses import replace

    from sklearn.base import clone

    settings = DemoSettings.quick() if quick else DemoSettings(
        n_samples=400, image_size=224, epochs=10, vision_model="efficientnet-lite0",
        gnn_epochs=40)
    settings = replace(settings, random_state=seed, keep_ratio=0.023,
                       n_samples=n_samples or settings.n_samples,
                       epochs=settings.epochs if epochs is None else epochs)
    split = held_out_split(settings.n_samples, image_size=settings.image_size, test_size=0.4,
                           random_state=seed)
    pipe = demo_pipeline(settings)
    tr, te, _ = score_split(pipe["scorer"], split)
    fused = clone(pipe[1:]).fit(tr, split.y_train)
    row = _int8_row(fused, tr, te, split.y_train, split.y_test, settings.keep_ratio)
    return {"rows": [row], "n_train": int(len(tr)), "n_test": int(len(te)),
            "image_size": settings.image_size, "preset": settings.vision_model,
            "epochs": settings.epochs}


def run(quick: bool, seed: int = 0) -> dict:
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    from neural_sk.baselines import CodecCompressor, ImageClassifier
    from neural_sk.metrics import hit_rate_chance, image_nbytes, kept_graph_bytes, lesion_hit_rate, patch_lesion_masks

    if quick:
        settings = DemoSettings(n_samples=60, image_size=64, epochs=2, vision_model="tiny-swin",
                                gnn_epochs=10, random_state=seed)
        ratios = [0.1, 0.25]
        codecs = [("jpeg", 10), ("webp", 10), ("jpeg2000", 50)]
    else:
        settings = DemoSettings(n_samples=400, image_size=224, epochs=10,
                                vision_model="efficientnet-lite0", gnn_epochs=40,
                                random_state=seed)
        ratios = [0.01, 0.023, 0.05, 0.1]
        codecs = [("jpeg", 5), ("jpeg", 10), ("jpeg", 30), ("jpeg", 70), ("webp", 5),
                  ("webp", 10), ("webp", 30), ("jpeg2000", 20), ("jpeg2000", 50),
                  ("jpeg2000", 100), ("jpeg2000", 200)]
    size, preset = settings.image_size, settings.vision_model
    split = held_out_split(settings.n_samples, image_size=size, test_size=0.4, random_state=seed)
    Xtr, Xte, ytr, yte = split.X_train, split.X_test, split.y_train, split.y_test
    rows: list[dict] = []
    t0 = time.perf_counter()

    # The demo's pipeline and scoring; every variant below is its head (pipe[1:]) with
    # other parameters.
    pipe = demo_pipeline(settings)
    tr, te, te_given = score_split(pipe["scorer"], split)
    head = pipe[1:]
    lesion = patch_lesion_masks(split.masks_test, te.grid_shape)

    hits, kept = {}, {}
    for ratio in ratios:
        for rank_by in ("attention", "random"):
            visual = visual_only(head).set_params(
                pruner__keep_ratio=ratio, pruner__rank_by=rank_by,
                pruner__random_state=seed).fit(tr, ytr)
            auc, pte = held_out_auc(visual, te, yte)
            name = "neural_visual" if rank_by == "attention" else "random_patches_visual"
            rows.append({"method": name, "keep_ratio": ratio,
                         "bytes_per_study": float(np.mean(kept_graph_bytes(pte, dtype="float16"))),
                         "auc": auc})
            hits[(ratio, rank_by)] = float(lesion_hit_rate(pte.keep_mask, lesion, yte))
            kept[(ratio, rank_by)] = pte.keep_mask
            if rank_by == "attention":
                fused = clone(head).set_params(pruner__keep_ratio=ratio).fit(tr, ytr)
                auc, fte = held_out_auc(fused, te, yte)
                rows.append({"method": "neural_fused", "keep_ratio": ratio,
                             "bytes_per_study": float(np.mean(kept_graph_bytes(
                                 fte, dtype="float16", field="graphs"))),
                             "auc": auc})
    neural_s = time.perf_counter() - t0
    paper_ratio = 0.023 if 0.023 in ratios else ratios[0]
    rows.append(_int8_row(clone(head).set_params(pruner__keep_ratio=paper_ratio).fit(tr, ytr),
                          tr, te, ytr, yte, paper_ratio))

    # Ablation at the paper's keep ratio: which modality carries the AUC?
    ablation = {}
    ratio = 0.023 if 0.023 in ratios else ratios[0]
    for strategy, key in (("visual", "visual_only"), ("report", "report_only"),
                          ("centrality", "fused")):
        model = clone(head).set_params(pruner__keep_ratio=ratio,
                                       fuser__strategy=strategy).fit(tr, ytr)
        for source, studies in (("generated", te), ("given", te_given)):
            ablation[f"{key}_{source}_reports"] = held_out_auc(model, studies, yte)[0]

    t1 = time.perf_counter()
    png = float(np.mean([image_nbytes(img) for img in Xte["image"]]))
    clf_params = dict(vision_model=preset, image_size=size, epochs=settings.epochs,
                      random_state=seed)
    full = ImageClassifier(**clf_params).fit(Xtr, ytr)
    rows.append({"method": "full_image", "bytes_per_study": png,
                 "auc": roc_auc(yte, full.predict_proba(Xte))})
    for codec, quality in codecs:
        codec_pipe = Pipeline([("codec", CodecCompressor(codec=codec, quality=quality)),
                               ("clf", ImageClassifier(**clf_params))]).fit(Xtr, ytr)
        coded = codec_pipe[0].transform(Xte)
        rows.append({"method": codec, "quality": quality,
                     "bytes_per_study": float(coded["nbytes"].mean()),
                     "auc": roc_auc(yte, codec_pipe[1].predict_proba(coded))})
    baselines_s = time.perf_counter() - t1

    k05 = 0.05 if 0.05 in ratios else ratios[-1]
    goals = _goals(rows, hits, k05, lesion, kept[(k05, "attention")], yte, hit_rate_chance)
    return {
        "rows": rows, "ablation": ablation, "goals": goals,
        "hit_rate": {f"{r}_{rank}": v for (r, rank), v in hits.items()},
        "n_train": int(len(Xtr)), "n_test": int(len(Xte)), "image_size": size,
        "preset": preset, "neural_s": round(neural_s, 1), "baselines_s": round(baselines_s, 1),
    }


def _int8_row(fused, tr, te, ytr, yte, ratio: float) -> dict:
    """AUC of the fused graphs read back from an int8 archive against a float16 one."""
    import os
    import tempfile

    from sklearn.base import clone

    from neural_sk.io import load_studies, save_studies
    from neural_sk.io.format import lean_fields
    from neural_sk.metrics import kept_graph_bytes

    parts = {"train": fused[:-1].transform(tr), "test": fused[:-1].transform(te)}
    auc, refit, file_bytes = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix="bench_int8_") as tmp:
        for dtype in ("float16", "int8"):
            back = {}
            for name, studies in parts.items():
                path = os.path.join(tmp, f"{name}_{dtype}.npz")
                save_studies(path, studies, fields=lean_fields(studies), feature_dtype=dtype)
                back[name] = load_studies(path)
                file_bytes[(name, dtype)] = os.path.getsize(path) / len(studies)
            auc[dtype] = roc_auc(yte, fused[-1].predict_proba(back["test"]))
            gnn = clone(fused[-1]).fit(back["train"], ytr)
            refit[dtype] = roc_auc(yte, gnn.predict_proba(back["test"]))
    return {"method": "neural_fused_int8", "keep_ratio": ratio,
            "bytes_per_study": float(np.mean(kept_graph_bytes(parts["test"], dtype="int8",
                                                              field="graphs"))),
            "auc": refit["int8"], "auc_float16_archive": refit["float16"],
            "auc_cost": refit["float16"] - refit["int8"],
            "auc_cost_inference_only": auc["float16"] - auc["int8"],
            "archive_file_bytes_per_study": {d: file_bytes[("test", d)]
                                             for d in ("float16", "int8")}}


def _goals(rows, hits, k05, lesion, keep_mask05, yte, hit_rate_chance) -> dict:
    def pick(method, ratio):
        return next(r for r in rows if r["method"] == method and r.get("keep_ratio") == ratio)

    ratios = sorted({r["keep_ratio"] for r in rows if "keep_ratio" in r})
    paper = 0.023 if 0.023 in ratios else ratios[0]
    neural = pick("neural_visual", paper)
    codec_rows = [r for r in rows if "quality" in r and r["bytes_per_study"] >= neural["bytes_per_study"]]
    best_codec = max(codec_rows, key=lambda r: r["auc"]) if codec_rows else None
    full = next(r for r in rows if r["method"] == "full_image")
    int8 = next(r for r in rows if r["method"] == "neural_fused_int8")
    return {
        "int8_auc_cost": int8["auc_cost"],
        "int8_auc_cost_within_0.005": bool(int8["auc_cost"] <= 0.005),
        "neural_visual_auc_at_paper_ratio": neural["auc"],
        "neural_bytes_per_study": neural["bytes_per_study"],
        "best_codec_at_same_or_more_bytes": best_codec,
        "beats_best_codec": bool(best_codec is None or neural["auc"] >= best_codec["auc"]),
        "full_image_auc": full["auc"],
        "within_0.02_of_full_image": bool(neural["auc"] >= full["auc"] - 0.02),
        "hit_rate_at_0.05": hits[(k05, "attention")],
        "hit_rate_chance_at_0.05": float(hit_rate_chance(keep_mask05, lesion, yte)),
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
    parser.add_argument("--int8-only", action="store_true",
                        help="only the int8 row (with --n-samples / --epochs to shrink it)")
    parser.add_argument("--n-samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    if args.int8_only:
        return emit("bench_rate_accuracy_int8", run_int8_only(
            args.quick, args.seed, args.n_samples, args.epochs), argv=argv,
            out=Path(args.out) / "bench_rate_accuracy_int8.json" if args.out else None)
    suffix = "_quick" if args.quick else ""
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    result = emit("bench_rate_accuracy", run(args.quick, args.seed), argv=argv,
                  out=out / f"bench_rate_accuracy{suffix}.json" if out else None)
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from neural_sk.plotting import plot_rate_accuracy

        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot_rate_accuracy(result["rows"], ax=ax)
        ax.set_title("AUC against bytes per study (held-out synthetic split)")
        fig.tight_layout()
        fig.savefig(out / f"rate_accuracy{suffix}.png", dpi=110)
        plt.close(fig)
    return result


if __name__ == "__main__":
    main()
