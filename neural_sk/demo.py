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
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the command's --help imports this module: keep it light
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from .studies import StudySet

__all__ = ["DemoSettings", "HeldOutSplit", "held_out_split", "roc_auc", "demo_pipeline",
           "score_split", "visual_only", "held_out_auc", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    """Settings of a demo run; ``quick()`` gives CI-sized ones."""

    n_samples: int = 700
    image_size: int = 224
    keep_ratio: float = 0.023
    epochs: int | str = "auto"  # the scorer's own default (600 steps: 24 epochs here)
    test_size: float = 0.4
    random_state: int = 0
    vision_model: str = "efficientnet-lite0"
    gnn_epochs: int = 60

    @classmethod
    def quick(cls) -> DemoSettings:
        return cls(n_samples=48, image_size=64, keep_ratio=0.1, epochs=2,
                   vision_model="tiny-swin", gnn_epochs=5)


@dataclass
class HeldOutSplit:
    """Synthetic studies split by patient into a training and a held-out part."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray
    y_test: np.ndarray
    masks_test: np.ndarray


def held_out_split(n_samples: int, *, image_size: int, test_size: float = 0.4,
                   random_state: int = 0) -> HeldOutSplit:
    """Make ``n_samples`` synthetic studies and hold out ``test_size`` of the patients.

    Parameters
    ----------
    n_samples : int
        Studies to generate.
    image_size : int
        Side of the square images in pixels.
    test_size : float, default=0.4
        Share of the studies held out (whole patients: a patient's studies stay together).
    random_state : int, default=0
        Seed of the studies and of the split.

    Returns
    -------
    HeldOutSplit
        The two parts, with the lesion masks of the held-out studies.

    Examples
    --------
    >>> split = held_out_split(20, image_size=64)
    >>> len(split.X_train) + len(split.X_test), split.masks_test.shape[1:]
    (20, (64, 64))
    """
    from sklearn.model_selection import GroupShuffleSplit

    from .datasets import make_synthetic_cxr

    X, y, masks = make_synthetic_cxr(n_samples, image_size=image_size,
                                     random_state=random_state, return_masks=True)
    split = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    train, test = next(split.split(X, y, groups=X["patient_id"]))
    return HeldOutSplit(X.iloc[train], X.iloc[test], y[train], y[test],
                        np.asarray(masks)[test])


def roc_auc(y: Any, proba: np.ndarray) -> float:
    """Area under the ROC curve of the positive class (column 1 of ``proba``).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        True labels (0/1).
    proba : ndarray of shape (n_samples, 2)
        ``predict_proba`` output.

    Returns
    -------
    float

    Examples
    --------
    >>> roc_auc([0, 1, 1], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]))
    1.0
    """
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, np.asarray(proba)[:, 1]))


def demo_pipeline(settings: DemoSettings, *, verbose: int = 0) -> Pipeline:
    """:func:`~neural_sk.make_neural_pipeline` with the demo's settings.

    Parameters
    ----------
    settings : DemoSettings
        Model sizes, epochs, keep ratio and seed.
    verbose : int, default=0
        Verbosity of the scorer and the GNN (progress bars when > 0).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; its steps are ``scorer``, ``pruner``, ``reports``, ``fuser``, ``gnn``.

    Examples
    --------
    >>> demo_pipeline(DemoSettings.quick()).get_params()["gnn__epochs"]
    5
    """
    from .pipeline import make_neural_pipeline

    s = settings
    return make_neural_pipeline(
        scorer__vision_model=s.vision_model, scorer__image_size=s.image_size,
        scorer__epochs=s.epochs, scorer__random_state=s.random_state, scorer__verbose=verbose,
        pruner__keep_ratio=s.keep_ratio, fuser__strategy="centrality",
        gnn__epochs=s.gnn_epochs, gnn__random_state=s.random_state, gnn__verbose=verbose)


def score_split(scorer: Any, split: HeldOutSplit) -> tuple[StudySet, StudySet, StudySet]:
    """Fit the scorer on the training part and score both parts.

    The held-out studies are scored with reports the fitted decoder writes (their own
    report would leak the label into the report graph); the same studies with their given
    reports come third, for the optimistic figure.

    Parameters
    ----------
    scorer : AttentionScorer
        Unfitted (the pipeline's ``scorer`` step); it is fitted here.
    split : HeldOutSplit
        The studies.

    Returns
    -------
    train, test, test_given : StudySet
        Scored training studies, held-out studies with generated reports, and the same
        with their given reports.
    """
    log.info("fitting the scorer on %d studies (%s, %d px, epochs=%s)", len(split.X_train),
             scorer.vision_model, scorer.image_size, scorer.epochs)
    scorer.fit(split.X_train, split.y_train)
    log.info("scoring %d training and %d held-out studies (held-out ones with the reports "
             "the decoder writes)", len(split.X_train), len(split.X_test))
    train = scorer.transform(split.X_train)
    test = scorer.set_params(report_source="generated").transform(split.X_test)
    return train, test, test.replace(reports=split.X_test["report"].tolist())


def visual_only(head: Pipeline) -> Pipeline:
    """An unfitted copy of ``head`` whose GNN classifies the visual graphs alone.

    Parameters
    ----------
    head : Pipeline
        The steps after the scorer (``pipe[1:]``).

    Returns
    -------
    Pipeline
        The same steps with ``reports`` and ``fuser`` passed through.

    Examples
    --------
    >>> head = visual_only(demo_pipeline(DemoSettings.quick())[1:])
    >>> head.get_params()["fuser"]
    'passthrough'
    """
    from sklearn.base import clone

    return clone(head).set_params(reports="passthrough", fuser="passthrough")


def held_out_auc(head: Pipeline, studies: StudySet, y: Any) -> tuple[float, StudySet]:
    """AUC of a fitted ``head`` on scored studies, and the studies as its GNN saw them.

    Parameters
    ----------
    head : Pipeline
        Fitted steps after the scorer.
    studies : StudySet
        Scored held-out studies.
    y : array-like of shape (n_samples,)
        Their labels.

    Returns
    -------
    auc : float
    graphs : StudySet
        ``studies`` after every step of ``head`` but the GNN.
    """
    graphs = head[:-1].transform(studies)
    return roc_auc(y, head[-1].predict_proba(graphs)), graphs


def run_demo(settings: DemoSettings | None = None, *, out: str | Path | None = None,
             verbose: int = 0) -> dict[str, Any]:
    """Fit on a training split of the synthetic set, evaluate on a held-out split.

    The chain is :func:`~neural_sk.make_neural_pipeline`'s: the scorer is fitted once,
    then the steps after it are fitted four times on the scored training studies: as they
    are (fused graphs), with ``fuser__strategy="report"`` (report graphs alone), with the
    report and fusion steps passed through (visual graphs), and that with random patches
    (the control). The generated reports are scored against the given ones with
    :func:`~neural_sk.metrics.clinical_efficacy` (``ce_f1``, ``ce_precision``,
    ``ce_recall``).

    Parameters
    ----------
    settings : DemoSettings, optional
        Sizes and seeds; the defaults are the README's main job (about 2-3 minutes on 2 CPU
        cores).
    out : path, optional
        Folder for the pictures (attention overlay, pruned image, one fused graph).
    verbose : int, default=0
        Progress bars of the scorer and the GNN when > 0. Which step runs is logged at INFO
        level (logger ``neural_sk.demo``); ``neural-sk demo`` shows both unless ``-q``.

    Returns
    -------
    dict
        The figures of the table (AUCs, hit rates, bytes, timings).
    """
    from sklearn.base import clone

    from .metrics import (archive_bytes_per_study, clinical_efficacy, hit_rate_chance,
                          image_nbytes, lesion_hit_rate, patch_lesion_masks)

    s = settings or DemoSettings()
    t0 = time.perf_counter()
    log.info("reading: making %d synthetic studies at %d px, holding out %.0f%% of the patients",
             s.n_samples, s.image_size, 100 * s.test_size)
    split = held_out_split(s.n_samples, image_size=s.image_size, test_size=s.test_size,
                           random_state=s.random_state)
    y_train, y_test = split.y_train, split.y_test
    pipe = demo_pipeline(s, verbose=verbose)
    train, test, test_given = score_split(pipe["scorer"], split)
    t_fit = time.perf_counter() - t0  # as before: generating the studies and the scorer fit

    log.info("pruning to %.1f%% of the patches, building report and fused graphs, training "
             "the GNN on the fused graphs", 100 * s.keep_ratio)
    fused = pipe[1:].fit(train, y_train)
    log.info("training the GNN on the report graphs alone")
    report = clone(fused).set_params(fuser__strategy="report").fit(train, y_train)
    log.info("training the GNN on the visual graphs alone")
    visual = visual_only(fused).fit(train, y_train)
    log.info("training the GNN on as many random patches (the control)")
    control = clone(visual).set_params(pruner__rank_by="random",
                                       pruner__random_state=s.random_state).fit(train, y_train)

    log.info("evaluating on %d held-out studies", len(y_test))
    results: dict[str, Any] = {"keep_ratio": s.keep_ratio}
    results["visual_auc"] = held_out_auc(visual, test, y_test)[0]
    results["random_auc"], te_rand = held_out_auc(control, test, y_test)
    results["fused_auc"], te = held_out_auc(fused, test, y_test)
    results["fused_auc_given_reports"] = held_out_auc(fused, test_given, y_test)[0]
    results["report_auc_generated"] = held_out_auc(report, test, y_test)[0]
    results["report_auc_given"] = held_out_auc(report, test_given, y_test)[0]
    # Do the generated reports state the findings the given ones do?
    efficacy = clinical_efficacy(test.reports, split.X_test["report"].tolist())
    results["ce_f1"], results["ce_precision"], results["ce_recall"] = (
        efficacy["f1"], efficacy["precision"], efficacy["recall"])

    lesion = patch_lesion_masks(split.masks_test, te.grid_shape)
    results["hit_rate"] = float(lesion_hit_rate(te.keep_mask, lesion, y_test))
    results["hit_rate_random"] = float(lesion_hit_rate(te_rand.keep_mask, lesion, y_test))
    results["hit_rate_chance"] = float(hit_rate_chance(te.keep_mask, lesion, y_test))
    results["patches_kept"] = float(te.keep_mask.sum(1).mean())
    results["patches_total"] = int(te.keep_mask.shape[1])
    # One count of bytes: what the archive writes (the fused graphs are rebuilt from the
    # visual and report graphs, so they cost those).
    archived = archive_bytes_per_study(te, feature_dtype="float16")
    results["bytes_per_study"] = archived["visual_graphs"]
    results["fused_bytes_per_study"] = sum(archived.get(f, 0.0) for f in (
        "visual_graphs", "report_graphs", "graphs"))
    results["archive_bytes_per_study"] = archived["file"]
    results["png_bytes_per_study"] = float(np.mean([image_nbytes(img) for img in split.X_test["image"]]))
    results["n_train"], results["n_test"] = len(split.X_train), len(split.X_test)
    results["scorer_fit_s"] = round(t_fit, 1)
    results["total_s"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        log.info("writing the pictures to %s", out)
        results["pictures"] = _write_pictures(Path(out), split.X_test, y_test, split.masks_test, te)
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
    title = textwrap.shorten("fused graph; generated report: " + studies.reports[k], 330,
                             placeholder=" ...")
    ax.set_title(textwrap.fill(title, 110), fontsize=8)
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
        ("bytes per study, archive file (float16, headers included)",
         f"{r.get('archive_bytes_per_study', float('nan')):,.0f}"),
        ("bytes per study, source image as PNG", f"{r['png_bytes_per_study']:,.0f}"),
        ("AUC, visual graph (attention patches)", f"{r['visual_auc']:.3f}"),
        ("AUC, visual graph (random patches: control)", f"{r['random_auc']:.3f}"),
        ("AUC, fused graph (generated reports)", f"{r['fused_auc']:.3f}"),
        ("AUC, fused graph (given reports: optimistic, leaks the label)",
         f"{r['fused_auc_given_reports']:.3f}"),
        ("AUC, report graph alone (generated / given reports)",
         f"{r['report_auc_generated']:.3f} / {r['report_auc_given']:.3f}"),
        ("generated reports' findings vs given: F1 (precision, recall)",
         f"{r['ce_f1']:.3f} ({r['ce_precision']:.3f}, {r['ce_recall']:.3f})"),
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
