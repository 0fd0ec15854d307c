"""The report of a synthetic study: FINDINGS and IMPRESSION in varied radiologists' wording."""

from __future__ import annotations

import numpy as np

from .anatomy import LESION_ZONES, LEVEL_PHRASES, Study, zone_phrase

_OPACITY = ["airspace opacity", "consolidation", "airspace consolidation", "patchy opacity",
            "ill-defined opacity", "focal opacity", "patchy consolidation", "opacification",
            "airspace disease", "infiltrate"]
# Words that read badly after "a" / "an".
_MASS_NOUNS = {"airspace consolidation", "patchy consolidation", "opacification",
               "airspace disease"}
# "Right lower lobe pneumonia", "Lingular pneumonia".
_ZONE_ADJECTIVE = {z: z for z in LESION_ZONES} | {"lingula": "lingular"}
_FAINT = ["subtle", "faint", "hazy", "mild", "ill-defined", "vague"]


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _a(noun: str) -> str:
    """``noun`` with its indefinite article, or bare for a mass noun."""
    return noun if noun in _MASS_NOUNS else f"{_article(noun)} {noun}"


def write_report(rng: np.random.Generator, st: Study) -> str:
    """The report of study ``st``: optional INDICATION and COMPARISON, FINDINGS, IMPRESSION.

    Each part draws its wording from ``rng`` in the order the report reads, so a study's
    report depends only on its own generator.
    """
    findings = _device_sentences(rng, st)
    faint = st.positive and st.contrast < 0.35
    body = _lung_sentences(rng, st, faint) + _pleura_sentences(rng, st)
    body += _heart_sentences(rng, st)
    # Radiologists vary the order of the lung / pleura / heart statements.
    if rng.random() < 0.35:
        body = body[-2:] + body[:-2]
    findings.extend(s for s in body if s)
    impression = _impression(rng, st, faint)

    if len(impression) > 1 and rng.random() < 0.5:
        imp_text = " ".join(f"{i + 1}. {s}" for i, s in enumerate(impression))
    else:
        imp_text = " ".join(impression)

    header = []
    if rng.random() < 0.5:
        header.append("INDICATION: " + _pick(rng, [
            "Cough.", "Shortness of breath.", "Fever, evaluate for pneumonia.", "Chest pain.",
            "Preoperative evaluation.", "___-year-old with dyspnea.", "Follow-up.",
            "Hypoxia.", "Cough and fever."]))
    if rng.random() < 0.4:
        header.append("COMPARISON: " + _pick(rng, ["None.", "___.", "Chest radiograph from ___."]))
    return "\n".join(header + ["FINDINGS: " + " ".join(findings), "IMPRESSION: " + imp_text])


def _device_sentences(rng: np.random.Generator, st: Study) -> list[str]:
    """One sentence per support device."""
    findings: list[str] = []
    # Devices first, as radiologists usually do.
    dev_text = {
        "ett": [f"Endotracheal tube terminates approximately {st.ett_cm} cm above the carina.",
                f"ET tube in standard position, {st.ett_cm} cm above the carina.",
                f"The endotracheal tube tip is {st.ett_cm} cm from the carina."],
        "cvc": ["Right internal jugular central venous catheter terminates in the mid SVC.",
                "Right-sided central line with tip in the lower SVC.",
                "A right central venous catheter tip projects over the SVC."],
        "enteric": ["Enteric tube courses below the diaphragm with the tip in the stomach.",
                    "Nasogastric tube tip is in the stomach.",
                    "An orogastric tube passes below the diaphragm, out of view."],
        "ecg": ["EKG leads overlie the chest.", "Cardiac monitoring leads are noted.",
                "External monitoring leads project over the thorax."],
        "pacemaker": ["Left-sided pacemaker with leads in the right atrium and right ventricle.",
                      "Left chest wall dual-chamber pacemaker, leads in expected position.",
                      "A left pectoral cardiac device is present with intact leads."],
    }
    for d in st.devices:
        findings.append(_pick(rng, dev_text[d]))
    return findings


def _lung_sentences(rng: np.random.Generator, st: Study, faint: bool) -> list[str]:
    """The lesion, atelectasis, nodule, and for negatives the clear lungs."""
    body: list[str] = []
    if st.positive:
        loc = st.location
        op = _pick(rng, _OPACITY)
        if faint:
            q = _pick(rng, _FAINT)
            sent = _pick(rng, [
                f"There is {'' if op in _MASS_NOUNS else _article(q) + ' '}{q} {op} in the {loc}.",
                f"{_cap(q)} {op} projects over the {loc}.",
                f"{_cap(q)} increased opacity in the {loc}.",
                f"Possible {q} {op} in the {loc}.",
            ])
        else:
            sent = _pick(rng, [
                f"There is {_a(op)} in the {loc}.",
                f"{_cap(op)} is seen in the {loc}.",
                f"New {op} in the {loc}.",
                f"Focal consolidation is present in the {loc}.",
                f"Dense {op} in the {loc}.",
                f"{_cap(_a(op))} involves the {loc}.",
            ])
        if st.bronchograms and rng.random() < 0.7:
            sent = sent[:-1] + " with air bronchograms."
        body.append(sent)
        if st.atelectasis is None and st.nodule is None:
            body.append(_pick(rng, ["The remaining lungs are clear.", "The other lung is clear.",
                                    "Elsewhere the lungs are clear.", ""]))
    if st.atelectasis is not None:
        side, level = st.atelectasis[0], st.atelectasis[1]
        where = (f"{side} lung base" if level == "lower" else f"{side} mid lung")
        body.append(_pick(rng, [
            f"Linear opacity at the {where} likely reflects subsegmental atelectasis.",
            f"Plate-like atelectasis in the {where}.",
            f"Minimal {side} {'basilar' if level == 'lower' else 'mid lung'} atelectasis.",
            f"Streaky opacity in the {where}, compatible with atelectasis.",
        ]))
    if st.nodule is not None:
        mm = max(4, int(round(st.nodule[4] * 190)))
        loc_n = zone_phrase(rng, LEVEL_PHRASES[(st.nodule[0], st.nodule[1])])
        body.append(_pick(rng, [
            f"A {mm} mm nodular opacity projects over the {loc_n}.",
            f"{mm}-mm nodule in the {loc_n}.",
            f"There is a {mm} mm well-circumscribed nodule in the {loc_n}.",
        ]))
    if not st.positive:
        others = st.atelectasis is not None or st.nodule is not None
        if st.resolved_zone:
            body.append(_pick(rng, [
                f"Previously noted {zone_phrase(rng, st.resolved_zone)} opacity has resolved.",
                f"Interval resolution of the {zone_phrase(rng, st.resolved_zone)} "
                "consolidation.",
            ]))
        clear = (["Lungs are otherwise clear.", "No focal consolidation.",
                  "No other focal airspace opacity.", "The lungs are otherwise clear."]
                 if others else
                 ["The lungs are clear.", "Lungs are clear without focal consolidation.",
                  "No focal consolidation.", "There is no focal airspace consolidation.",
                  "No focal opacity to suggest pneumonia.",
                  "The lungs are well expanded and clear.",
                  "No consolidation."])
        body.append(_pick(rng, clear))
    return body


def _pleura_sentences(rng: np.random.Generator, st: Study) -> list[str]:
    """Effusion (or its absence) and pneumothorax."""
    body: list[str] = []
    if st.effusion:
        size_word = lambda h: "small" if h < 0.15 else "moderate"  # noqa: E731
        if len(st.effusion) == 2:
            body.append(_pick(rng, ["Small bilateral pleural effusions.",
                                    "Bilateral pleural effusions with blunting of both "
                                    "costophrenic angles."]))
        else:
            side, h = st.effusion[0]
            body.append(_pick(rng, [
                f"{_cap(size_word(h))} {side} pleural effusion.",
                f"Blunting of the {side} costophrenic angle, consistent with a "
                f"{size_word(h)} effusion.",
                f"{_cap(size_word(h))} {side} pleural effusion with a basilar meniscus.",
            ]))
        body.append(_pick(rng, ["No pneumothorax.", "There is no pneumothorax.", ""]))
    else:
        body.append(_pick(rng, ["No pleural effusion or pneumothorax.",
                                "There is no pleural effusion or pneumothorax.",
                                "No pleural effusion. No pneumothorax.",
                                "Costophrenic angles are sharp.",
                                "No pleural effusion.", ""]))
    return body


def _heart_sentences(rng: np.random.Generator, st: Study) -> list[str]:
    """Heart size, then the bones (the last two statements of the body)."""
    body: list[str] = []
    if st.cardiomegaly:
        body.append(_pick(rng, ["The heart is enlarged.", "Moderate cardiomegaly.",
                                "Cardiac silhouette is enlarged.", "Heart size is enlarged.",
                                "Stable cardiomegaly."]))
    else:
        body.append(_pick(rng, ["Heart size is normal.",
                                "The cardiomediastinal silhouette is within normal limits.",
                                "Normal heart size.", "Cardiac and mediastinal contours are "
                                "normal.", "The heart is not enlarged."]))
    body.append(_pick(rng, ["No acute osseous abnormality.", "Osseous structures are intact.",
                            "", "", ""]))
    return body


def _impression(rng: np.random.Generator, st: Study, faint: bool) -> list[str]:
    """The impression's statements, most important first."""
    impression: list[str] = []
    if st.positive:
        loc2 = st.location if rng.random() < 0.6 else zone_phrase(rng, st.zone)
        op = _pick(rng, _OPACITY)
        if faint:
            impression.append(_pick(rng, [
                f"Subtle {loc2} opacity; early pneumonia cannot be excluded.",
                f"Possible early pneumonia in the {loc2}.",
                f"Faint opacity in the {loc2} may represent early infection in the "
                "appropriate clinical setting.",
                f"Cannot exclude early infection in the {loc2}.",
                f"Questionable {op} in the {loc2}, which could reflect an early pneumonia.",
            ]))
        else:
            impression.append(_pick(rng, [
                f"{_cap(_ZONE_ADJECTIVE[st.zone])} pneumonia.",
                f"{_cap(op)} in the {loc2}, consistent with pneumonia.",
                f"{_cap(op)} in the {loc2}, consistent with infection.",
                f"Findings compatible with pneumonia in the {loc2}.",
                f"{_cap(op)} in the {loc2} concerning for pneumonia.",
                f"{_cap(op)} in the {loc2}, likely infectious.",
                f"{_cap(loc2)} consolidation compatible with an infectious process.",
            ]))
    if st.effusion:
        impression.append("Bilateral pleural effusions." if len(st.effusion) == 2 else
                          f"{_cap(st.effusion[0][0])} pleural effusion.")
    if st.cardiomegaly and rng.random() < 0.7:
        impression.append(_pick(rng, ["Cardiomegaly.", "Enlarged cardiac silhouette."]))
    if st.nodule is not None:
        impression.append(_pick(rng, [
            "Pulmonary nodule; nonemergent CT is recommended for further evaluation.",
            "Nodule as described; recommend chest CT.",
        ]))
    if not st.positive:
        if st.atelectasis is not None and rng.random() < 0.6:
            side = st.atelectasis[0]
            impression.append(_pick(rng, [
                f"{_cap(side)} basilar opacity most likely atelectasis; pneumonia is less likely.",
                f"Atelectasis at the {side} base. No convincing evidence of pneumonia.",
                f"Linear {side} opacity, favoring atelectasis over infection.",
            ]))
        else:
            impression.append(_pick(rng, [
                "No acute cardiopulmonary process.", "No evidence of pneumonia.",
                "No acute intrathoracic abnormality.", "No radiographic evidence of pneumonia.",
                "No focal consolidation to suggest pneumonia.",
                "No acute cardiopulmonary abnormality.",
                "No evidence of acute disease.",
            ]))
    if st.devices and rng.random() < 0.5:
        impression.append("Support devices as described.")

    return impression
