"""The embedded synthetic chest X-ray data set: shapes, determinism, lesions and reports."""

import re

import numpy as np
import pandas as pd
import pytest

from neural_sk.datasets import make_synthetic_cxr
from neural_sk.datasets import synthetic as syn
from neural_sk.text import labels_from_reports

N, SIZE, SEED = 40, 64, 0


@pytest.fixture(scope="module")
def data():
    return make_synthetic_cxr(N, image_size=SIZE, random_state=SEED, return_masks=True)


@pytest.fixture(scope="module")
def big():
    # More studies at a tiny size, for rates.
    return make_synthetic_cxr(240, image_size=32, random_state=1)


def _side_of_phrase(phrase):
    """The patient's side a location phrase names."""
    if "lingula" in phrase or phrase.startswith("left"):
        return "left"
    assert phrase.startswith("right"), phrase
    return "right"


def test_shapes_dtypes_and_columns(data):
    X, y, masks = data
    assert isinstance(X, pd.DataFrame) and len(X) == N
    assert list(X.columns[:3]) == ["image", "report", "patient_id"]
    for col in ("study_id", "lesion_zone", "lesion_location", "lesion_contrast", "effusion",
                "cardiomegaly", "atelectasis", "nodule", "support_devices"):
        assert col in X.columns
    for image in X["image"]:
        assert image.shape == (SIZE, SIZE) and image.dtype == np.uint8
        assert image.std() > 10  # an actual picture, not a constant
    assert y.shape == (N,) and np.issubdtype(y.dtype, np.integer) and set(y) == {0, 1}
    assert masks.shape == (N, SIZE, SIZE) and masks.dtype == bool
    assert X["study_id"].is_unique
    assert all(isinstance(r, str) and "FINDINGS:" in r and "IMPRESSION:" in r for r in X["report"])
    assert all(r.index("FINDINGS:") < r.index("IMPRESSION:") for r in X["report"])


def test_without_masks_returns_pair():
    out = make_synthetic_cxr(3, image_size=32, random_state=0)
    assert len(out) == 2 and len(out[0]) == 3


def test_same_seed_same_output_other_seed_differs(data):
    X, y, masks = data
    X2, y2, masks2 = make_synthetic_cxr(N, image_size=SIZE, random_state=SEED, return_masks=True)
    assert np.array_equal(y, y2) and np.array_equal(masks, masks2)
    assert all(np.array_equal(a, b) for a, b in zip(X["image"], X2["image"]))
    pd.testing.assert_frame_equal(X.drop(columns="image"), X2.drop(columns="image"))

    X3, y3 = make_synthetic_cxr(N, image_size=SIZE, random_state=SEED + 1)
    assert not set(X3["patient_id"]) & set(X["patient_id"])
    assert list(X3["report"]) != list(X["report"])
    assert not any(np.array_equal(a, b) for a, b in zip(X["image"], X3["image"]))


def test_reports_do_not_depend_on_image_size(data):
    X = data[0]
    X_small, _ = make_synthetic_cxr(N, image_size=32, random_state=SEED)
    assert list(X_small["report"]) == list(X["report"])
    assert list(X_small["lesion_zone"]) == list(X["lesion_zone"])


@pytest.mark.parametrize("prevalence, n_pos", [(0.0, 0), (0.25, 5), (0.5, 10), (1.0, 20)])
def test_prevalence_is_respected(prevalence, n_pos):
    X, y, masks = make_synthetic_cxr(20, image_size=32, prevalence=prevalence, random_state=3,
                                     return_masks=True)
    assert y.sum() == n_pos
    assert (X["lesion_zone"] != "").sum() == n_pos
    assert masks.reshape(20, -1).any(axis=1).sum() == n_pos


def test_masks_mark_exactly_the_positives(data):
    X, y, masks = data
    has_lesion = masks.reshape(N, -1).any(axis=1)
    assert np.array_equal(has_lesion, y == 1)
    assert np.array_equal(X["lesion_zone"] != "", y == 1)
    assert ((X["lesion_contrast"] > 0) == (y == 1)).all()


def test_lesion_lies_in_the_lung_of_its_zone(data):
    X, y, _ = data
    plan = syn._plan(N, 0.4, SEED)
    for i in np.flatnonzero(y == 1):
        image, masks, lung, study, _ = syn._make_study(plan, i, SIZE)
        lesion = masks["pneumonia"]
        assert lesion.any()
        assert not (lesion & ~lung).any(), f"study {i}: lesion pixels outside the lungs"
        side = syn.LESION_ZONES[study.zone][0]
        cols = np.nonzero(lesion)[1]
        # PA view: the patient's right lung is on the image left.
        if side == "right":
            assert cols.mean() < SIZE / 2, f"study {i} ({study.zone})"
        else:
            assert cols.mean() > SIZE / 2, f"study {i} ({study.zone})"


def test_lesion_is_visible(data):
    """Drawing the lesion makes its pixels brighter: positives carry an image signal."""
    _, y, _ = data
    plan = syn._plan(N, 0.4, SEED)
    gains = []
    for i in np.flatnonzero(y == 1):
        with_lesion, masks, *_ = syn._make_study(plan, i, SIZE)
        lesion = masks["pneumonia"]
        without, *_ = syn._make_study(plan, i, SIZE, draw_lesion=False)
        diff = with_lesion.astype(float) - without.astype(float)
        assert (diff[~lesion] >= -1).all()  # the rest of the study is unchanged
        gains.append(diff[lesion].mean())
    gains = np.array(gains)
    assert (gains > 0).all()
    assert np.median(gains) > 8  # grey levels out of 255


def test_report_location_matches_the_drawn_side(data):
    X, y, masks = data
    for i in np.flatnonzero(y == 1):
        phrase = X["lesion_location"][i]
        assert phrase and phrase in X["report"][i]
        side = _side_of_phrase(phrase)
        assert side == syn.LESION_ZONES[X["lesion_zone"][i]][0]
        centre_col = np.nonzero(masks[i])[1].mean()
        assert (centre_col < SIZE / 2) == (side == "right"), f"study {i}: {phrase}"


def test_report_wording_varies_and_negates(big):
    X, y = big
    reports = X["report"]
    pos, neg = reports[y == 1], reports[y == 0]
    negation = re.compile(r"\bno (?:focal|evidence|acute|consolidation|radiographic)", re.I)
    assert neg.str.contains(negation).mean() > 0.5
    # Some negatives mention pneumonia, negated or as a resolved / unlikely finding.
    assert neg.str.contains("pneumonia").mean() > 0.2
    # Not every positive says "pneumonia"; some hedge.
    assert 0.1 < (~pos.str.contains("pneumonia")).mean() < 0.9
    assert pos.str.contains(r"cannot be excluded|cannot exclude|possible|may represent|"
                            r"questionable|could reflect", case=False).any()
    for r in neg:
        assert "consistent with pneumonia" not in r and "concerning for pneumonia" not in r
    assert reports.nunique() == len(reports)


def test_distractors_occur_in_both_classes(big):
    X, y = big
    for flag in ("effusion", "cardiomegaly", "atelectasis", "nodule", "support_devices"):
        assert X[flag].dtype == bool
        assert X.loc[y == 0, flag].any() and X.loc[y == 1, flag].any(), flag
    # The report describes the distractors that are drawn.
    assert X.loc[X["effusion"], "report"].str.contains("effusion").all()
    assert X.loc[X["cardiomegaly"], "report"].str.contains(
        "cardiomegaly|enlarged", case=False).all()
    assert X.loc[X["nodule"], "report"].str.contains("nodul", case=False).all()
    assert X.loc[X["atelectasis"], "report"].str.contains("atelectasis").all()


def test_some_patients_have_several_studies(big):
    X, _ = big
    counts = X["patient_id"].value_counts()
    assert (counts > 1).any() and (counts == 1).any()
    # A patient's chronic finding is in all of their studies.
    assert X.groupby("patient_id")["cardiomegaly"].nunique().max() == 1


@pytest.mark.parametrize("kwargs, name", [
    ({"n_samples": 0}, "n_samples"),
    ({"image_size": 8}, "image_size"),
    ({"prevalence": 1.5}, "prevalence"),
    ({"random_state": "seed"}, "random_state"),
])
def test_bad_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_synthetic_cxr(**{"n_samples": 2, **kwargs})


def test_generator_and_randomstate_seeds():
    a, _ = make_synthetic_cxr(2, image_size=32, random_state=np.random.RandomState(4))
    b, _ = make_synthetic_cxr(2, image_size=32, random_state=np.random.RandomState(4))
    assert list(a["report"]) == list(b["report"])
    c, _ = make_synthetic_cxr(2, image_size=32, random_state=np.random.default_rng(4))
    assert len(c) == 2


# ------------------------------------------------------------------------- several findings

FINDINGS = ("pneumonia", "pleural-effusion", "cardiomegaly")


@pytest.fixture(scope="module")
def multi():
    return make_synthetic_cxr(60, image_size=64, random_state=3, return_masks=True,
                              findings=FINDINGS)


def test_several_findings_give_a_column_and_a_mask_each(multi):
    X, Y, masks = multi
    assert Y.shape == (60, 3) and Y.dtype == np.int64 and masks.shape == (60, 3, 64, 64)
    # Each column is its finding, the masks are non-empty exactly where it is present, and
    # findings occur together.
    np.testing.assert_array_equal(Y[:, 1], X["effusion"].astype(int))
    np.testing.assert_array_equal(Y[:, 2], X["cardiomegaly"].astype(int))
    np.testing.assert_array_equal(Y[:, 0], (X["lesion_zone"] != "").astype(int))
    np.testing.assert_array_equal(masks.any(axis=(2, 3)), Y.astype(bool))
    assert ((Y.sum(axis=1) >= 2).any() and (Y.sum(axis=0) > 0).all()
            and (Y.sum(axis=0) < 60).all())
    assert int(Y[:, 0].sum()) == 24  # pneumonia: exactly round(prevalence * n)


def test_masks_sit_where_each_finding_is(multi):
    X, Y, masks = multi
    for i in np.flatnonzero(Y[:, 1]):
        rows, cols = np.nonzero(masks[i, 1])
        # Fluid at the costophrenic angle: low in the chest, on the side the report names.
        assert rows.mean() > 64 * 0.55, f"study {i}"
        report = X["report"][i].lower()
        if "bilateral" not in report:
            assert (cols.mean() < 32) == ("right pleural effusion" in report
                                          or "right costophrenic" in report), f"study {i}"
    hearts = masks[Y[:, 2] == 1, 2]
    assert hearts.sum(axis=(1, 2)).min() > 0.05 * 64 * 64  # a large silhouette
    assert 0.4 * 64 < np.nonzero(hearts)[2].mean() < 0.75 * 64  # central, towards image right


def test_reports_name_each_finding(multi):
    X, Y, _ = multi
    y, known = labels_from_reports(X["report"], observations=FINDINGS, uncertain="ones")
    for j, name in enumerate(FINDINGS):
        agree = (y[name].to_numpy() == Y[:, j]).mean()
        assert agree >= 0.9, (name, agree)
    # Definite effusions and enlarged hearts are said outright.
    assert (y["pleural-effusion"].to_numpy() == Y[:, 1]).all()
    assert (y["cardiomegaly"].to_numpy() == Y[:, 2]).all()


def test_one_finding_keeps_the_binary_shapes_and_the_default_output():
    X, y, masks = make_synthetic_cxr(8, image_size=32, random_state=5, return_masks=True)
    X2, y2, masks2 = make_synthetic_cxr(8, image_size=32, random_state=5, return_masks=True,
                                        findings="pneumonia")
    assert y.shape == (8,) and masks.shape == (8, 32, 32)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(masks, masks2)
    assert all((a == b).all() for a, b in zip(X["image"], X2["image"]))
    _, y3, masks3 = make_synthetic_cxr(8, image_size=32, random_state=5, return_masks=True,
                                       findings=("cardiomegaly",))
    assert y3.shape == (8,) and masks3.shape == (8, 32, 32)
    np.testing.assert_array_equal(masks3.any(axis=(1, 2)), y3.astype(bool))


@pytest.mark.parametrize("findings", [(), ("pneumonia", "pneumonia"), ("effusion",), 3])
def test_bad_findings_name_the_allowed_ones(findings):
    with pytest.raises(ValueError, match="findings must be .*pleural-effusion"):
        make_synthetic_cxr(4, image_size=32, findings=findings)
