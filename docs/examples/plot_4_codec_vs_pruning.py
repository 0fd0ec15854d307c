"""
Bytes, not patches: pruning against a codec
===========================================

The paper reports "93.4-97.7% reduction in image data": the share of image patches
dropped. What an archive stores per kept patch, though, is a vector of encoder features,
not pixels, and radiology's yardstick is bytes: lossy JPEG or JPEG 2000 at 10:1 to 30:1
(90-97% fewer bytes) is accepted for chest radiographs and still gives a viewable image.

This example puts both on one axis, **bytes per study**:

- the kept visual graph at float16 (:func:`~neural_sk.metrics.kept_graph_bytes`) for a few
  keep ratios, with the random-patch control beside it;
- the image re-encoded by a codec at a few qualities
  (:class:`~neural_sk.baselines.CodecCompressor`), classified by a full-image classifier
  (:class:`~neural_sk.baselines.ImageClassifier`);
- the image as lossless PNG (:func:`~neural_sk.metrics.image_nbytes`), classified
  uncompressed.

Tiny settings: the AUCs are noise at this size. ``benchmarks/bench_rate_accuracy.py`` runs
the same comparison at a size where they mean something.
"""

# %%
# Data, split by patient
# ----------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.pipeline import make_pipeline

from neural_sk import AttentionScorer, GNNClassifier, PatchPruner
from neural_sk.baselines import CodecCompressor, ImageClassifier
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.metrics import image_nbytes, kept_graph_bytes, patch_reduction
from neural_sk.plotting import plot_rate_accuracy

n_studies, image_size, epochs, gnn_epochs = 40, 64, 2, 20
# sphinx_gallery_start_ignore
import os  # noqa: E402

if os.environ.get("NEURAL_SK_DOCS_QUICK"):
    n_studies, image_size, epochs, gnn_epochs = 24, 64, 1, 5
# sphinx_gallery_end_ignore
X, y = make_synthetic_cxr(n_studies, image_size=image_size, random_state=2)
train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.4, random_state=0)
                   .split(X, y, groups=X["patient_id"]))
X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]
rows = []  # one point per method and setting: method, bytes_per_study, auc, label

# %%
# The codec side
# --------------
# ``CodecCompressor`` re-encodes each image and reports its size in an ``nbytes`` column;
# the decoded images go on to the classifier, which sees what a receiver of the file would.
png = float(np.mean([image_nbytes(img) for img in X_test["image"]]))
classifier = dict(vision_model="tiny-swin", image_size=image_size, epochs=epochs,
                  random_state=0)
full = ImageClassifier(**classifier).fit(X_train, y_train)
rows.append({"method": "uncompressed (PNG)", "bytes_per_study": png,
             "auc": roc_auc_score(y_test, full.predict_proba(X_test)[:, 1]), "label": "PNG"})

for quality in (10, 50):
    codec = CodecCompressor(codec="jpeg", quality=quality)
    nbytes = float(codec.fit_transform(X_test)["nbytes"].mean())
    model = make_pipeline(CodecCompressor(codec="jpeg", quality=quality),
                          ImageClassifier(**classifier)).fit(X_train, y_train)
    rows.append({"method": "JPEG + classifier", "bytes_per_study": nbytes,
                 "auc": roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]),
                 "quality": quality})

# %%
# The pruning side
# ----------------
# One scorer, then the pruner at a few keep ratios, with attention-ranked and random
# patches; the GNN classifies the visual graph alone (no report: an image-only comparison).
scorer = AttentionScorer(vision_model="tiny-swin", image_size=image_size, epochs=epochs,
                         random_state=0).fit(X_train, y_train)
s_train, s_test = scorer.transform(X_train), scorer.transform(X_test)
for keep_ratio in (0.1, 0.25):
    for rank_by in ("attention", "random"):
        pruner = PatchPruner(keep_ratio=keep_ratio, rank_by=rank_by, random_state=0)
        g_train = pruner.fit_transform(s_train)
        g_test = pruner.transform(s_test)
        gnn = GNNClassifier(epochs=gnn_epochs, hidden_dim=32, random_state=0)
        gnn.fit(g_train, y_train)
        rows.append({
            "method": f"NEURAL visual graph ({rank_by} patches)",
            "bytes_per_study": float(kept_graph_bytes(g_test, dtype="float16").mean()),
            "auc": roc_auc_score(y_test, gnn.predict_proba(g_test)[:, 1]),
            "keep_ratio": keep_ratio,
        })
        if rank_by == "attention":
            print(f"keep_ratio={keep_ratio}: {100 * patch_reduction(g_test.keep_mask):.0f}% of "
                  f"patches dropped, {rows[-1]['bytes_per_study']:,.0f} bytes per study "
                  f"(PNG: {png:,.0f})")

# %%
# One picture
# -----------
# AUC against bytes per study (log scale). A point to the left of another at the same
# height is the better compression. Read the NEURAL points beside their random-patch
# control and beside the codec at the same byte budget.
fig, ax = plt.subplots(figsize=(7, 4.5))
plot_rate_accuracy(rows, ax=ax)
ax.set_title("rate-accuracy on a tiny synthetic split (noise at this size)")
fig.tight_layout()

# %%
# The figures as a table.
import pandas as pd  # noqa: E402

print(pd.DataFrame(rows).to_string(index=False, float_format="%.3f"))
