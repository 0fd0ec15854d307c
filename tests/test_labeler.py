"""CheXpert-style labels from report text."""

import numpy as np
import pandas as pd
import pytest

from neural_sk.text import OBSERVATIONS, label_reports, labels_from_reports

NAN = np.nan


def test_labels_of_hand_written_reports():
    reports = [
        "Right lower lobe pneumonia. No pleural effusion or pneumothorax.",
        "Possible left basilar atelectasis. Heart size is normal.",
        "Moderate cardiomegaly with mild pulmonary edema. Small bilateral effusions.",
        "Endotracheal tube 4 cm above the carina. The lungs are clear.",
        "No acute cardiopulmonary abnormality.",
    ]
    labels = label_reports(reports)
    assert list(labels.columns) == list(OBSERVATIONS)
    assert labels.shape == (5, 14)
    expected = {
        "pneumonia": [1, NAN, NAN, NAN, NAN],
        "pleural-effusion": [0, NAN, 1, NAN, NAN],
        "pneumothorax": [0, NAN, NAN, NAN, NAN],
        "atelectasis": [NAN, -1, NAN, NAN, NAN],
        "cardiomegaly": [NAN, 0, 1, NAN, NAN],
        "edema": [NAN, NAN, 1, NAN, NAN],
        "lung-opacity": [NAN, NAN, NAN, 0, NAN],
        "support-devices": [NAN, NAN, NAN, 1, NAN],
        "fracture": [NAN] * 5,
        "no-finding": [0, 0, 0, 1, 1],
    }
    for name, values in expected.items():
        np.testing.assert_array_equal(labels[name].to_numpy(), np.array(values, float),
                                      err_msg=name)


@pytest.mark.parametrize("report, value", [
    ("No effusion on the left. Small right pleural effusion.", 1),  # present beats absent
    ("No large effusion. A small effusion cannot be excluded.", -1),  # uncertain beats absent
    ("Possible effusion. Definite left pleural effusion.", 1),  # present beats uncertain
    ("No pleural effusion. No effusion.", 0),
])
def test_aggregation_within_a_report(report, value):
    assert label_reports([report])["pleural-effusion"][0] == value


def test_a_sign_of_edema_beside_a_negated_edema_is_uncertain():
    labels = label_reports(["Mild pulmonary vascular congestion without frank edema."])
    assert labels["edema"][0] == -1


def test_pneumonia_uncertain_when_infection_cannot_be_excluded():
    labels = label_reports(["Left base opacity, infection cannot be excluded."])
    assert labels["pneumonia"][0] == -1
    assert labels["lung-opacity"][0] == 1
    assert labels["no-finding"][0] == 0


def test_no_finding_ignores_support_devices_and_negations():
    labels = label_reports(["Pacemaker leads in place. No pneumothorax.", "", None,
                            "Possible small effusion."])
    np.testing.assert_array_equal(labels["no-finding"], [1, 1, 1, 0])
    assert labels.iloc[1].drop("no-finding").isna().all()


def test_series_index_is_kept_and_rows_match_input():
    reports = pd.Series(["No pneumonia.", "Pneumonia."], index=["s1", "s2"])
    labels = label_reports(reports)
    assert list(labels.index) == ["s1", "s2"]
    assert labels.loc["s2", "pneumonia"] == 1 and labels.loc["s1", "pneumonia"] == 0


def test_frame_input_and_bad_input():
    frame = pd.DataFrame({"report": ["Small effusion."]}, index=["x"])
    assert label_reports(frame).loc["x", "pleural-effusion"] == 1
    with pytest.raises(ValueError, match="'report'"):
        label_reports(pd.DataFrame({"text": ["a"]}))
    with pytest.raises(TypeError, match="not one str"):
        label_reports("No effusion.")


def test_agrees_with_the_chexpert_labeler_on_definite_findings(iu_reports_path):
    # The reference is a rule-based labeler, not ground truth; on unambiguous findings the
    # two readers should still agree closely (present vs labeler-positive).
    frame = pd.read_csv(iu_reports_path, nrows=800)
    labels = label_reports(frame["report"])
    for name in ("pleural-effusion", "pneumothorax", "atelectasis", "cardiomegaly"):
        ours = labels[name].to_numpy() == 1
        ref = frame[f"chexpert_{name}"].to_numpy() == 1
        tp = np.sum(ours & ref)
        f1 = 2 * tp / (ours.sum() + ref.sum())
        assert f1 > 0.8, (name, f1)


# Real IU X-ray report texts (from ../shared/data/iu_reports): a hedged pneumonia beside a
# definite opacity, a chronic finding with negations, and a focal opacity with negations.
IU_REPORTS = [
    "FINDINGS: Vague increased opacity which appears to be within the left lower lobe. Question "
    "of this could be developing or resolving pneumonia. Lungs are otherwise clear. No pleural "
    "effusions or pneumothoraces.",
    "FINDINGS: Stable cardiomegaly with vascular prominence without overt edema. No focal "
    "airspace disease. No large pleural effusion or pneumothorax.\nIMPRESSION: Stable "
    "cardiomegaly without overt pulmonary edema.",
    "FINDINGS: The heart is normal in size and contour. There is focal airspace disease in the "
    "right middle lobe. There is no pneumothorax or effusion.",
]
ASKED = ["pneumonia", "lung-opacity", "pleural-effusion", "cardiomegaly", "edema", "fracture"]


@pytest.mark.parametrize("uncertain, hedged_target, hedged_known", [
    ("ignore", 0, False), ("ones", 1, True), ("zeros", 0, True)])
def test_labels_from_reports_targets_and_mask(uncertain, hedged_target, hedged_known):
    y, mask = labels_from_reports(IU_REPORTS, observations=ASKED, uncertain=uncertain)
    assert list(y.columns) == ASKED and list(mask.columns) == ASKED
    assert y.dtypes.eq(np.int64).all() and mask.dtypes.eq(bool).all()
    expected_y = [[hedged_target, 1, 0, 0, 0, 0],
                  [0, 0, 0, 1, 0, 0],
                  [0, 1, 0, 0, 0, 0]]
    expected_mask = [[hedged_known, True, True, False, False, False],
                     [False, True, True, True, True, False],   # pneumonia, fracture unsaid
                     [False, True, True, True, False, False]]
    np.testing.assert_array_equal(y.to_numpy(), expected_y)
    np.testing.assert_array_equal(mask.to_numpy(), expected_mask)
    assert not y.to_numpy()[~mask.to_numpy()].any()  # unknown entries are 0


def test_labels_from_reports_follow_label_reports_and_keep_the_index():
    reports = pd.Series(IU_REPORTS, index=["a", "b", "c"])
    y, mask = labels_from_reports(reports)  # all 14, U-Ignore
    raw = label_reports(reports)
    assert list(y.columns) == list(OBSERVATIONS) and list(y.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(mask.to_numpy(), raw.isin([0.0, 1.0]).to_numpy())
    np.testing.assert_array_equal(y.where(mask).to_numpy(), raw.where(raw != -1).to_numpy())
    assert mask["no-finding"].all()  # derived: always known


def test_labels_from_reports_spellings_and_errors():
    y, _ = labels_from_reports(IU_REPORTS[:1], observations="Lung Opacity")
    assert list(y.columns) == ["lung-opacity"] and y.iloc[0, 0] == 1
    with pytest.raises(ValueError, match="uncertain must be one of"):
        labels_from_reports(IU_REPORTS, uncertain="drop")
    with pytest.raises(ValueError, match="pneumonitis"):
        labels_from_reports(IU_REPORTS, observations=["pneumonia", "pneumonitis"])
    with pytest.raises(ValueError, match="repeated"):
        labels_from_reports(IU_REPORTS, observations=["edema", "Edema"])


def test_labels_from_reports_on_real_reports(iu_reports_path):
    reports = pd.read_csv(iu_reports_path, nrows=400)["report"]
    for policy in ("ignore", "ones", "zeros"):
        y, mask = labels_from_reports(reports, uncertain=policy)
        assert y.shape == mask.shape == (400, 14)
        assert set(np.unique(y.to_numpy())) <= {0, 1}
    raw = label_reports(reports).to_numpy()
    y_ones, mask_ones = labels_from_reports(reports, uncertain="ones")
    y_ign, mask_ign = labels_from_reports(reports, uncertain="ignore")
    # U-Ones knows the hedged entries U-Ignore masks out, and calls them positive.
    np.testing.assert_array_equal(mask_ones.to_numpy() & ~mask_ign.to_numpy(), raw == -1)
    assert (raw == -1).any() and (y_ones.to_numpy()[raw == -1] == 1).all()
