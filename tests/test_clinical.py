"""clinical_efficacy: generated reports scored by the findings they state."""

import math

import pytest

from neural_sk.metrics import clinical_efficacy


def test_perfect_reports_score_one():
    refs = ["Right lower lobe pneumonia.", "Left lower lobe atelectasis.", "No acute disease."]
    ce = clinical_efficacy(refs, refs)
    assert ce["precision"] == ce["recall"] == ce["f1"] == 1.0
    assert ce["location_agreement"] == 1.0 and ce["n_located"] == 2
    assert ce["repeated_sentence_rate"] == 0.0


def test_missed_and_invented_findings_lower_recall_and_precision():
    generated = ["No acute disease.", "Cardiomegaly. Left pleural effusion."]
    reference = ["Right lower lobe pneumonia.", "Left pleural effusion."]
    ce = clinical_efficacy(generated, reference)
    assert ce["recall"] == pytest.approx(0.5)       # pneumonia missed, effusion found
    assert ce["precision"] == pytest.approx(0.5)    # cardiomegaly invented
    assert ce["per_observation"]["pneumonia"]["recall"] == 0.0
    assert ce["per_observation"]["pleural-effusion"]["f1"] == 1.0


def test_negated_finding_is_not_a_stated_finding():
    ce = clinical_efficacy(["No pneumonia."], ["Pneumonia."])
    assert ce["recall"] == 0.0 and ce["precision"] == 0.0


def test_location_words_must_match():
    ce = clinical_efficacy(["Left upper lobe pneumonia."], ["Right lower lobe pneumonia."])
    assert ce["recall"] == 1.0
    assert ce["location_agreement"] == 0.0


def test_repeated_sentences_are_counted():
    ce = clinical_efficacy(["The heart is not enlarged. The heart is not enlarged.", "Clear."],
                           ["Normal.", "Normal."])
    assert ce["repeated_sentence_rate"] == 0.5
    assert math.isnan(ce["location_agreement"])


def test_unpaired_inputs_and_unknown_observations_are_refused():
    with pytest.raises(ValueError, match="paired"):
        clinical_efficacy(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="unknown observations"):
        clinical_efficacy(["a"], ["a"], observations=["flu"])


def test_location_by_side_and_level_accepts_synonyms_of_a_place():
    ce = clinical_efficacy(["Right lower zone pneumonia. Cardiomegaly of the heart."],
                           ["Right lower lobe pneumonia. Cardiomegaly of the heart."])
    assert ce["location_agreement"] == pytest.approx(0.5)  # "zone" is not "lobe"; heart agrees
    assert ce["location_agreement_side_level"] == 1.0
    wrong_side = clinical_efficacy(["Left lower zone pneumonia."], ["Right lower lobe pneumonia."])
    assert wrong_side["location_agreement_side_level"] == 0.0
