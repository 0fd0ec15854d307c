"""Evidence metrics: does the pruning keep the lesion, and how many bytes does a study cost?

Two families, both pure NumPy and vectorised over studies:

- **Localisation** (:mod:`neural_sk.metrics.localization`): :func:`lesion_hit_rate`,
  :func:`top_fraction_hit_rate`, :func:`hit_at_k` and :func:`enrichment`, each with its
  chance level, and :func:`patch_reduction` (share of patches dropped). The lesion patches
  come from :func:`patch_lesion_masks` (the patch grid's own function, re-exported here).
- **Bytes** (:mod:`neural_sk.metrics.bytes`): :func:`graph_nbytes`, :func:`kept_graph_bytes`,
  :func:`archive_bytes_per_study` (what the archive writes), :func:`image_nbytes`,
  :func:`source_nbytes`.
- **Many findings** (:mod:`neural_sk.metrics.multilabel`): :func:`per_label_auc` (over the
  studies where each label is known) and :func:`per_finding_hit_rate` (each finding's mask
  against the kept patches, with its chance level).
- **Report quality** (:mod:`neural_sk.metrics.clinical`): :func:`clinical_efficacy`, the
  findings a generated report states against those of the reference report.
"""

from ..patches import patch_lesion_masks
from .clinical import clinical_efficacy
from .bytes import (archive_bytes_per_study, graph_nbytes, image_nbytes, kept_graph_bytes,
                    source_nbytes)
from .localization import (
    enrichment,
    hit_at_k,
    hit_at_k_chance,
    hit_rate_chance,
    lesion_hit_rate,
    patch_reduction,
    top_fraction_chance,
    top_fraction_hit_rate,
)
from .multilabel import per_finding_hit_rate, per_label_auc

__all__ = [
    "patch_lesion_masks",
    "lesion_hit_rate",
    "hit_rate_chance",
    "top_fraction_hit_rate",
    "top_fraction_chance",
    "hit_at_k",
    "hit_at_k_chance",
    "enrichment",
    "graph_nbytes",
    "kept_graph_bytes",
    "archive_bytes_per_study",
    "image_nbytes",
    "source_nbytes",
    "patch_reduction",
    "clinical_efficacy",
    "per_label_auc",
    "per_finding_hit_rate",
]
