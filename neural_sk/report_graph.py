"""ReportGraphBuilder: one graph of findings (with status) and anatomy per report."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .graphs import GraphList, layout_edges, offsets
from .studies import StudySet
from .text.entities import ANATOMY, OBSERVATIONS, STATUSES, Entity, extract_entities
from .utils.validation import check_reports

__all__ = ["ReportGraphBuilder", "EDGE_TYPES"]

#: ``edge_type`` codes of report graphs.
EDGE_TYPES = ("co-occurrence", "located-at")
_STATUS_CODE = {status: code for code, status in enumerate(STATUSES)}  # present 0, absent 1, ...


class ReportGraphBuilder(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Turn each report into a small graph of findings and anatomy.

    The report side of NEURAL. The paper's graph had one node per spaCy entity with the
    constant feature 1 mapped through an untrained random projection; here every node
    carries what the report says about it, so the graph is meaningful before any training.

    Each report is read with :func:`neural_sk.text.extract_entities` (rule-based, offline):

    - nodes: one per distinct (observation, status) finding, e.g. ``pneumonia/absent`` and
      ``pleural-effusion/present``, and (``include_anatomy``) one per distinct anatomy name,
      e.g. ``right-lower-lobe``; in order of first mention;
    - edges, undirected (both directions) and without duplicates: findings mentioned in the
      same sentence form a clique (``edge_type`` 0, co-occurrence, when ``cooccurrence``),
      and each finding is linked to the anatomy of its sentence (``edge_type`` 1, located
      at);
    - node features ``x`` (float32, ``[m, n_features_out_]``): one-hot concept over
      ``vocabulary_`` (the 14 observations, then the anatomy names) | one-hot status
      (present, absent, uncertain; zeros for anatomy) | one-hot kind (finding, anatomy).

    Other graph attributes: ``node_names`` (list of str), ``node_status`` (int64: 0 present,
    1 absent, 2 uncertain, -1 anatomy), ``node_kind`` (int64: 0 finding, 1 anatomy),
    ``spans`` (int64 ``[m, 2]``: character span of the node's first mention in the report,
    so it lines up with the scorer's ``token_offsets``), ``edge_type`` (int64 ``[E]``).
    A report with nothing to read (empty, or no finding or anatomy words) gives an empty
    graph (``x`` of shape ``[0, n_features_out_]``); no study is ever dropped. An explicit
    normal statement ("no acute cardiopulmonary abnormality") is a ``no-finding`` node.

    Parameters
    ----------
    section : {"all", "findings", "impression"}, default="all"
        Which part of the report to read. ``"all"`` reads every section except the
        clinical context (indication, history, comparison, technique, ...), whose suspected
        conditions are not observations; a report without headers is read whole. The
        paper read the IMPRESSION.
    include_anatomy : bool, default=True
        Add anatomy nodes and located-at edges. When False the vocabulary is the 14
        observations only.
    cooccurrence : bool, default=True
        Link findings mentioned in the same sentence.
    batch_size : int, default=256
        Reports per spaCy batch.

    Attributes
    ----------
    vocabulary_ : tuple of str
        Concept names of the one-hot block, in column order.
    n_features_out_ : int
        Width ``R`` of the node features: ``len(vocabulary_) + 3 + 2``.

    Examples
    --------
    >>> from neural_sk.report_graph import ReportGraphBuilder
    >>> builder = ReportGraphBuilder().fit()
    >>> studies = builder.transform(["Right lower lobe consolidation. No effusion."])
    >>> g = studies.report_graphs[0]
    >>> g.node_names, g.node_status.tolist()
    (['right-lower-lobe', 'consolidation', 'pleural-effusion'], [-1, 0, 1])
    >>> g.x.shape == (3, builder.n_features_out_), g.edge_index.shape[1]
    (True, 2)
    """

    _parameter_constraints: dict = {
        "section": [StrOptions({"all", "findings", "impression"})],
        "include_anatomy": ["boolean"],
        "cooccurrence": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, section: str = "all", include_anatomy: bool = True,
                 cooccurrence: bool = True, batch_size: int = 256) -> None:
        self.section = section
        self.include_anatomy = include_anatomy
        self.cooccurrence = cooccurrence
        self.batch_size = batch_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is report text (a StudySet, a list of str or a frame with a report column).
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = False
        tags.transformer_tags.preserves_dtype = []
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any = None, y: Any = None) -> ReportGraphBuilder:
        """Check the parameters and fix the node vocabulary; nothing is learned.

        Parameters
        ----------
        X : ignored
            Accepted for pipeline compatibility.
        y : ignored

        Returns
        -------
        self : ReportGraphBuilder
        """
        self.vocabulary_ = tuple(OBSERVATIONS) + (tuple(ANATOMY) if self.include_anatomy else ())
        self.n_features_out_ = len(self.vocabulary_) + len(STATUSES) + 2
        return self

    def transform(self, X: Any) -> StudySet:
        """Build one report graph per study.

        Parameters
        ----------
        X : StudySet, list of str, pandas Series or DataFrame with a ``report`` column
            The studies' reports. A missing or empty report gives an empty graph.

        Returns
        -------
        StudySet
            ``X.replace(report_graphs=...)`` for a StudySet; otherwise a new StudySet with
            ``ids`` (a frame's ``study_id`` column, else its index), ``reports`` (missing
            ones as ``""``) and ``report_graphs``. Same length and order as ``X``.
        """
        check_is_fitted(self, "vocabulary_")
        studies = _as_studies(X)
        reports = check_reports(studies.reports, allow_empty=True, index=studies.ids.tolist())
        entities = extract_entities(reports, sections=self.section, batch_size=self.batch_size)
        _warn_if_reports_say_nothing(reports, entities)
        graphs = _graph_list([self._graph(mentions) for mentions in entities],
                             self.n_features_out_)
        if isinstance(X, StudySet):
            return studies.replace(report_graphs=graphs)
        return studies.replace(reports=reports, report_graphs=graphs)

    # ----------------------------------------------------------------------------------
    def _graph(self, mentions: list[Entity]) -> dict:
        """One report's graph as arrays (``src``/``dst``: each edge once per direction)."""
        column = {name: j for j, name in enumerate(self.vocabulary_)}
        keys: dict[tuple[str, str | None], int] = {}
        names, status, kind, spans = [], [], [], []
        sentence_findings: dict[int, list[int]] = {}
        node_of_mention = []
        for e in mentions:
            if e.kind == "anatomy" and not self.include_anatomy:
                node_of_mention.append(None)
                continue
            key = (e.concept, e.status)
            node = keys.get(key)
            if node is None:
                node = keys[key] = len(names)
                names.append(e.concept)
                status.append(-1 if e.status is None else _STATUS_CODE[e.status])
                kind.append(0 if e.kind == "finding" else 1)
                spans.append((e.start, e.end))
            node_of_mention.append(node)
            if e.kind == "finding":
                sentence_findings.setdefault(e.sentence, []).append(node)

        edges: dict[tuple[int, int], int] = {}
        if self.cooccurrence:
            for nodes in sentence_findings.values():
                unique = sorted(set(nodes))
                for a_i, a in enumerate(unique):
                    for b in unique[a_i + 1:]:
                        edges[(a, b)] = 0
        if self.include_anatomy:
            for e, node in zip(mentions, node_of_mention):
                if e.kind != "finding":
                    continue
                for place in e.anatomy:
                    other = keys.get((place, None))
                    if other is not None:
                        edges[(min(node, other), max(node, other))] = 1

        m, width = len(names), self.n_features_out_
        x = np.zeros((m, width), dtype=np.float32)
        n_concepts = len(self.vocabulary_)
        for i, (name, s, k) in enumerate(zip(names, status, kind)):
            x[i, column[name]] = 1.0
            if s >= 0:
                x[i, n_concepts + s] = 1.0
            x[i, n_concepts + len(STATUSES) + k] = 1.0
        pairs = sorted(edges)
        first = np.array([a for a, _ in pairs], dtype=np.int64)
        second = np.array([b for _, b in pairs], dtype=np.int64)
        types = np.array([edges[p] for p in pairs], dtype=np.int64)
        return {"x": x, "src": np.concatenate([first, second]),
                "dst": np.concatenate([second, first]), "edge_type": np.tile(types, 2),
                "node_names": names, "node_status": np.array(status, dtype=np.int64),
                "node_kind": np.array(kind, dtype=np.int64),
                "spans": np.array(spans, dtype=np.int64).reshape(-1, 2)}


def _graph_list(parts: list[dict], width: int) -> GraphList:
    """The report graphs of all studies as one GraphList."""
    def cat(key: str, empty: np.ndarray) -> np.ndarray:
        return np.concatenate([p[key] for p in parts]) if parts else empty

    node_ptr = offsets([p["x"].shape[0] for p in parts])
    edge_counts = np.array([p["src"].size for p in parts], dtype=np.int64)
    none = np.zeros(0, np.int64)
    flat, edge_ptr = layout_edges((cat("src", none), cat("dst", none), edge_counts))
    return GraphList({
        "x": ("rows", cat("x", np.zeros((0, width), np.float32)), node_ptr),
        "edge_index": ("edges", flat, edge_ptr),
        "edge_type": ("rows", cat("edge_type", none), edge_ptr),
        "node_names": ("objects", [p["node_names"] for p in parts], None),
        "node_status": ("rows", cat("node_status", none), node_ptr),
        "node_kind": ("rows", cat("node_kind", none), node_ptr),
        "spans": ("rows", cat("spans", np.zeros((0, 2), np.int64)), node_ptr),
    })


def _as_studies(X: Any) -> StudySet:
    """A StudySet with reports from any accepted input."""
    if isinstance(X, StudySet):
        if X.reports is None:
            raise ValueError(
                "ReportGraphBuilder needs the StudySet field 'reports'; build the StudySet "
                "with reports=... or pass the report texts"
            )
        return X
    if isinstance(X, pd.DataFrame):
        if "report" not in X.columns:
            raise ValueError(f"X is missing column 'report'; it has {list(X.columns)}")
        ids = X["study_id"].to_numpy() if "study_id" in X.columns else X.index.to_numpy()
        return StudySet(ids=ids, reports=list(X["report"]))
    if isinstance(X, pd.Series):
        return StudySet(ids=X.index.to_numpy(), reports=list(X))
    if isinstance(X, str):
        raise TypeError("X must be a sequence of reports, not one str; wrap it in a list")
    if isinstance(X, np.ndarray) and X.ndim != 1:
        raise ValueError(f"X must be 1-D (one report per study), got shape {X.shape}")
    try:
        reports = list(X)
    except TypeError:
        raise TypeError(
            "X must be a StudySet, a list of report strings or a DataFrame with a 'report' "
            f"column, got {type(X).__name__}"
        ) from None
    return StudySet(reports=reports)


# A call where at least this share of the non-empty reports gives no finding is reported.
_UNREAD_SHARE = 0.5


def _warn_if_reports_say_nothing(reports: list[str], entities: list[list[Entity]]) -> None:
    """One warning when the report half of the graphs is empty or mostly so, and why."""
    if not reports:
        return
    written = [i for i, text in enumerate(reports) if text.strip()]
    if not written:
        warnings.warn(f"all {len(reports)} reports are empty, so every report graph is empty "
                      "and the fused graphs carry the image only (is the 'report' column "
                      "missing, or were no reports generated?)", UserWarning, stacklevel=3)
        return
    silent = [i for i in written if not any(e.kind == "finding" for e in entities[i])]
    if len(silent) == len(written):
        warnings.warn(f"no finding could be read in any of the {len(written)} non-empty "
                      "reports (the reader knows English radiology terms), so the report "
                      f"graphs say nothing; first such report: {reports[silent[0]][:80]!r}",
                      UserWarning, stacklevel=3)
    elif len(silent) >= _UNREAD_SHARE * len(written):
        warnings.warn(f"{len(silent)} of {len(written)} non-empty reports "
                      f"({len(silent) / len(written):.0%}) give no finding, so their report "
                      f"graphs say nothing; first such report: {reports[silent[0]][:80]!r}",
                      UserWarning, stacklevel=3)
