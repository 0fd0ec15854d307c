"""Findings with status, anatomy and their links."""

import pandas as pd
import pytest

from neural_sk.text import (
    ANATOMY,
    CONCEPTS,
    OBSERVATIONS,
    Entity,
    extract_entities,
    load_lexicon,
)


def findings(report, **kwargs):
    """{concept: status} of the findings of one report (last mention wins)."""
    return {e.concept: e.status for e in extract_entities([report], **kwargs)[0]
            if e.kind == "finding"}


def anatomy(report):
    return [e.concept for e in extract_entities([report])[0] if e.kind == "anatomy"]


def test_vocabulary():
    assert len(OBSERVATIONS) == 14 and OBSERVATIONS[0] == "no-finding"
    assert "right-lower-lobe" in ANATOMY and "lingula" in ANATOMY
    assert len(set(CONCEPTS)) == len(CONCEPTS) == len(OBSERVATIONS) + len(ANATOMY)
    assert set(load_lexicon()["findings"]) <= set(OBSERVATIONS)


@pytest.mark.parametrize("report, concept, status", [
    ("No pneumonia.", "pneumonia", "absent"),
    ("Cannot exclude pneumonia.", "pneumonia", "uncertain"),
    ("Pneumonia cannot be excluded.", "pneumonia", "uncertain"),
    ("Findings may represent early pneumonia.", "pneumonia", "uncertain"),
    ("Opacity suspicious for pneumonia.", "pneumonia", "uncertain"),
    ("Questionable left basilar atelectasis.", "atelectasis", "uncertain"),
    ("Right lower lobe pneumonia.", "pneumonia", "present"),
    ("The lungs are free of focal consolidation.", "consolidation", "absent"),
    ("Negative for pneumothorax.", "pneumothorax", "absent"),
    ("The right pneumothorax has resolved.", "pneumothorax", "absent"),
    ("Pneumothorax is not seen.", "pneumothorax", "absent"),
    ("Interval removal of the endotracheal tube.", "support-devices", "absent"),
    ("No change in the small left pleural effusion.", "pleural-effusion", "present"),
    ("There is no focal opacity to suggest pneumonia.", "pneumonia", "absent"),
    ("No suspicious pulmonary nodule.", "lung-lesion", "absent"),
    ("Atelectasis versus pneumonia.", "atelectasis", "uncertain"),
    ("Stable small pericardial effusion.", "pleural-effusion", None),
    ("Prior granulomatous infection.", "pneumonia", None),
    ("History of pneumonia.", "pneumonia", "absent"),
    ("Mild pulmonary vascular congestion.", "edema", "uncertain"),  # a sign of edema
    ("Interstitial pulmonary edema.", "edema", "present"),
    ("Small right hydropneumothorax.", "pleural-effusion", "present"),
])
def test_status_of_single_findings(report, concept, status):
    assert findings(report).get(concept) == status


@pytest.mark.parametrize("report, concept, status", [
    # Indirect signs suggest a finding without proving it.
    ("Right upper lobe volume loss.", "atelectasis", "uncertain"),
    ("Stable central venous congestion.", "edema", "uncertain"),
    # "density" is a lung opacity only where the sentence puts it in the lung.
    ("Vague density in the right mid lung.", "lung-opacity", "present"),
    ("Retrocardiac density compatible with hiatal hernia.", "lung-opacity", None),
    ("Small opacity related to overlying soft tissues.", "lung-opacity", "absent"),
    ("Prior pneumonia.", "pneumonia", "absent"),
    ("Compared with the prior radiograph, pneumonia has worsened.", "pneumonia", "present"),
    ("Atelectasis is favored over pneumonia.", "pneumonia", "uncertain"),
    ("Right effusion has nearly resolved.", "pleural-effusion", "present"),
    ("Almost completely resolved apical pleural air collection.", "pneumothorax", "present"),
    ("No focal consolidation concerning for pneumonia.", "pneumonia", "absent"),
    ("Left base opacity, infection cannot be excluded.", "lung-opacity", "present"),
    ("Consolidation, atelectasis, and effusion have cleared.", "consolidation", "absent"),
    ("Specifically, no consolidation.. Minimal atelectasis noted.", "atelectasis", "present"),
    # High-probability hedges read as present; low-probability ones as uncertain.
    ("Probable right lower lobe pneumonia.", "pneumonia", "present"),
    ("Opacity most consistent with pneumonia.", "pneumonia", "present"),
    ("Left base opacity, likely atelectasis.", "atelectasis", "present"),
    ("Possible right lower lobe pneumonia.", "pneumonia", "uncertain"),
    ("No effusion; probable atelectasis.", "pleural-effusion", "absent"),
    ("Linear opacity, favoring atelectasis over infection.", "pneumonia", "uncertain"),
    ("Likely atelectasis or pneumonia.", "pneumonia", "uncertain"),
    ("Likely atelectasis or pneumonia.", "atelectasis", "present"),
    # An opacity explained by a non-parenchymal or old cause is not a lung opacity ...
    ("Nodular densities in the lungs consistent with chronic granulomatous disease.",
     "lung-opacity", "absent"),
    ("Left basilar opacity secondary to epicardial fat.", "lung-opacity", "absent"),
    # ... unless the cause is one alternative among findings.
    ("Basilar opacity may represent scarring or atelectasis.", "lung-opacity", "present"),
    ("Right lower lobe opacity consistent with pneumonia.", "lung-opacity", "present"),
    # Prominent interstitial markings name the lung's markings: a sign, not an opacity.
    ("Prominent interstitial markings.", "lung-opacity", "uncertain"),
])
def test_radiology_specific_readings(report, concept, status):
    assert findings(report).get(concept) == status


def test_negation_reaches_over_a_list_and_stops_at_terminators():
    statuses = findings("No pneumonia, effusions, edema, pneumothorax, nodules or masses.")
    assert statuses == {"pneumonia": "absent", "pleural-effusion": "absent",
                        "edema": "absent", "pneumothorax": "absent", "lung-lesion": "absent"}
    assert findings("No pneumothorax, but there is a small right effusion.") == {
        "pneumothorax": "absent", "pleural-effusion": "present"}
    assert findings("Stable cardiomegaly without edema, with small bilateral effusions.") == {
        "cardiomegaly": "present", "edema": "absent", "pleural-effusion": "present"}


def test_nearest_cue_wins():
    assert findings("No definite pneumonia, possible atelectasis.") == {
        "pneumonia": "absent", "atelectasis": "uncertain"}
    # A hedge inside a negated list is negated.
    assert findings("No focal consolidation or suspicious opacity.") == {
        "consolidation": "absent", "lung-opacity": "absent"}


def test_sentences_bound_the_scope():
    statuses = findings("No pneumothorax. Small right pleural effusion.")
    assert statuses == {"pneumothorax": "absent", "pleural-effusion": "present"}


@pytest.mark.parametrize("report, status", [
    ("The heart is normal in size.", "absent"),
    ("Heart size is within normal limits.", "absent"),
    ("Normal heart size.", "absent"),
    ("The heart is not significantly enlarged.", "absent"),
    ("The cardiac silhouette is moderately enlarged.", "present"),
    ("Borderline cardiomegaly.", "present"),
    ("The heart is borderline enlarged.", "present"),
    ("Possible cardiomegaly.", "uncertain"),
    ("Heart size is upper limits normal or mildly enlarged.", "uncertain"),
    ("The heart and lungs have not changed.", None),
])
def test_heart_size_statements(report, status):
    assert findings(report).get("cardiomegaly") == status


def test_a_negation_before_the_subject_does_not_reach_its_predicate():
    statuses = findings("No pneumothorax and the heart is enlarged.")
    assert statuses == {"pneumothorax": "absent", "cardiomegaly": "present"}


def test_clear_lungs_and_sharp_angles_are_negative_findings():
    assert findings("The lungs are clear.") == {"lung-opacity": "absent",
                                                "consolidation": "absent"}
    assert findings("Costophrenic angles are sharp.") == {"pleural-effusion": "absent"}
    # Blunting is a sign of effusion, not proof of it.
    assert findings("Blunting of the left costophrenic angle.") == {
        "pleural-effusion": "uncertain"}


def test_normal_study_statement_is_a_no_finding_mention():
    assert findings("No acute cardiopulmonary abnormality.") == {"no-finding": "present"}
    assert findings("No acute bony abnormality.") == {}


def test_right_lower_lobe_consolidation_is_linked_to_its_lobe():
    report = "There is right lower lobe consolidation. The heart is normal."
    ents = extract_entities([report])[0]
    consolidation = next(e for e in ents if e.concept == "consolidation")
    assert consolidation.status == "present" and consolidation.kind == "finding"
    assert consolidation.anatomy == ("right-lower-lobe",)
    lobe = next(e for e in ents if e.concept == "right-lower-lobe")
    assert lobe.kind == "anatomy" and lobe.status is None and lobe.sentence == 0
    heart = next(e for e in ents if e.concept == "cardiomegaly")
    assert heart.sentence == 1 and heart.anatomy == ("heart",)


@pytest.mark.parametrize("report, name", [
    ("Bibasilar atelectasis.", "bilateral-base"),
    ("Left lower lobe opacity.", "left-lower-lobe"),
    ("Opacity in the lower lobes.", "bilateral-lower-lobe"),
    ("Opacity in the right upper lung zone.", "right-upper-zone"),
    ("Lingular atelectasis.", "lingula"),
    ("Right middle lobe pneumonia.", "right-middle-lobe"),
    ("Blunting of the costophrenic angle on the right.", "right-costophrenic-angle"),
    ("Retrocardiac opacity.", "retrocardiac"),
    ("Biapical pleural thickening.", "bilateral-apex"),
])
def test_anatomy_is_normalised(report, name):
    assert name in anatomy(report)


def test_offsets_index_the_original_report():
    report = "FINDINGS: Mild cardiomegaly.\nIMPRESSION: No pneumothorax. Left base opacity."
    ents = extract_entities([report])[0]
    assert ents, "nothing found"
    for e in ents:
        assert report[e.start:e.end] == e.text
    assert [e.sentence for e in ents] == sorted(e.sentence for e in ents)
    assert len({e.sentence for e in ents}) == 3


def test_context_sections_are_not_observations():
    report = "INDICATION: Cough, eval for pneumonia.\nFINDINGS: The lungs are clear."
    assert "pneumonia" not in findings(report)
    assert findings(report, sections=("indication",)) == {"pneumonia": "uncertain"}
    assert findings("FINDINGS: Effusion.\nIMPRESSION: Pneumonia.", sections="impression") == {
        "pneumonia": "present"}


def test_batch_keeps_one_list_per_report():
    reports = ["No pneumonia.", "", None, "Chest, two views.", "Small effusion."]
    out = extract_entities(reports, batch_size=2)
    assert len(out) == len(reports)
    assert out[1] == out[2] == out[3] == []
    assert isinstance(out[4][0], Entity)


def test_bad_input_raises():
    with pytest.raises(TypeError, match="sequence"):
        extract_entities("No pneumonia.")
    with pytest.raises(TypeError, match="report 1"):
        extract_entities(["ok", 3])
    with pytest.raises(ValueError, match="batch_size"):
        extract_entities(["ok"], batch_size=0)


def test_real_reports_give_known_concepts_and_every_status(iu_reports_path):
    reports = pd.read_csv(iu_reports_path, nrows=400)["report"].tolist()
    ents = extract_entities(reports)
    seen = {(e.kind, e.status) for report in ents for e in report}
    assert {("finding", "present"), ("finding", "absent"), ("finding", "uncertain"),
            ("anatomy", None)} <= seen
    known = set(CONCEPTS)
    for report, mentions in zip(reports, ents):
        for e in mentions:
            assert e.concept in known
            assert report[e.start:e.end] == e.text
