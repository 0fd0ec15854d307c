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
