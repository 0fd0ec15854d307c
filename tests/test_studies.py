import pickle

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from neural_sk import StudySet
from neural_sk.studies import concat_study_sets


@pytest.fixture()
def studies():
    n, P = 5, 4
    att = np.random.default_rng(0).random((n, P)).astype(np.float32)
    att /= att.sum(1, keepdims=True)
    graphs = [Data(x=torch.full((i + 1, 3), float(i)), edge_index=torch.zeros(2, 0, dtype=torch.long))
              for i in range(n)]
    return StudySet(ids=np.array(["a", "b", "c", "d", "e"]), reports=[f"r{i}" for i in range(n)],
                    attention=att, patch_features=np.zeros((n, P, 2), np.float16),
                    graphs=graphs, grid_shape=(2, 2), info={"preset": "x"})


def test_len_and_shape(studies):
    assert len(studies) == 5
    assert studies.shape == (5,)
    assert studies.n_patches == 4


@pytest.mark.parametrize("key, expected", [
    (np.array([4, 0]), ["e", "a"]),
    (slice(1, 3), ["b", "c"]),
    (np.array([True, False, True, False, False]), ["a", "c"]),
    ((np.array([2]), Ellipsis), ["c"]),  # scikit-learn's _safe_indexing form
    (3, ["d"]),
    (np.array([], dtype=int), []),
])
def test_selection_returns_studyset_with_every_field_aligned(studies, key, expected):
    sub = studies[key]
    assert isinstance(sub, StudySet)
    assert sub.ids.tolist() == expected
    rows = [list(studies.ids).index(i) for i in expected]
    assert sub.reports == [studies.reports[r] for r in rows]
    np.testing.assert_array_equal(sub.attention, studies.attention[rows])
    assert [g.x.shape[0] for g in sub.graphs] == [r + 1 for r in rows]
    assert sub.grid_shape == (2, 2) and sub.info == {"preset": "x"}


def test_selection_errors(studies):
    with pytest.raises(IndexError):
        studies[np.array([True, False])]
    with pytest.raises(IndexError):
        studies[np.array([7])]
    with pytest.raises(IndexError):
        studies[np.array([0.5])]


def test_immutable_and_replace_returns_new(studies):
    with pytest.raises(AttributeError):
        studies.reports = []
    mask = np.ones((5, 4), bool)
    new = studies.replace(keep_mask=mask)
    assert new.keep_mask is mask and studies.keep_mask is None
    with pytest.raises(TypeError, match="unknown"):
        studies.replace(nonsense=1)


def test_fields_must_agree_on_length():
    with pytest.raises(ValueError, match="disagree"):
        StudySet(reports=["a", "b"], attention=np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="grid_shape"):
        StudySet(attention=np.ones((2, 4), np.float32), grid_shape=(3, 3))


def test_nbytes_counts_arrays_text_and_graphs(studies):
    by_field = studies.nbytes_by_field()
    assert by_field["attention"] == 5 * 4 * 4
    assert by_field["patch_features"] == 5 * 4 * 2 * 2
    assert by_field["reports"] == sum(len(r) for r in studies.reports)
    assert by_field["graphs"] == sum((i + 1) * 3 * 4 for i in range(5))
    assert studies.nbytes == sum(by_field.values())
    assert studies[[0]].nbytes < studies.nbytes


def test_repr_is_readable(studies):
    text = repr(studies)
    assert text.startswith("StudySet(n=5, grid=2x2")
    assert "attention[5x4 float32]" in text and "graphs[5]" in text


def test_pickle_and_concat(studies):
    again = pickle.loads(pickle.dumps(studies))
    np.testing.assert_array_equal(again.attention, studies.attention)
    joined = concat_study_sets([studies[:2], studies[2:]])
    assert joined.ids.tolist() == studies.ids.tolist()
    np.testing.assert_array_equal(joined.attention, studies.attention)


def test_works_as_X_in_sklearn_cross_validation(studies):
    from sklearn.model_selection import KFold
    from sklearn.utils import _safe_indexing

    for train, test in KFold(n_splits=5).split(studies):
        part = _safe_indexing(studies, test)
        assert isinstance(part, StudySet) and len(part) == 1


def test_nbytes_each_adds_up_and_follows_selection(studies):
    each = studies.nbytes_each()
    assert each.shape == (5,) and each.sum() == studies.nbytes
    # study i's graph has i + 1 nodes, so the bytes grow with it
    assert np.all(np.diff(each) > 0)
    assert studies[[3, 1]].nbytes_each().tolist() == each[[3, 1]].tolist()


def test_to_frame_one_row_per_study_with_findings_and_status():
    from neural_sk.report_graph import ReportGraphBuilder

    reports = ["Right lower lobe consolidation. No pleural effusion.", "", "Possible edema."]
    built = ReportGraphBuilder().fit().transform(reports)
    keep = np.array([[True, False, True, False], [False] * 4, [True] * 4])
    att = np.array([[0.1, 0.2, 0.6, 0.1], [0.25] * 4, [0.1, 0.1, 0.1, 0.7]], np.float32)
    s = built.replace(ids=np.array(["s1", "s2", "s3"]), attention=att, keep_mask=keep,
                      grid_shape=(2, 2), errors=[None, "unreadable image", None])
    frame = s.to_frame()
    assert list(frame["study_id"]) == ["s1", "s2", "s3"] and len(frame) == len(s)
    assert frame.loc[0, "findings"] == "consolidation (present); pleural-effusion (absent)"
    assert frame.loc[0, "anatomy"] == "right-lower-lobe"
    assert frame.loc[1, "findings"] == "" and frame.loc[2, "findings"] == "edema (uncertain)"
    assert frame["kept"].tolist() == [2, 0, 4]
    assert frame["top_patch"].tolist() == [(1, 0), (0, 0), (1, 1)]
    assert frame["error"].isna().tolist() == [True, False, True] and frame.loc[1, "error"] == "unreadable image"
    assert frame["report_nodes"].tolist() == [3, 0, 1]
    assert frame["nbytes"].sum() == s.nbytes


def test_html_repr_shows_summary_and_first_rows_escaped():
    n = 12
    s = StudySet(ids=np.array([f"<s{i}>" for i in range(n)]), reports=["a & b"] * n)
    page = s._repr_html_()
    assert "StudySet(n=12" in page and "&lt;s0&gt;" in page and "&lt;s9&gt;" in page
    assert "&lt;s10&gt;" not in page and "2 more studies" in page
    assert "<s0>" not in page and "a &amp; b" in page
