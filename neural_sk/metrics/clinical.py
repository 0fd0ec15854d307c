"""Clinical efficacy of generated reports: do they state the findings the reference states?

Report-generation work scores a generated report by the findings a labeler reads from it,
against those read from the reference report (CheXpert-labeler "clinical efficacy"). Here the
reader is :func:`neural_sk.text.extract_entities`, the same one that builds report graphs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from ..text import OBSERVATIONS, extract_entities
from ..text.lexicon import side_level as _side_level

__all__ = ["clinical_efficacy"]

_SENTENCE = re.compile(r"[^.!?\n]+")


def _present(entities: list, observations: Sequence[str]) -> tuple[np.ndarray, list[dict]]:
    """Present findings as an indicator matrix, and each finding's anatomy per report."""
    column = {name: j for j, name in enumerate(observations)}
    found = np.zeros((len(entities), len(observations)), dtype=bool)
    where: list[dict] = []
    for i, mentions in enumerate(entities):
        places: dict[str, set] = {}
        for e in mentions:
            if e.kind == "finding" and e.status == "present" and e.concept in column:
                found[i, column[e.concept]] = True
                places.setdefault(e.concept, set()).update(e.anatomy)
        where.append(places)
    return found, where


def _agree_side_level(generated: set, reference: set) -> bool:
    """Some generated place has the side and level of some reference place (both named)."""
    ref = {_side_level(p) for p in reference}
    return any(side and level and (side, level) in ref
               for side, level in map(_side_level, generated))


def _repeats_a_sentence(report: str) -> bool:
    sentences = [" ".join(s.lower().split()) for s in _SENTENCE.findall(report or "")]
    sentences = [s for s in sentences if s]
    return len(sentences) != len(set(sentences))


def clinical_efficacy(generated: Sequence[str], reference: Sequence[str], *,
                      observations: Sequence[str] | None = None) -> dict[str, Any]:
    """Score generated reports by the findings they state, against reference reports.

    Both sides are read with :func:`neural_sk.text.extract_entities`; a finding counts when
    it is stated as present. Precision, recall and F1 are computed over every (report,
    observation) pair (micro) and per observation.

    Parameters
    ----------
    generated : sequence of str
        Reports written by a model, one per study.
    reference : sequence of str
        The studies' own reports, in the same order.
    observations : sequence of str, optional
        Observations to score; default every observation the reader knows except
        ``no-finding`` (which is derived, not stated).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1`` (micro over present findings), ``macro_f1`` (over
        observations present in at least one reference), ``per_observation`` (observation ->
        precision, recall, f1, support), ``location_agreement`` (of the findings present in
        both reports whose reference names an anatomy, the share where the generated report
        names at least one of the same places; NaN when there is none), ``n_located``,
        ``location_agreement_side_level`` (the same share when a sided place also counts as
        its side and level: "right lower zone", "right base" and "right lower lobe" agree), and
        ``repeated_sentence_rate`` (share of generated reports that repeat a sentence).

    Examples
    --------
    >>> ce = clinical_efficacy(["Right lower lobe pneumonia.", "No effusion."],
    ...                        ["Pneumonia in the right lower lobe.", "Small left effusion."])
    >>> ce["precision"], ce["recall"], ce["location_agreement"]
    (1.0, 0.5, 1.0)
    """
    generated, reference = list(generated), list(reference)
    if len(generated) != len(reference):
        raise ValueError(f"generated has {len(generated)} reports but reference has "
                         f"{len(reference)}; they must be paired, one per study")
    if observations is None:
        observations = [o for o in OBSERVATIONS if o != "no-finding"]
    unknown = sorted(set(observations) - set(OBSERVATIONS))
    if unknown:
        raise ValueError(f"unknown observations {unknown}; known: {list(OBSERVATIONS)}")
    observations = list(observations)
    pred, pred_where = _present(extract_entities(generated), observations)
    true, true_where = _present(extract_entities(reference), observations)

    p, r, f, _ = precision_recall_fscore_support(true.ravel(), pred.ravel(), average="binary",
                                                 zero_division=0.0)
    per = precision_recall_fscore_support(true, pred, average=None, zero_division=0.0)
    support = true.sum(axis=0)
    per_observation = {
        name: {"precision": float(per[0][j]), "recall": float(per[1][j]),
               "f1": float(per[2][j]), "support": int(support[j])}
        for j, name in enumerate(observations)
    }
    pairs = [(pred_where[i][concept], places)
             for i, found in enumerate(true_where) for concept, places in found.items()
             if places and concept in pred_where[i]]
    agree = [bool(gen & ref) for gen, ref in pairs]
    coarse = [bool(gen & ref) or _agree_side_level(gen, ref) for gen, ref in pairs]
    return {
        "precision": float(p), "recall": float(r), "f1": float(f),
        "macro_f1": float(per[2][support > 0].mean()) if support.any() else float("nan"),
        "per_observation": per_observation,
        "location_agreement": float(np.mean(agree)) if agree else float("nan"),
        "n_located": len(agree),
        "location_agreement_side_level": float(np.mean(coarse)) if coarse else float("nan"),
        "repeated_sentence_rate": float(np.mean([_repeats_a_sentence(g) for g in generated]))
        if generated else float("nan"),
    }
