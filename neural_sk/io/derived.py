"""What an archive does not store because it is rebuilt exactly on load.

Each check here runs when an archive is written and answers one question: is this field (or
attribute) exactly what a pure function makes from fields the archive stores anyway? When
it is, the writer stores how to rebuild it (a few words of metadata) instead of its arrays:

- the fused graphs: :func:`neural_sk.graphs.fuse_graphs` of the visual and report graphs
  with the fuser's strategy (:func:`fused_strategy`);
- the keep mask: one bit per patch set at the visual graphs' ``patch_id``
  (:func:`mask_from_patch_ids`);
- the visual graphs' ``pos``: the grid row and column of each ``patch_id``
  (:func:`grid_positions`).

Anything that does not match exactly (a user's own graphs, another fusion) is stored as it
is, so a round trip never changes a value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..graphs import FUSION_STRATEGIES, GraphList, fuse_graphs

__all__ = ["same_graphs", "fused_strategy", "rebuild_fused", "mask_from_patch_ids",
           "grid_positions"]

# Tried in this order; "grounded" needs the token attention and is stored as it is.
_STRATEGIES = ("centrality", "visual", "report")


def _same_values(a: Any, b: Any) -> bool:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    if hasattr(b, "detach"):
        b = b.detach().cpu().numpy()
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return a == b


def same_graphs(a: GraphList, b: GraphList) -> bool:
    """True when two GraphLists hold the same attributes, in the same order, with the same
    dtypes, offsets and values (NaN equal to NaN)."""
    if len(a) != len(b) or a.keys != b.keys:
        return False
    for key in a.keys:
        va, pa = a.flat(key)
        vb, pb = b.flat(key)
        if (pa is None) != (pb is None):
            return False
        if pa is None:
            if len(va) != len(vb) or not all(_same_values(x, y) for x, y in zip(va, vb)):
                return False
        elif not (np.array_equal(pa, pb) and _same_values(va, vb)):
            return False
    return True


def fused_strategy(fused: GraphList, visual: GraphList | None,
                   report: GraphList | None) -> str | None:
    """The fusion strategy that rebuilds ``fused`` exactly from ``visual`` and ``report``
    (the graphs as given to the writer), or None."""
    if len(fused) == 0:
        return None
    counts = fused.node_counts
    for strategy in _STRATEGIES:
        sides = [g for f, g in (("visual_graphs", visual), ("report_graphs", report))
                 if f in FUSION_STRATEGIES[strategy]]
        if any(g is None or len(g) != len(fused) for g in sides):
            continue
        # Cheap first: the node counts must add up before the fuse is worth running.
        if not np.array_equal(counts, sum(g.node_counts for g in sides)):
            continue
        try:
            rebuilt = fuse_graphs(visual, report, strategy=strategy)
        except (ValueError, TypeError, KeyError, IndexError):
            continue
        if same_graphs(rebuilt, fused):
            return strategy
    return None


def rebuild_fused(spec: dict, visual: GraphList | None, report: GraphList | None) -> GraphList:
    """The fused graphs a ``{"kind": "fused"}`` spec describes."""
    strategy = spec["strategy"]
    if strategy not in _STRATEGIES:
        raise ValueError(f"fused graphs with strategy {strategy!r} cannot be rebuilt")
    return fuse_graphs(visual, report, strategy=strategy)


def mask_from_patch_ids(patch_id: np.ndarray, counts: np.ndarray, n_patches: int
                        ) -> np.ndarray:
    """The ``[n, n_patches]`` keep mask whose row ``i`` is set at graph ``i``'s patch ids."""
    n = len(counts)
    mask = np.zeros((n, n_patches), dtype=bool)
    if patch_id.size:
        mask[np.repeat(np.arange(n), counts), patch_id.astype(np.int64)] = True
    return mask


def grid_positions(patch_id: np.ndarray, width: int, dtype: Any) -> np.ndarray:
    """``(row, col)`` of each patch on a grid ``width`` patches wide, in ``dtype``."""
    patch_id = patch_id.astype(np.int64).reshape(-1)
    return np.stack([patch_id // width, patch_id % width], axis=1).astype(dtype)
