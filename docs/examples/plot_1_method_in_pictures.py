"""
The method in pictures
======================

NEURAL in three pictures, on the synthetic chest X-rays that ship with neural_sk:

1. where the scorer's attention falls on the image (one score per patch),
2. what the pruner keeps (the top patches, linked as a grid graph),
3. the fused graph the GNN classifies (kept patches + the report's findings).

The settings are tiny so the example runs in seconds: a small random-weight Swin encoder
(``vision_model="tiny-swin"``) trained for a few epochs on a few dozen studies. Such a model
has **not** learned where the lesion is; the pictures show what each step produces, not how
well it works. ``neural-sk demo`` runs the same steps with the ImageNet-pretrained default
encoder, whose attention does find the lesion.
"""

# %%
# Synthetic studies
# -----------------
# :func:`~neural_sk.datasets.make_synthetic_cxr` draws chest-X-ray-like images with a
# report and a patient id per study; ``y`` is 1 for pneumonia, and ``masks`` mark the
# drawn lesion's pixels, so we can check whether the kept patches touch it.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from neural_sk import AttentionScorer, GraphFuser, PatchPruner, ReportGraphBuilder
from neural_sk.datasets import make_synthetic_cxr

n_studies, image_size, epochs = 48, 128, 3
# sphinx_gallery_start_ignore
import os  # noqa: E402

if os.environ.get("NEURAL_SK_DOCS_QUICK"):
    n_studies, image_size, epochs = 24, 64, 1
# sphinx_gallery_end_ignore
X, y, masks = make_synthetic_cxr(n_studies, image_size=image_size, random_state=0,
                                 return_masks=True)
masks = np.asarray(masks)
print(X[["report", "patient_id"]].head(3).to_string(max_colwidth=70))

# %%
# Split by patient: a patient's studies all go to one side, so nothing about a test
# patient is learned in training.
train, test = next(GroupShuffleSplit(n_splits=1, test_size=0.4, random_state=0)
                   .split(X, y, groups=X["patient_id"]))
X_train, X_test, y_train, y_test = X.iloc[train], X.iloc[test], y[train], y[test]

# %%
# Step 1: score every patch
# -------------------------
# :class:`~neural_sk.AttentionScorer` fine-tunes an image encoder, a report decoder and an
# attention-pooling (MIL) classification head together; ``transform`` returns a
# :class:`~neural_sk.StudySet` with one score per patch (each row sums to 1).
scorer = AttentionScorer(vision_model="tiny-swin", image_size=image_size, epochs=epochs,
                         random_state=0)
scorer.fit(X_train, y_train)
studies = scorer.transform(X_test)
print("patch grid:", studies.grid_shape, "| attention:", studies.attention.shape,
      "| patch features:", studies.patch_features.shape)

# %%
# Steps 2-4: prune, read the report, fuse
# ---------------------------------------
# Each step adds its fields to a new StudySet and leaves its input untouched. The pruner
# keeps the top 10% of the patches (the paper keeps 2.3% of a 12 x 12 grid; this grid is
# much smaller) as a 4-neighbour grid graph; the report graph builder reads findings and
# anatomy from each report; the fuser joins the two graphs of each study.
pruned = PatchPruner(keep_ratio=0.1).fit_transform(studies)
with_reports = ReportGraphBuilder().fit_transform(pruned)
fused = GraphFuser(strategy="centrality").fit_transform(with_reports)
print(fused)

# %%
# The three pictures
# ------------------
# One positive held-out study: its attention with the lesion outlined in red, the pruned
# image (only the kept patches' pixels, kept cells outlined), and its fused graph (blue:
# image patches on their grid positions; the report's findings marked by status, present,
# absent or uncertain, and its anatomy in purple).
from neural_sk.plotting import plot_attention_overlay, plot_graph, show_pruned  # noqa: E402

k = int(np.flatnonzero(y_test == 1)[0])
image = X_test["image"].iloc[k]
fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
plot_attention_overlay(image, fused.attention[k], fused.grid_shape, ax=axes[0],
                       mask=masks[test][k])
axes[0].set_title("attention (lesion in red)")
show_pruned(image, fused.keep_mask[k], fused.grid_shape, ax=axes[1], mask=masks[test][k])
axes[1].set_title(f"kept {int(fused.keep_mask[k].sum())} of {fused.keep_mask.shape[1]} patches")
plot_graph(fused.graphs[k], ax=axes[2], grid_shape=fused.grid_shape)
axes[2].set_title("fused graph")
fig.tight_layout()

# %%
# The report graph on its own: findings with their status (present, absent, uncertain)
# and the anatomy they are located at.
g = fused.report_graphs[k]
print(fused.reports[k])
for name, status in zip(g.node_names, g.node_status.tolist()):
    print(f"  {name:<22} {['present', 'absent', 'uncertain'][status] if status >= 0 else 'anatomy'}")

# %%
# Did the kept patches touch the lesion?
# --------------------------------------
# A hit rate means nothing without the level that the same number of *random* patches
# would reach. With this tiny, barely trained model expect both to be close.
from neural_sk.metrics import (  # noqa: E402
    hit_rate_chance,
    kept_graph_bytes,
    lesion_hit_rate,
    patch_lesion_masks,
)

lesion = patch_lesion_masks(masks[test], fused.grid_shape)
print(f"lesion hit rate: {lesion_hit_rate(fused.keep_mask, lesion, y_test):.2f} "
      f"(chance {hit_rate_chance(fused.keep_mask, lesion, y_test):.2f})")

# %%
# And what does a study cost? The kept visual graph at float16, against the image as PNG.
from neural_sk.metrics import image_nbytes  # noqa: E402

graph_bytes = np.mean(kept_graph_bytes(fused, dtype="float16", field="visual_graphs"))
png_bytes = np.mean([image_nbytes(img) for img in X_test["image"]])
print(f"bytes per study: kept graph {graph_bytes:,.0f}, PNG {png_bytes:,.0f}")
