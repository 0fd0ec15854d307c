"""PatchPruner: keep the most attended image patches of each study as a grid graph."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .graphs import GraphList, batch_subgraph_edges, edge_blocks, grid_edges, offsets, top_k_mask
from .studies import StudySet

__all__ = ["PatchPruner"]

_NODE_FEATURES = {
    "features",
    "features+attention",
    "features+position",
    "features+attention+position",
}


def _check_studies(studies: Any, *, need_features: bool = True) -> StudySet:
    if not isinstance(studies, StudySet):
        raise TypeError(
            f"PatchPruner expects a StudySet (the output of AttentionScorer.transform), "
            f"got {type(studies).__name__}"
        )
    missing = [name for name in ("attention", "grid_shape") if getattr(studies, name) is None]
    if need_features and studies.patch_features is None:
        missing.append("patch_features")
    if missing:
        raise ValueError(
            f"PatchPruner needs the StudySet fields {missing}; score the studies with "
            f"AttentionScorer first"
        )
    att = studies.attention
    bad = ~np.isfinite(att).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"study {studies.ids[row]!r} (row {row}) has non-finite attention scores"
        )
    if need_features:
        feats = studies.patch_features
        if feats.ndim != 3 or feats.shape[:2] != att.shape:
            raise ValueError(
                f"patch_features must have shape (n, P, d) = {att.shape + ('d',)}, "
                f"got {feats.shape}"
            )
    return studies


class PatchPruner(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Keep the highest-scoring image patches of each study and link them as a grid graph.

    The step between :class:`~neural_sk.AttentionScorer` and the graph steps: from the
    per-patch attention of each study it keeps a few patches (the paper keeps 2.3%) and
    builds a visual graph whose nodes are the kept patches (their encoder features) and
    whose edges join kept patches that are neighbours in the patch grid.

    Exactly one of ``keep_ratio``, ``top_k`` and ``threshold`` must be set; set the other
    two to None.

    Parameters
    ----------
    keep_ratio : float in (0, 1] or None, default=0.023
        Share of the ``P`` patches kept per study: ``max(min_patches, ceil(keep_ratio * P))``
        patches (ceil, so that 0.023 keeps 4 of 144 and 5 of 196 patches, as the paper's
        "above the 97.7th percentile" rule does).
    top_k : int >= 1 or None, default=None
        Keep this many patches per study (at least ``min_patches``).
    threshold : float >= 0 or None, default=None
        Keep the patches whose attention is at least ``threshold`` (rows of ``attention``
        sum to 1, so uniform attention is ``1 / P``), and at least ``min_patches`` of them.
    min_patches : int >= 1, default=1
        Fewest patches kept per study, whatever the rule above says.
    connectivity : {4, 8}, default=4
        Grid edges between kept patches: 4 neighbours (the paper) or 8 (with diagonals).
    rank_by : {"attention", "random"}, default="attention"
        ``"random"`` keeps as many patches as ``"attention"`` would, chosen at random: the
        control that shows whether attention chose well.
    node_features : {"features", "features+attention", "features+position", \
"features+attention+position"}, default="features+attention"
        Node features of the visual graph: the kept patches' encoder features, optionally
        followed by their attention relative to uniform (``attention * P``, so 1 is
        average: how strongly the study concentrates on the patch) and their position
        ``(row / (h - 1), col / (w - 1))`` in [0, 1].
    random_state : int, RandomState instance or None, default=None
        Seed of ``rank_by="random"``. With an int, ``transform`` picks the same patches on
        every call.

    Attributes
    ----------
    grid_shape_ : tuple of int
        Patch grid ``(h, w)`` seen in ``fit``; ``transform`` requires the same.
    n_patches_ : int
        ``h * w``.
    feature_dim_ : int
        Width ``d`` of the patch features seen in ``fit``.
    n_node_features_ : int
        Width of the visual graphs' node features.

    Examples
    --------
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> from neural_sk.pruning import PatchPruner
    >>> att = np.full((1, 16), 0.01, dtype=np.float32)
    >>> att[0, [5, 6, 15]] = [0.3, 0.3, 0.25]
    >>> studies = StudySet(attention=att, patch_features=np.ones((1, 16, 3), np.float32),
    ...                    grid_shape=(4, 4))
    >>> out = PatchPruner(keep_ratio=None, top_k=3).fit_transform(studies)
    >>> np.flatnonzero(out.keep_mask[0]).tolist()
    [5, 6, 15]
    >>> out.visual_graphs[0].edge_index.tolist()  # only patches 5 and 6 are neighbours
    [[0, 1], [1, 0]]
    """

    _parameter_constraints: dict = {
        "keep_ratio": [Interval(Real, 0, 1, closed="right"), None],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "threshold": [Interval(Real, 0, None, closed="left"), None],
        "min_patches": [Interval(Integral, 1, None, closed="left")],
        "connectivity": [Options(Integral, {4, 8})],
        "rank_by": [StrOptions({"attention", "random"})],
        "node_features": [StrOptions(_NODE_FEATURES)],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        keep_ratio: float | None = 0.023,
        top_k: int | None = None,
        threshold: float | None = None,
        min_patches: int = 1,
        connectivity: int = 4,
        rank_by: str = "attention",
        node_features: str = "features+attention",
        random_state: Any = None,
    ) -> None:
        self.keep_ratio = keep_ratio
        self.top_k = top_k
        self.threshold = threshold
        self.min_patches = min_patches
        self.connectivity = connectivity
        self.rank_by = rank_by
        self.node_features = node_features
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: StudySet, y: Any = None) -> PatchPruner:
        """Check the parameters and remember the patch grid and feature width of ``X``.

        Parameters
        ----------
        X : StudySet
            Scored studies with ``attention``, ``patch_features`` and ``grid_shape``.
        y : ignored

        Returns
        -------
        self : PatchPruner
        """
        rules = {"keep_ratio": self.keep_ratio, "top_k": self.top_k,
                 "threshold": self.threshold}
        given = [name for name, value in rules.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "PatchPruner needs exactly one of keep_ratio, top_k and threshold; "
                + (f"got {', '.join(f'{n}={rules[n]!r}' for n in given)}: set the others "
                   "to None (keep_ratio defaults to 0.023)" if given else "all are None")
            )
        studies = _check_studies(X)
        self.grid_shape_ = tuple(studies.grid_shape)
        self.n_patches_ = self.grid_shape_[0] * self.grid_shape_[1]
        self.feature_dim_ = int(studies.patch_features.shape[2])
        extra = ("attention" in self.node_features) + 2 * ("position" in self.node_features)
        self.n_node_features_ = self.feature_dim_ + extra
        return self

    # -- selection --------------------------------------------------------------------------
    def _keep_counts(self, attention: np.ndarray) -> np.ndarray:
        n, p = attention.shape
        if self.threshold is not None:
            counts = (attention >= self.threshold).sum(axis=1)
        elif self.top_k is not None:
            counts = np.full(n, self.top_k)
        else:
            # The epsilon keeps ratios that land exactly on an integer (0.25 * 8) from
            # rounding up through floating-point error.
            counts = np.full(n, math.ceil(self.keep_ratio * p - 1e-9))
        return np.clip(np.maximum(counts, self.min_patches), 0, p).astype(np.int64)

    def _select(self, attention: np.ndarray) -> np.ndarray:
        n, p = attention.shape
        counts = self._keep_counts(attention)
        if n == 0:
            return np.zeros((0, p), dtype=bool)
        if self.rank_by == "random":
            rng = check_random_state(self.random_state)
            # Rank of each patch in a random order; keep the first counts[i] of study i.
            order = np.argsort(rng.random_sample((n, p)), axis=1)
            ranks = np.empty_like(order)
            np.put_along_axis(ranks, order, np.arange(p)[None, :].repeat(n, 0), axis=1)
            return ranks < counts[:, None]
        if self.threshold is not None:
            return (attention >= self.threshold) | top_k_mask(attention, self.min_patches)
        return top_k_mask(attention, int(counts[0]))

    # -- graphs -----------------------------------------------------------------------------
    def _node_features(self, studies: StudySet, rows: np.ndarray, cols: np.ndarray,
                       attention: np.ndarray) -> np.ndarray:
        h, w = studies.grid_shape
        feats = studies.patch_features
        n, p, d = feats.shape
        out = np.empty((rows.size, self.n_node_features_), dtype=np.float32)
        # One flat gather (a reshape is free when the array is contiguous).
        out[:, :d] = (feats.reshape(n * p, d)[rows * p + cols] if feats.flags.c_contiguous
                      else feats[rows, cols])
        col = d
        if "attention" in self.node_features:
            out[:, col] = attention * np.float32(h * w)
            col += 1
        if "position" in self.node_features:
            out[:, col] = cols // w / max(h - 1, 1)
            out[:, col + 1] = cols % w / max(w - 1, 1)
        return out

    def transform(self, X: StudySet) -> StudySet:
        """Keep the top patches of each study and build its visual graph.

        Parameters
        ----------
        X : StudySet
            Scored studies (same patch grid and feature width as in ``fit``).

        Returns
        -------
        StudySet
            ``X`` with ``keep_mask`` (bool ``[n, P]``) and ``visual_graphs`` (one
            ``torch_geometric.data.Data`` per study, in order: ``x`` float32 ``[k, d']``,
            ``edge_index`` int64 ``[2, E]`` both directions, ``pos`` float32 ``[k, 2]``
            (row, col), ``patch_id`` int64 ``[k]`` (the patch of each node; not named
            ``*_index``, which PyG would shift when batching), ``attention`` float32 ``[k]``; nodes
            in increasing patch index), as a :class:`~neural_sk.graphs.GraphList`.
        """
        check_is_fitted(self, "grid_shape_")
        studies = _check_studies(X)
        if tuple(studies.grid_shape) != self.grid_shape_:
            raise ValueError(
                f"studies have patch grid {tuple(studies.grid_shape)} but PatchPruner was "
                f"fitted on {self.grid_shape_}"
            )
        if studies.patch_features.shape[2] != self.feature_dim_:
            raise ValueError(
                f"studies have {studies.patch_features.shape[2]}-d patch features but "
                f"PatchPruner was fitted on {self.feature_dim_}-d"
            )
        attention = studies.attention
        keep = self._select(attention)

        # All kept patches of all studies at once, study after study, by patch index.
        rows, cols = np.divmod(np.flatnonzero(keep), keep.shape[1])
        node_offsets = offsets(np.bincount(rows, minlength=len(studies)))
        att_all = attention[rows, cols].astype(np.float32, copy=False)
        x_all = self._node_features(studies, rows, cols, att_all)
        # Only kept patches become nodes: checking those is enough, and far cheaper than
        # every patch of every study. Rows are searched only when something is wrong.
        if not np.isfinite(x_all).all():
            bad = ~np.isfinite(x_all).all(axis=1)
            if bad.any():
                row = int(rows[np.flatnonzero(bad)[0]])
                raise ValueError(
                    f"study {studies.ids[row]!r} (row {row}) has non-finite patch features"
                )
        w = self.grid_shape_[1]
        pos_all = np.empty((rows.size, 2), dtype=np.float32)
        pos_all[:, 0] = cols // w
        pos_all[:, 1] = cols % w
        pairs, edge_offsets = batch_subgraph_edges(
            grid_edges(self.grid_shape_, self.connectivity), keep)
        flat = edge_blocks(pairs, edge_offsets)

        graphs = GraphList({
            "x": ("rows", x_all, node_offsets),
            "edge_index": ("edges", flat, edge_offsets),
            "pos": ("rows", pos_all, node_offsets),
            "patch_id": ("rows", cols, node_offsets),
            "attention": ("rows", att_all, node_offsets),
        })
        return studies.replace(keep_mask=keep, visual_graphs=graphs)

    def kept_fraction(self, X: StudySet, *, average: bool = False) -> np.ndarray | float:
        """Share of patches kept per study (or on average) in a pruned StudySet.

        Parameters
        ----------
        X : StudySet
            The output of :meth:`transform` (anything with a ``keep_mask``).
        average : bool, default=False
            Return the mean over studies instead of one value per study.

        Returns
        -------
        ndarray of shape (n,) or float

        Examples
        --------
        >>> import numpy as np
        >>> from neural_sk import StudySet
        >>> s = StudySet(keep_mask=np.array([[True, False, False, False]] * 2))
        >>> PatchPruner().kept_fraction(s, average=True)
        0.25
        """
        if getattr(X, "keep_mask", None) is None:
            raise ValueError("kept_fraction needs a pruned StudySet (keep_mask is None)")
        fraction = np.asarray(X.keep_mask, dtype=bool).mean(axis=1)
        return float(fraction.mean()) if average else fraction
