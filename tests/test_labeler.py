"""CheXpert-style labels from report text."""

import numpy as np
import pandas as pd
import pytest

from neural_sk.text import OBSERVATIONS, label_reports

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
