"""ReportGraphBuilder: report text -> graphs of findings and anatomy."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from neural_sk import StudySet
from neural_sk.report_graph import EDGE_TYPES, ReportGraphBuilder
from neural_sk.text import ANATOMY, OBSERVATIONS

REPORT = ("FINDINGS: Right lower lobe consolidation and small pleural effusion. "
          "No pneumothorax.\nIMPRESSION: Right lower lobe pneumonia.")


@pytest.fixture(scope="module")
def builder():
    return ReportGraphBuilder().fit()


def edge_set(graph, kind=None):
    pairs = graph.edge_index.t().tolist()
    types = graph.edge_type.tolist()
    return {(graph.node_names[a], graph.node_names[b])
            for (a, b), t in zip(pairs, types) if kind is None or EDGE_TYPES[t] == kind}


def test_graph_of_a_known_report(builder):
    graph = builder.transform([REPORT]).report_graphs[0]
    assert graph.node_names == ["right-lower-lobe", "consolidation", "pleural-effusion",
                                "pneumothorax", "pneumonia"]
    assert graph.node_status.tolist() == [-1, 0, 0, 1, 0]
    assert graph.node_kind.tolist() == [1, 0, 0, 0, 0]
    # consolidation - effusion co-occur; both sit in the right lower lobe, and so does the
    # pneumonia of the impression; the pneumothorax sentence names no place.
    assert edge_set(graph, "co-occurrence") == {("consolidation", "pleural-effusion"),
                                                ("pleural-effusion", "consolidation")}
    assert edge_set(graph, "located-at") == {
        (a, b) for f in ("consolidation", "pleural-effusion", "pneumonia")
        for a, b in ((f, "right-lower-lobe"), ("right-lower-lobe", f))}
    assert graph.edge_index.shape == (2, 8) and graph.edge_index.dtype == torch.long
    assert graph.num_nodes == 5


def test_node_features_are_one_hot_blocks(builder):
    graph = builder.transform([REPORT]).report_graphs[0]
    vocab = builder.vocabulary_
    assert vocab == tuple(OBSERVATIONS) + tuple(ANATOMY)
    assert builder.n_features_out_ == len(vocab) + 5
    x = graph.x.numpy()
    assert x.dtype == np.float32 and x.shape == (5, builder.n_features_out_)
    concept, status, kind = x[:, :len(vocab)], x[:, len(vocab):-2], x[:, -2:]
    assert [vocab[j] for j in concept.argmax(1)] == graph.node_names
    assert (concept.sum(1) == 1).all() and (kind.sum(1) == 1).all()
    np.testing.assert_array_equal(kind.argmax(1), graph.node_kind.numpy())
    findings = graph.node_kind.numpy() == 0
    np.testing.assert_array_equal(status[findings].argmax(1), graph.node_status[findings])
    assert (status[~findings] == 0).all()


def test_status_distinguishes_nodes(builder):
    graph = builder.transform(["No pneumonia. Possible pneumonia at the left base."]
                              ).report_graphs[0]
    pneumonia = [(n, s) for n, s in zip(graph.node_names, graph.node_status.tolist())
                 if n == "pneumonia"]
    assert pneumonia == [("pneumonia", 1), ("pneumonia", 2)]


def test_spans_point_at_the_first_mention(builder):
    graph = builder.transform([REPORT]).report_graphs[0]
    texts = [REPORT[s:e] for s, e in graph.spans.tolist()]
    assert texts == ["Right lower lobe", "consolidation", "pleural effusion", "pneumothorax",
                     "pneumonia"]


@pytest.mark.parametrize("report", ["", None, "   ", "Chest, two views."])
def test_nothing_to_read_gives_an_empty_graph(builder, report):
    graph = builder.transform([report]).report_graphs[0]
    assert graph.x.shape == (0, builder.n_features_out_)
    assert graph.edge_index.shape == (2, 0)
    assert graph.spans.shape == (0, 2) and graph.node_names == []


def test_n_in_equals_n_out_and_studyset_is_not_modified(builder):
    studies = StudySet(ids=np.array([7, 8, 9]), reports=[REPORT, "", "No effusion."])
    out = builder.transform(studies)
    assert len(out) == 3 and studies.report_graphs is None
    assert out.reports is studies.reports and list(out.ids) == [7, 8, 9]
    assert [g.num_nodes for g in out.report_graphs] == [5, 0, 1]


def test_frame_series_and_list_inputs(builder):
    frame = pd.DataFrame({"report": [REPORT, None], "study_id": ["a", "b"]})
    out = builder.transform(frame)
    assert list(out.ids) == ["a", "b"] and out.reports == [REPORT, ""]
    series = pd.Series(["No pneumonia."], index=[42])
    assert list(builder.transform(series).ids) == [42]
    assert len(builder.transform(np.array(["a", "b"], dtype=object))) == 2


def test_bad_inputs_name_the_problem(builder):
    with pytest.raises(ValueError, match="'report'"):
        builder.transform(pd.DataFrame({"text": ["x"]}))
    with pytest.raises(ValueError, match="reports"):
        builder.transform(StudySet(ids=[0]))
    with pytest.raises(TypeError, match="not one str"):
        builder.transform("No pneumonia.")
    with pytest.raises(TypeError, match="row 1"):
        builder.transform(["ok", 3])
    with pytest.raises(InvalidParameterError, match="section"):
        ReportGraphBuilder(section="body").fit()
    with pytest.raises(NotFittedError):
        ReportGraphBuilder().transform(["x"])


def test_without_anatomy_and_cooccurrence():
    builder = ReportGraphBuilder(include_anatomy=False, cooccurrence=False).fit()
    assert builder.n_features_out_ == len(OBSERVATIONS) + 5
    graph = builder.transform([REPORT]).report_graphs[0]
    assert graph.node_names == ["consolidation", "pleural-effusion", "pneumothorax",
                                "pneumonia"]
    assert graph.edge_index.shape == (2, 0)


def test_section_choice():
    graph = ReportGraphBuilder(section="impression").fit_transform([REPORT]).report_graphs[0]
    assert graph.node_names == ["right-lower-lobe", "pneumonia"]
    graph = ReportGraphBuilder(section="findings").fit_transform([REPORT]).report_graphs[0]
    assert "pneumonia" not in graph.node_names


def test_sklearn_plumbing(builder):
    assert clone(builder).get_params() == builder.get_params()
    tags = builder.__sklearn_tags__()
    assert not tags.input_tags.two_d_array and not tags.target_tags.required
    assert not hasattr(builder, "set_output")
    restored = pickle.loads(pickle.dumps(builder))
    assert restored.transform(["No pneumonia."]).report_graphs[0].node_names == ["pneumonia"]
    pipe = make_pipeline(ReportGraphBuilder())
    assert len(pipe.fit_transform(["a", "b", "c"])) == 3
