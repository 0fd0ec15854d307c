"""``neural-sk demo``: the whole method on the embedded synthetic chest X-rays, evaluated honestly.

The scorer is fitted once on a training split grouped by patient. Held-out studies are scored
with reports the fitted decoder *writes* (the study's own report would leak its label into the
report graph); the given-report figure is printed too, labelled as optimistic. Beside every
AUC of attention-chosen patches stands the same number of random patches (the control), and
beside the lesion hit rate its chance level.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DemoSettings", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    """Settings of a demo run; ``quick()`` gives CI-sized ones."""

    n_samples: int = 700
    image_size: int = 224
    keep_ratio: float = 0.023
    epochs: int = 12
    test_size: float = 0.4
    random_state: int = 0
    vision_model: str = "efficientnet-lite0"
    gnn_epochs: int = 60

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(n_samples=48, image_size=64, keep_ratio=0.1, epochs=2,
                   vision_model="tiny-swin", gnn_epochs=5)


def _auc(y, proba) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, proba[:, 1]))


def run_demo(settings: DemoSettings | None = None, *, out: str | Path | None = None,
             verbose: int = 0) -> dict[str, Any]:
    """Fit on a training split of the synthetic set, evaluate on a held-out split.

    Parameters
    ----------
    settings : DemoSettings, optional
        Sizes and seeds; the defaults are the README's main job (about 2-3 minutes on 2 CPU
        cores).
    out : path, optional
        Folder for the pictures (attention overlay, pruned image, one fused graph).
    verbose : int, default=0
        Progress bars when > 0.

    Returns
    -------
    dict
        The figures of the table (AUCs, hit rates, bytes, timings).
    """
    from sklearn.model_selection import GroupShuffleSplit

    from .attention import AttentionScorer
    from .datasets import make_synthetic_cxr
    from .fusion import GraphFuser
    from .gnn import GNNClassifier
    from .metrics import hit_rate_chance, image_nbytes, kept_graph_bytes, lesion_hit_rate, patch_lesion_masks
    from .pruning import PatchPruner
    from .report_graph import ReportGraphBuilder

    s = settings or DemoSettings()
    t0 = time.perf_counter()
    X, y, masks = make_synthetic_cxr(s.n_samples, image_size=s.image_size,
                                     random_state=s.random_state, return_masks=True)
    masks = np.asarray(masks)
    split = GroupShuffleSplit(n_splits=1, test_size=s.test_size, random_state=s.random_state)
    train, test = next(split.split(X, y, groups=X["patient_id"]))
    X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]

    scorer = AttentionScorer(vision_model=s.vision_model, image_size=s.image_size,
                             epochs=s.epochs, random_state=s.random_state, verbose=verbose)
    scorer.fit(X_train, y_train)
    t_fit = time.perf_counter() - t0
    train_studies = scorer.transform(X_train)
    test_generated = scorer.set_params(report_source="generated").transform(X_test)
    test_given = test_generated.replace(reports=X_test["report"].tolist())

    def gnn():
        return GNNClassifier(epochs=s.gnn_epochs, random_state=s.random_state)

    results: dict[str, Any] = {"keep_ratio": s.keep_ratio}
    pruner = PatchPruner(keep_ratio=s.keep_ratio).fit(train_studies)
    control = PatchPruner(keep_ratio=s.keep_ratio, rank_by="random",
                          random_state=s.random_state).fit(train_studies)
    reports = ReportGraphBuilder().fit(train_studies)
    tr = reports.transform(pruner.transform(train_studies))
    fuser = GraphFuser(strategy="centrality").fit(tr)
    tr = fuser.transform(tr)
    te = fuser.transform(reports.transform(pruner.transform(test_generated)))
    te_given = fuser.transform(reports.transform(pruner.transform(test_given)))
    tr_rand, te_rand = control.transform(train_studies), control.transform(test_generated)

    visual = gnn().fit(tr.visual_graphs, y_train)
    results["visual_auc"] = _auc(y_test, visual.predict_proba(te.visual_graphs))
    random_model = gnn().fit(tr_rand.visual_graphs, y_train)
    results["random_auc"] = _auc(y_test, random_model.predict_proba(te_rand.visual_graphs))
    fused = gnn().fit(tr.graphs, y_train)
    results["fused_auc"] = _auc(y_test, fused.predict_proba(te.graphs))
    results["fused_auc_given_reports"] = _auc(y_test, fused.predict_proba(te_given.graphs))

    lesion = patch_lesion_masks(masks[test], te.grid_shape)
    results["hit_rate"] = float(lesion_hit_rate(te.keep_mask, lesion, y_test))
    results["hit_rate_random"] = float(lesion_hit_rate(te_rand.keep_mask, lesion, y_test))
    results["hit_rate_chance"] = float(hit_rate_chance(te.keep_mask, lesion, y_test))
    results["patches_kept"] = float(te.keep_mask.sum(1).mean())
    results["patches_total"] = int(te.keep_mask.shape[1])
    results["bytes_per_study"] = float(np.mean(kept_graph_bytes(te, dtype="float16", field="visual_graphs")))
    results["fused_bytes_per_study"] = float(np.mean(kept_graph_bytes(te, dtype="float16", field="graphs")))
    results["png_bytes_per_study"] = float(np.mean([image_nbytes(img) for img in X_test["image"]]))
    results["n_train"], results["n_test"] = int(len(train)), int(len(test))
    results["scorer_fit_s"] = round(t_fit, 1)
    results["total_s"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        results["pictures"] = _write_pictures(Path(out), X_test, y_test, masks[test], te)
    return results


def _write_pictures(out: Path, X_test, y_test, masks, studies) -> list[str]:
    """The first three held-out positives (not hand-picked) and the first one's fused graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import plot_attention_overlay, plot_graph, show_pruned

    out.mkdir(parents=True, exist_ok=True)
    positives = np.flatnonzero(np.asarray(y_test) == 1)[:3]
    if len(positives) == 0:
        positives = np.arange(min(3, len(y_test)))
    fig, axes = plt.subplots(len(positives), 2, figsize=(8, 4 * len(positives)), squeeze=False)
    for row, k in enumerate(positives):
        image = np.asarray(X_test["image"].iloc[k])
        plot_attention_overlay(image, studies.attention[k], studies.grid_shape,
                               ax=axes[row, 0], mask=masks[k])
        axes[row, 0].set_title(f"study {studies.ids[k]}: attention, lesion outlined", fontsize=9)
        show_pruned(image, studies.keep_mask[k], studies.grid_shape, ax=axes[row, 1],
                    mask=masks[k])
        axes[row, 1].set_title(f"kept {int(studies.keep_mask[k].sum())} of "
                               f"{studies.keep_mask.shape[1]} patches", fontsize=9)
    fig.tight_layout()
    attention_path = out / "demo_attention.png"
    fig.savefig(attention_path, dpi=100)
    plt.close(fig)

    k = int(positives[0])
    fig, ax = plt.subplots(figsize=(7, 5))
    plot_graph(studies.graphs[k], ax=ax, grid_shape=studies.grid_shape)
    ax.set_title("fused graph; generated report: " + studies.reports[k][:90], fontsize=8)
    fig.tight_layout()
    graph_path = out / "demo_graph.png"
    fig.savefig(graph_path, dpi=100)
    plt.close(fig)
    return [str(attention_path), str(graph_path)]


def format_table(r: dict[str, Any]) -> str:
    """The demo's figures as a table a person can read."""
    rows = [
        ("patches kept per study", f"{r['patches_kept']:.1f} of {r['patches_total']} "
         f"({100 * r['patches_kept'] / r['patches_total']:.1f}%, keep_ratio={r['keep_ratio']})"),
        ("bytes per study, kept visual graph (float16)", f"{r['bytes_per_study']:,.0f}"),
        ("bytes per study, fused graph (float16)", f"{r['fused_bytes_per_study']:,.0f}"),
        ("bytes per study, source image as PNG", f"{r['png_bytes_per_study']:,.0f}"),
        ("AUC, visual graph (attention patches)", f"{r['visual_auc']:.3f}"),
        ("AUC, visual graph (random patches: control)", f"{r['random_auc']:.3f}"),
        ("AUC, fused graph (generated reports)", f"{r['fused_auc']:.3f}"),
        ("AUC, fused graph (given reports: optimistic, leaks the label)",
         f"{r['fused_auc_given_reports']:.3f}"),
        ("lesion hit rate, attention patches", f"{r['hit_rate']:.3f}"),
        ("lesion hit rate, random patches", f"{r['hit_rate_random']:.3f}"),
        ("lesion hit rate, chance level", f"{r['hit_rate_chance']:.3f}"),
        ("studies train / held-out", f"{r['n_train']} / {r['n_test']}"),
        ("time: scorer fit / total", f"{r['scorer_fit_s']} s / {r['total_s']} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def run_demo_cli(args) -> int:
    """``neural-sk demo`` (called by :mod:`neural_sk.cli`)."""
    settings = DemoSettings.quick() if args.quick else DemoSettings()
    for field in ("n_samples", "image_size", "keep_ratio", "epochs"):
        value = getattr(args, field)
        if value is not None:
            setattr(settings, field, value)
    settings.random_state = args.random_state
    results = run_demo(settings, out=args.out, verbose=args.verbose)
    print("NEURAL on the embedded synthetic chest X-rays (held-out split, grouped by patient)")
    print(format_table(results))
    if results.get("pictures"):
        print("pictures: " + ", ".join(results["pictures"]))
    if args.json:
        print(json.dumps(results))
    return 0
