"""
Choosing a keep ratio with GridSearchCV
=======================================

How many patches should the pruner keep? Sweep ``pruner__keep_ratio`` with scikit-learn's
:class:`~sklearn.model_selection.GridSearchCV`, and put the random-patch control
(``pruner__rank_by="random"``) in the same grid, so every AUC of attention-chosen patches
stands beside the AUC of as many random ones.

The expensive step is the scorer (a vision-language model). With
``make_neural_pipeline(memory=...)`` the pipeline caches each fitted step, so the scorer is
fitted **once per fold**, whatever the number of pruning settings: only the cheap steps
(pruner, report graphs, fusion, GNN) are refitted for each candidate.

Tiny settings again: with a few dozen studies the AUCs below are noise. The pattern is what
matters.
"""

# %%
# Data and a cached pipeline
# --------------------------
import shutil
import tempfile

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold

from neural_sk import make_neural_pipeline
from neural_sk.datasets import make_synthetic_cxr

n_studies, image_size, epochs, gnn_epochs = 36, 64, 2, 10
keep_ratios = [0.05, 0.15, 0.4]
# sphinx_gallery_start_ignore
import os  # noqa: E402

if os.environ.get("NEURAL_SK_DOCS_QUICK"):
    n_studies, image_size, epochs, gnn_epochs = 24, 64, 1, 5
    keep_ratios = [0.1, 0.3]
# sphinx_gallery_end_ignore
X, y = make_synthetic_cxr(n_studies, image_size=image_size, random_state=0)

cache = tempfile.mkdtemp(prefix="neural_sk_cache_")
pipe = make_neural_pipeline(
    memory=cache,
    scorer__vision_model="tiny-swin",
    scorer__image_size=image_size,
    scorer__epochs=epochs,
    scorer__random_state=0,
    gnn__epochs=gnn_epochs,
    gnn__hidden_dim=32,
    gnn__random_state=0,
)
print([name for name, _ in pipe.steps])

# %%
# The sweep
# ---------
# Folds are grouped by patient (``GroupKFold`` with ``groups=X["patient_id"]``): a
# patient's studies never sit on both sides of a split. ``refit=False`` skips the final
# refit on all the data, which this example does not need.
param_grid = {
    "pruner__keep_ratio": keep_ratios,
    "pruner__rank_by": ["attention", "random"],
}
search = GridSearchCV(pipe, param_grid, scoring="roc_auc", cv=GroupKFold(n_splits=3),
                      refit=False)
search.fit(X, y, groups=X["patient_id"])

results = pd.DataFrame(search.cv_results_)[
    ["param_pruner__keep_ratio", "param_pruner__rank_by", "mean_test_score",
     "std_test_score", "mean_fit_time"]
]
print(results.to_string(index=False, float_format="%.3f"))

# %%
# The first candidate's ``mean_fit_time`` includes fitting the scorer on each fold; every
# later candidate reads the fitted scorer from the cache, and its fit time is that of the
# cheap steps only.
first, rest = results["mean_fit_time"].iloc[0], results["mean_fit_time"].iloc[1:].mean()
print(f"fit time per fold: first candidate {first:.1f} s, the others {rest:.1f} s on average")

# %%
# AUC against keep ratio, attention-ranked patches against random ones (the control).
fig, ax = plt.subplots(figsize=(6, 4))
for rank_by, rows in results.groupby("param_pruner__rank_by"):
    ax.errorbar(rows["param_pruner__keep_ratio"].astype(float), rows["mean_test_score"],
                yerr=rows["std_test_score"], marker="o", capsize=3, label=rank_by)
ax.set_xscale("log")
ax.set_xticks(keep_ratios, [f"{k:g}" for k in keep_ratios])
ax.minorticks_off()
ax.set_xlabel("keep ratio (share of patches kept)")
ax.set_ylabel("ROC AUC (3-fold, grouped by patient)")
ax.legend(title="patches ranked by")
fig.tight_layout()

# %%
# The cache is an ordinary folder; remove it when the sweep is done (or keep it: a later
# sweep with the same scorer settings and folds reuses it).
shutil.rmtree(cache, ignore_errors=True)
