"""Structured reports written from the report-guided findings head.

The free-text decoder learns the common sentences of the training reports first and names a
finding late (at a few hundred studies it rarely does). :class:`FindingsWriter` writes what
the findings head (:class:`~neural_sk.models.conditioning.FindingsConditioner`) sees, in the
words the report reader reads back:

* each finding whose probability reaches the threshold, most likely first, placed where its
  attention peaks when the training reports usually place that finding and the peaks of the
  training images find the reports' places for more than half of them;
* "No <finding>." for the findings the training reports usually state as absent (the
  pertinent negatives), when the head does not find them, after "No acute cardiopulmonary
  process." when it finds nothing.

Everything it says is learned from the training reports and images: which findings are placed,
the places (the mean attention peak of each sided place the reports name) and the negatives.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..text.lexicon import side_level

__all__ = ["FindingsWriter", "finding_phrase", "findings_attention", "fit_findings_writer",
           "place_phrase", "write_findings"]

#: A finding is placed when at least this share of its present mentions in the training
#: reports name a sided place.
PLACE_SHARE = 0.5
#: A finding is a pertinent negative when at least this share of the training reports state
#: it as absent.
NEGATIVE_SHARE = 0.2
#: What a report says first when the head finds nothing (the reader's "no finding").
NOTHING = "No acute cardiopulmonary process."
#: A place needs this many located mentions in the training reports to be written.
MIN_PLACE_MENTIONS = 3


def finding_phrase(concept: str) -> str:
    """The words that name an observation: its own name where the lexicon knows it as a
    synonym (``"pleural effusion"``), else the lexicon's first synonym.

    Examples
    --------
    >>> finding_phrase("pleural-effusion"), finding_phrase("support-devices")
    ('pleural effusion', 'tube')
    """
    from ..text import load_lexicon

    synonyms = load_lexicon()["findings"][concept]
    words = concept.replace("-", " ")
    return words if words in synonyms else synonyms[0]


def place_phrase(place: str) -> str:
    """The words of a sided anatomy concept (``"right-lower-lobe"`` -> ``"right lower lobe"``)."""
    return place.replace("-", " ")


def _region(place: str) -> tuple | None:
    """(side, level) of a right or left place ("right-base" and "right-lower-lobe" are one
    region); None for other places."""
    side, level = side_level(place)
    return (side, level) if side in ("right", "left") else None


def attention_peaks(attention: np.ndarray, grid_shape: Sequence[int]) -> np.ndarray:
    """(row, column) of each map's highest patch, in [0, 1] of the image: [..., P] -> [..., 2]."""
    h, w = grid_shape
    top = np.asarray(attention).argmax(-1)
    return np.stack([(top // w + 0.5) / h, (top % w + 0.5) / w], -1)


@dataclass
class FindingsWriter:
    """Writes a short report from the findings head's probabilities and attention.

    Build it with :meth:`from_training`; :meth:`write` turns the head's output into reports.

    Attributes
    ----------
    findings : tuple of str
        The head's findings, in the order of its outputs.
    negatives : tuple of str
        Findings stated as absent when the head does not find them, most often stated first.
    placed : tuple of str
        Findings that are written with a place.
    places : tuple of str
        The regions (a side and a level) a placed finding can be written in, each named by
        the anatomy concept the training reports use most for it.
    peaks : ndarray of shape (len(places), 2)
        Mean attention peak (row, column in [0, 1]) of each region in the training images.
    place_findings : dict
        For each placed finding, the indices of the places the training reports put it in.

    Examples
    --------
    >>> import numpy as np
    >>> writer = FindingsWriter(findings=("pneumonia", "pleural-effusion"),
    ...                         negatives=("pleural-effusion",), placed=("pneumonia",),
    ...                         places=("right-lower-lobe", "left-lower-lobe"),
    ...                         peaks=np.array([[0.7, 0.3], [0.7, 0.7]]),
    ...                         place_findings={"pneumonia": (0, 1)})
    >>> attention = np.zeros((1, 4, 2)); attention[0, 3, 0] = 1  # 2x2 grid, bottom right
    >>> writer.write(np.array([[0.9, 0.1]]), attention, (2, 2))
    ['Pneumonia in the left lower lobe. No pleural effusion.']
    """

    findings: tuple[str, ...]
    negatives: tuple[str, ...]
    placed: tuple[str, ...]
    places: tuple[str, ...]
    peaks: np.ndarray
    place_findings: dict

    @classmethod
    def from_training(cls, findings: Sequence[str], reports: Sequence[str],
                      attention: np.ndarray, grid_shape: Sequence[int]) -> FindingsWriter:
        """Learn the negatives, the placed findings and the places from training studies.

        Parameters
        ----------
        findings : sequence of str
            The head's findings (observation names), in the order of its outputs.
        reports : sequence of str
            The training reports, read with :func:`neural_sk.text.extract_entities`.
        attention : ndarray of shape (n, P, len(findings))
            The head's attention over the patches of each training image, per finding.
        grid_shape : (int, int)
            The patch grid.
        """
        from ..text import extract_entities

        findings = tuple(findings)
        column = {name: k for k, name in enumerate(findings)}
        peaks = attention_peaks(np.moveaxis(np.asarray(attention, dtype=float), -1, -2),
                                grid_shape)  # [n, K, 2]
        absent, present, located = Counter(), Counter(), Counter()
        at_region: dict[tuple, list] = defaultdict(list)
        names: dict[tuple, Counter] = defaultdict(Counter)
        seen_with: dict[str, Counter] = defaultdict(Counter)
        mentions_located: list[tuple] = []  # (study, finding, regions the report names)
        for i, mentions in enumerate(extract_entities(list(reports))):
            status: dict[str, set] = defaultdict(set)
            where: dict[str, set] = defaultdict(set)
            for e in mentions:
                if e.kind == "finding" and e.concept in column:
                    status[e.concept].add(e.status)
                    if e.status == "present":
                        for place in e.anatomy:
                            if _region(place):
                                where[e.concept].add(_region(place))
                                names[_region(place)][place] += 1
            for concept, states in status.items():
                if "present" in states:
                    present[concept] += 1
                    located[concept] += bool(where[concept])
                    for region in where[concept]:
                        at_region[region].append(peaks[i, column[concept]])
                        seen_with[concept][region] += 1
                    if where[concept]:
                        mentions_located.append((i, column[concept], where[concept]))
                elif states == {"absent"}:
                    absent[concept] += 1
        n = max(len(reports), 1)
        regions = sorted(r for r, v in at_region.items() if len(v) >= MIN_PLACE_MENTIONS)
        placed = tuple(c for c in findings if present[c]
                       and located[c] / present[c] >= PLACE_SHARE
                       and any(r in regions for r in seen_with[c]))
        writer = cls(
            findings=findings,
            negatives=tuple(c for c, k in absent.most_common() if k / n >= NEGATIVE_SHARE),
            placed=placed,
            places=tuple(names[r].most_common(1)[0][0] for r in regions),
            peaks=np.array([np.mean(at_region[r], 0) for r in regions]).reshape(-1, 2),
            place_findings={c: tuple(j for j, r in enumerate(regions) if seen_with[c][r])
                            for c in placed},
        )
        # A place is written only where the attention peak finds the side and level the
        # training report names for more than half of them: a head whose attention does not
        # localise names no place.
        hits: dict[str, list] = defaultdict(list)
        for i, k, named in mentions_located:
            if findings[k] in placed:
                hits[findings[k]].append(_region(writer._nearest(findings[k], peaks[i, k]))
                                         in named)
        writer.placed = tuple(c for c in placed if np.mean(hits[c]) > PLACE_SHARE)
        writer.place_findings = {c: writer.place_findings[c] for c in writer.placed}
        return writer

    def write(self, probabilities: np.ndarray, attention: np.ndarray,
              grid_shape: Sequence[int], threshold: float = 0.5) -> list[str]:
        """One report per study from the head's probabilities [n, K] and attention [n, P, K]."""
        probabilities = np.asarray(probabilities, dtype=float)
        peaks = attention_peaks(np.moveaxis(np.asarray(attention, dtype=float), -1, -2),
                                grid_shape)
        column = {name: k for k, name in enumerate(self.findings)}
        reports = []
        for i, row in enumerate(probabilities):
            sentences = []
            for k in np.argsort(-row, kind="stable"):
                if row[k] < threshold:
                    break
                sentences.append(self._present(self.findings[k], peaks[i, k]))
            found = bool(sentences)
            sentences += [f"No {finding_phrase(c)}." for c in self.negatives
                          if row[column[c]] < threshold]
            reports.append(" ".join(sentences) if found else " ".join([NOTHING, *sentences]))
        return reports

    def _present(self, concept: str, peak: np.ndarray) -> str:
        phrase = finding_phrase(concept)
        if concept not in self.placed:
            return f"{phrase[0].upper()}{phrase[1:]} is present."
        return f"{phrase[0].upper()}{phrase[1:]} in the {place_phrase(self._nearest(concept, peak))}."

    def _nearest(self, concept: str, peak: np.ndarray) -> str:
        """The place, among those the training reports put ``concept`` in, nearest the peak."""
        candidates = list(self.place_findings[concept])
        return self.places[candidates[int(np.argmin(((self.peaks[candidates] - peak) ** 2)
                                                    .sum(-1)))]]


def findings_attention(model, features) -> tuple[np.ndarray, np.ndarray]:
    """The findings head's probabilities [B, K] and attention [B, P, K] as float arrays."""
    import torch

    with torch.no_grad():
        logits, attention = model.conditioner.attend(features)
    return logits.sigmoid().float().cpu().numpy(), attention.float().cpu().numpy()


def fit_findings_writer(model, features_of, n: int, reports: Sequence[str],
                        batch_size: int) -> FindingsWriter:
    """A :class:`FindingsWriter` learned from the ``n`` training studies after training.

    ``features_of(positions)`` gives the (unaugmented) patch features of the studies at
    those positions; the model is put in eval mode.
    """
    import torch

    from .conditioning import FINDINGS

    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            features = features_of(torch.arange(start, min(start + batch_size, n)))
            parts.append(findings_attention(model, features)[1])
    attention = np.concatenate(parts) if parts else np.zeros((0, 0, len(FINDINGS)))

    return FindingsWriter.from_training(FINDINGS, reports, attention, model.encoder.grid_shape)


def write_findings(model, features, threshold: float = 0.5) -> list[str]:
    """Reports written by the model's :class:`FindingsWriter` from patch features [B, P, d]."""
    writer = getattr(model, "report_writer", None)
    if writer is None:
        raise ValueError("report_decoder['writer']='findings' needs a model fitted with "
                         "conditioning='findings' by this version: refit the scorer")
    probabilities, attention = findings_attention(model, features)
    return writer.write(probabilities, attention, model.encoder.grid_shape, threshold)
