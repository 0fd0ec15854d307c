"""
Many findings at once: one attention map per label
==================================================

MIMIC-CXR and CheXpert users predict several observations, not one label. Give ``y`` as a
2-D indicator (a DataFrame of observations, scikit-learn's multilabel-indicator format) and
the chain learns them together:

- the scorer's classification head has one attention-MIL map per label, kept in
  ``StudySet.label_attention``; ``attention`` (what the pruner ranks) is their max, or
  the mean, or one label's map (``attention_label``);
- the GNN has one output per label: ``predict_proba`` is (n, k), as scikit-learn's
  ``MLPClassifier`` gives on multi-label targets;
- unknown entries (NaN: the report does not mention the finding) stay out of the loss, and
  uncertain ones (-1) follow ``uncertain`` ("ignore", "ones" or "zeros").

Labels can be read from the reports themselves with
:func:`neural_sk.text.labels_from_reports`. The settings are tiny, so the maps show what
the steps produce, not how well they work: ``benchmarks/bench_multilabel.py`` measures that
with the pretrained encoder.
"""

# %%
# Three findings, labelled from the reports
# -----------------------------------------
# The synthetic set draws pneumonia (in a lung zone), pleural effusion (at the
# costophrenic angle) and cardiomegaly (an enlarged heart), independently, with a mask for
# each and reports that mention them.
import matplotlib.pyplot as plt
import numpy as np

from neural_sk import AttentionScorer, PatchPruner
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.gnn import GNNClassifier
from neural_sk.metrics import patch_lesion_masks, per_finding_hit_rate, per_label_auc
from neural_sk.text import labels_from_reports

findings = ("pneumonia", "pleural-effusion", "cardiomegaly")
n_studies, image_size, epochs = 48, 128, 3
# sphinx_gallery_start_ignore
import os  # noqa: E402

if os.environ.get("NEURAL_SK_DOCS_QUICK"):
    n_studies, image_size, epochs = 24, 64, 1
# sphinx_gallery_end_ignore
X, Y, masks = make_synthetic_cxr(n_studies, image_size=image_size, random_state=0,
                                 return_masks=True, findings=findings)
y_read, known = labels_from_reports(X["report"], observations=findings)
targets = y_read.where(known)  # NaN where the report does not mention the finding
print(targets.head())

# %%
# Fit the scorer and the GNN on the report labels
# -----------------------------------------------
# ``attention`` is the max over the labels' maps, so the pruner keeps the patches that
# matter to any of the findings.
scorer = AttentionScorer(vision_model="tiny-swin", text_model=None, image_size=image_size,
                         epochs=epochs, random_state=0).fit(X, targets)
studies = scorer.transform(X)
print(studies)
pruned = PatchPruner(keep_ratio=0.125).fit_transform(studies)
gnn = GNNClassifier(hidden_dim=16, epochs=20, random_state=0).fit(pruned, targets)
proba = gnn.predict_proba(pruned)
print("predict_proba:", proba.shape, "| AUC per label (training studies):",
      {k: round(v, 2) for k, v in per_label_auc(Y, proba, labels=findings).items()})

# %%
# Per-label attention
# -------------------
# One study with every finding it has outlined in red: the map each label learned, and the
# joint map the pruner ranked.
from neural_sk.plotting import plot_attention_overlay  # noqa: E402

k = int(np.argmax(Y.sum(1)))
fig, axes = plt.subplots(1, len(findings) + 1, figsize=(4 * (len(findings) + 1), 4.2))
for j, name in enumerate(findings):
    plot_attention_overlay(X["image"][k], studies.label_attention[k, j], studies.grid_shape,
                           ax=axes[j], mask=masks[k, j] if Y[k, j] else None)
    axes[j].set_title(f"{name} (y={Y[k, j]})")
plot_attention_overlay(X["image"][k], studies.attention[k], studies.grid_shape, ax=axes[-1])
axes[-1].set_title(f"attention_label={scorer.attention_label!r}")
for ax in axes:
    ax.axis("off")
fig.tight_layout()

# %%
# Do the kept patches touch each finding?
# ---------------------------------------
# Per finding, the share of the studies that have it whose kept patches touch its mask,
# beside the chance level of as many random patches.
lesion = np.stack([patch_lesion_masks(masks[:, j], studies.grid_shape)
                   for j in range(len(findings))], axis=1)
for name, row in per_finding_hit_rate(pruned.keep_mask, lesion, Y, labels=findings).items():
    print(f"{name:<17} hit rate {row['hit_rate']:.2f} (chance {row['chance']:.2f}, "
          f"{row['n_positive']} studies)")
