"""
Report-free inference with generated reports
=============================================

The paper prunes a study with the help of its own, ground-truth report. A new image has no
report yet, and when the label was read from the report, using that report leaks the
label. neural_sk's scorer can **write** the report itself: its decoder is trained to, and
``report_source`` says which text the scorer uses:

- ``"given"``: the ``report`` column (what the paper does);
- ``"generated"``: the report the fitted decoder writes from the image;
- ``"auto"`` (default): given where present, generated where a study has no report.

The generated text replaces the given one in the :class:`~neural_sk.StudySet`, so no later
step (report graph, fusion, GNN) ever sees the original report.

The model is tiny and barely trained here, so its reports are poor; the point is the
mechanics and the comparison.
"""

# %%
# Fit the whole pipeline on studies with reports
# ----------------------------------------------
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

from neural_sk import make_neural_pipeline
from neural_sk.datasets import make_synthetic_cxr

n_studies, image_size, epochs, gnn_epochs = 40, 64, 3, 20
# sphinx_gallery_start_ignore
import os  # noqa: E402

if os.environ.get("NEURAL_SK_DOCS_QUICK"):
    n_studies, image_size, epochs, gnn_epochs = 24, 64, 1, 5
# sphinx_gallery_end_ignore
X, y = make_synthetic_cxr(n_studies, image_size=image_size, random_state=1)
train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.4, random_state=0)
                   .split(X, y, groups=X["patient_id"]))
X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]

pipe = make_neural_pipeline(
    scorer__vision_model="tiny-swin", scorer__image_size=image_size, scorer__epochs=epochs,
    scorer__random_state=0, pruner__keep_ratio=0.25, gnn__epochs=gnn_epochs,
    gnn__hidden_dim=32, gnn__random_state=0,
)
pipe.fit(X_train, y_train)

# %%
# Predict on images that have no report
# -------------------------------------
# Drop the ``report`` column: with ``report_source="auto"`` the scorer writes one for
# every study, and the rest of the pipeline reads that text.
X_new = X_test.drop(columns=["report"])
proba = pipe.predict_proba(X_new)[:, 1]
print("P(pneumonia) of the first new studies:", np.round(proba[:5], 2))

# %%
# What did the decoder write? :meth:`~neural_sk.AttentionScorer.generate_reports` returns
# the text alone; the StudySet from ``transform`` carries it in ``reports``.
scorer = pipe.named_steps["scorer"]
for original, written in zip(X_test["report"].iloc[:2], scorer.generate_reports(X_new.iloc[:2])):
    print("given:     ", original.replace("\n", " ")[:150])
    print("generated: ", written[:150])
    print()

# %%
# Given against generated reports: the leak
# -----------------------------------------
# Score the same held-out images twice: once with their own reports (the paper's setting)
# and once with generated ones. The label of these studies was written from their
# reports, so the first figure is optimistic: the fused graph can read the answer from the
# report without looking at the image. The honest figure for new images is the second.
auc = {}
for source in ("given", "generated"):
    pipe.set_params(scorer__report_source=source)
    auc[source] = roc_auc_score(y_test, pipe.predict_proba(X_test)[:, 1])
pipe.set_params(scorer__report_source="auto")
print(f"held-out AUC, given reports (optimistic): {auc['given']:.3f}")
print(f"held-out AUC, generated reports (honest): {auc['generated']:.3f}")

# %%
# To train the later steps on the same kind of text they will see at prediction time, set
# ``scorer__report_source="generated"`` *before* ``fit``: the pipeline then builds the
# training studies' report graphs from generated reports too.
