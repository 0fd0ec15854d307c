"""GraphFuser: join each study's visual graph and report graph into one graph."""

from __future__ import annotations

from numbers import Integral
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .graphs import FUSION_STRATEGIES, fuse_graphs, node_feature_width
from .studies import StudySet

__all__ = ["GraphFuser"]


class GraphFuser(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Join each study's visual graph and report graph into one graph with shared features.

    Node features of the fused graph are ``[visual features | report features | modality
    flag]``, with zeros where a node has no features of that kind (no untrained projection:
    each block keeps its meaning), and ``node_type`` says which is which (0 visual,
    1 report). Visual nodes come first, in their original order, then report nodes.

    Parameters
    ----------
    strategy : {"centrality", "grounded", "visual", "report"}, default="centrality"
        How the two graphs are joined:

        - ``"centrality"``: the paper's fusion, one undirected edge between the most
          betweenness-central node of each graph (ties go to the most attended patch and
          to the first report node).
        - ``"grounded"``: each finding node of the report graph is linked to the
          ``grounding_k`` kept patches that its report tokens attended to most (the
          tokens whose character offsets overlap the node's span, averaged; needs the
          scorer's ``token_attention`` and ``token_offsets``). A finding none of whose
          tokens overlaps is linked to the most central patch; a report graph without
          finding nodes gets the centrality edge.
        - ``"visual"`` / ``"report"``: one modality only, for ablations (the other block of
          features has width 0).
    grounding_k : int >= 1, default=1
        Patches each finding node is linked to with ``strategy="grounded"``.

    Attributes
    ----------
    visual_dim_ : int
        Width of the visual block of the node features (0 for ``"report"``).
    report_dim_ : int
        Width of the report block (0 for ``"visual"``).
    n_node_features_ : int
        ``visual_dim_ + report_dim_ + 1``.

    Examples
    --------
    >>> import torch
    >>> from torch_geometric.data import Data
    >>> from neural_sk import StudySet
    >>> from neural_sk.fusion import GraphFuser
    >>> visual = Data(x=torch.ones(2, 3), edge_index=torch.tensor([[0, 1], [1, 0]]))
    >>> report = Data(x=torch.ones(3, 4), edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]))
    >>> studies = StudySet(visual_graphs=[visual], report_graphs=[report])
    >>> fused = GraphFuser().fit_transform(studies).graphs[0]
    >>> fused.x.shape, fused.edge_index.shape[1], fused.node_type.tolist()
    (torch.Size([5, 8]), 8, [0, 0, 1, 1, 1])
    """

    _parameter_constraints: dict = {
        "strategy": [StrOptions(set(FUSION_STRATEGIES))],
        "grounding_k": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, strategy: str = "centrality", grounding_k: int = 1) -> None:
        self.strategy = strategy
        self.grounding_k = grounding_k

    def _check(self, studies: Any) -> tuple[int, int]:
        """Check the StudySet and return the widths of the visual and report features."""
        if not isinstance(studies, StudySet):
            raise TypeError(f"GraphFuser expects a StudySet, got {type(studies).__name__}")
        needs = FUSION_STRATEGIES[self.strategy]
        missing = [f for f in needs if getattr(studies, f) is None]
        if missing:
            raise ValueError(
                f"GraphFuser(strategy={self.strategy!r}) needs the StudySet fields {missing}"
                + ("; the scorer must return per-token attention for grounded fusion"
                   if "token_attention" in missing else "")
            )
        return tuple(node_feature_width(getattr(studies, f), f, studies.ids)
                     if f in needs else 0 for f in ("visual_graphs", "report_graphs"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: StudySet, y: Any = None) -> GraphFuser:
        """Check the parameters and remember the feature widths of both graphs.

        Parameters
        ----------
        X : StudySet
            Studies with ``visual_graphs`` and/or ``report_graphs`` (see ``strategy``).
        y : ignored

        Returns
        -------
        self : GraphFuser
        """
        self._set_dims(self._check(X))
        return self

    def transform(self, X: StudySet) -> StudySet:
        """Fuse each study's graphs; returns ``X`` with ``graphs`` (one per study, in order).

        Each fused graph has ``x`` float32 ``[k + m, visual_dim_ + report_dim_ + 1]``,
        ``edge_index`` int64 (both directions: visual edges, report edges, then cross-modal
        edges), ``node_type`` int64 (0 visual, 1 report), ``pos`` float32 ``[k + m, 2]``
        (grid row and column of visual nodes, NaN for report nodes), and, when the inputs
        have them, ``patch_id`` (of the visual nodes), ``node_names`` and ``node_status``
        (of the report nodes: 0 present, 1 absent, 2 uncertain, -1 anatomy; -1 for visual
        nodes).

        Parameters
        ----------
        X : StudySet

        Returns
        -------
        StudySet
        """
        check_is_fitted(self, "n_node_features_")
        self._check(X)
        return self._fuse(X)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X: StudySet, y: Any = None) -> StudySet:
        """Fit and transform in one pass over the graphs (same result as ``fit(X).transform(X)``).

        Parameters
        ----------
        X : StudySet
        y : ignored

        Returns
        -------
        StudySet
        """
        self._set_dims(self._check(X))
        return self._fuse(X)

    def _set_dims(self, dims: tuple[int, int]) -> None:
        self.visual_dim_, self.report_dim_ = dims
        self.n_node_features_ = self.visual_dim_ + self.report_dim_ + 1

    def _fuse(self, X: StudySet) -> StudySet:
        graphs = fuse_graphs(
            X.visual_graphs, X.report_graphs, strategy=self.strategy,
            grounding_k=self.grounding_k, token_attention=X.token_attention,
            token_offsets=X.token_offsets, visual_dim=self.visual_dim_,
            report_dim=self.report_dim_, ids=X.ids,
        )
        return X.replace(graphs=graphs)
