"""Figures for NEURAL: attention overlays, pruned images, fused graphs, rate-accuracy curves.

Every function draws on the Axes it is given (or on a new one), returns that Axes, and never
calls ``plt.show()``, so it works the same in scripts (Agg backend), notebooks and tests.

Pixels map to patches by the one rule of :mod:`neural_sk.patches`, whose pure helpers
(:func:`upsample_patch_scores`, :func:`prune_image`, :func:`extract_tiles`,
:func:`rebuild_sparse_image`) are re-exported here and work without matplotlib.
"""

from ..patches import extract_tiles, prune_image, rebuild_sparse_image, upsample_patch_scores
from .curves import plot_localization, plot_rate_accuracy
from .graph import plot_graph
from .images import plot_attention_overlay, show_pruned

__all__ = [
    "upsample_patch_scores",
    "prune_image",
    "extract_tiles",
    "rebuild_sparse_image",
    "plot_attention_overlay",
    "show_pruned",
    "plot_graph",
    "plot_rate_accuracy",
    "plot_localization",
]
