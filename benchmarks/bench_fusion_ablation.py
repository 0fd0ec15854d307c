"""Which GNN keeps both modalities? Visual / report-only / fused graphs x given / generated
reports x GNN readout and modality dropout, and the clinical efficacy of generated reports.

The scorer is fitted once on the demo's training split (``neural_sk.demo``); every row is the
pipeline after it (``pipe[1:]``) with other parameters: ``fuser__strategy`` ("visual",
"report", "centrality", "grounded"), ``gnn__readout`` ("joint", "per_modality") and
``gnn__modality_dropout`` (0 or the default 0.5). Held-out studies are
scored with generated reports; the given-report column is optimistic (the label comes from
that report). ``complementarity`` asks whether fusion has anything to add: rank averages of
the visual-only and report-only probabilities, and the scorer's head on the whole image.
Prints one JSON object.

    python benchmarks/bench_fusion_ablation.py [--quick] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import time

from _common import emit, held_out_split, roc_auc

from neural_sk.demo import DemoSettings, demo_pipeline, score_split

# (fuser strategy, GNN readout, GNN modality_dropout); the default GNN is ("per_modality", 0.5)
ROWS = [("visual", "joint", 0.5), ("report", "joint", 0.5), ("centrality", "joint", 0.0),
        ("centrality", "joint", 0.5), ("centrality", "per_modality", 0.0),
        ("centrality", "per_modality", 0.5), ("grounded", "per_modality", 0.5)]


def run(quick: bool, seed: int = 0) -> dict:
    from sklearn.base import clone

    from neural_sk.metrics import clinical_efficacy

    settings = (DemoSettings.quick() if quick else DemoSettings())
    settings.random_state = seed
    split = held_out_split(settings.n_samples, image_size=settings.image_size,
                           test_size=settings.test_size, random_state=seed)
    pipe = demo_pipeline(settings)
    # Grounded fusion links findings to the patches their words attend to: keep that attention.
    pipe["scorer"].set_params(keep_token_attention=True)
    t0 = time.perf_counter()
    train, test, test_given = score_split(pipe["scorer"], split)
    scored_s = time.perf_counter() - t0
    rows, proba = [], {}
    for strategy, readout, hide in ROWS:
        head = clone(pipe[1:]).set_params(fuser__strategy=strategy, gnn__readout=readout,
                                          gnn__modality_dropout=hide)
        head.fit(train, split.y_train)
        row = {"graph": strategy, "readout": readout, "modality_dropout": hide}
        for name, studies in (("generated", test), ("given", test_given)):
            proba[strategy, name] = head[-1].predict_proba(head[:-1].transform(studies))
            row[f"auc_{name}"] = roc_auc(split.y_test, proba[strategy, name])
        rows.append(row)
    ce = clinical_efficacy(test.reports, split.X_test["report"].tolist())
    ce.pop("per_observation")
    return {"settings": vars(settings), "rows": rows, "clinical_efficacy": ce,
            "complementarity": _complementarity(proba, split.y_test, pipe["scorer"], split),
            "scorer_fit_and_scoring_s": round(scored_s, 1)}


def _complementarity(proba: dict, y, scorer, split) -> dict:
    """Is there anything for fusion to add? The AUC of rank averages of the visual-only and
    report-only GNNs' held-out probabilities (weight of the report 0.25 and 0.5), and the
    scorer's own head on the whole image (what the full image knows beyond the kept
    patches)."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    out = {"scorer_head_auc_whole_image": roc_auc(y, scorer.predict_proba(split.X_test))}
    for name in ("generated", "given"):
        visual, report = (rankdata(proba[g, name][:, 1]) for g in ("visual", "report"))
        for w in (0.25, 0.5):
            out[f"rank_average_report_{w}_{name}"] = roc_auc_score(
                y, (1 - w) * visual + w * report)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return emit("bench_fusion_ablation", run(args.quick, args.seed), argv=argv, out=args.out)


if __name__ == "__main__":
    main()
