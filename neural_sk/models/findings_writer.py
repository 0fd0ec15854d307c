"""Structured reports written from the report-guided findings head.

The free-text decoder learns the common sentences of the training reports first and names a
finding late (at a few hundred studies it rarely does). :class:`FindingsWriter` writes what
the findings head (:class:`~neural_sk.models.conditioning.FindingsConditioner`) sees, in the
words the report reader reads back:

* each finding whose probability reaches the threshold, most likely first, placed where one
  of the model's patch maps peaks: its own attention in the findings head, or the
  classification head's (the map the scorer ranks patches by). A finding is placed when the
  training reports usually place it, by the map whose peaks find the reports' side and level
  for more than half of them on the training images (none: no place);
* "No <finding>." for the findings the training reports usually state as absent (the
  pertinent negatives), when the head does not find them, after "No acute cardiopulmonary
  process." when it finds nothing.

Everything it says is learned from the training reports and images: which findings are placed
and by which map, the places (the mean peak of each side and level the reports name) and the
negatives.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..text.lexicon import side_level

__all__ = ["FindingsWriter", "finding_maps", "finding_phrase", "fit_findings_writer",
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
    """Writes a short report from the findings head's probabilities and the model's maps.

    Build it with :meth:`from_training`; :meth:`write` turns the model's output into reports.

    Attributes
    ----------
    findings : tuple of str
        The head's findings, in the order of its outputs.
    negatives : tuple of str
        Findings stated as absent when the head does not find them, most often stated first.
    places : tuple of str
        The regions (a side and a level) a finding can be written in, each named by the
        anatomy concept the training reports use most for it.
    peaks : ndarray of shape (n_maps, len(places), 2)
        Per map, the mean peak (row, column in [0, 1]) of each region in the training images.
    placement : dict
        For each placed finding, ``(map, regions)``: the map that places it and the indices of
        the regions the training reports put it in.

    Examples
    --------
    >>> import numpy as np
    >>> writer = FindingsWriter(findings=("pneumonia", "pleural-effusion"),
    ...                         negatives=("pleural-effusion",),
    ...                         places=("right-lower-lobe", "left-lower-lobe"),
    ...                         peaks=np.array([[[0.7, 0.3], [0.7, 0.7]]]),
    ...                         placement={"pneumonia": (0, (0, 1))})
    >>> maps = np.zeros((1, 1, 4, 2)); maps[0, 0, 3, 0] = 1  # 2x2 grid, bottom right
    >>> writer.write(np.array([[0.9, 0.1]]), maps, (2, 2))
    ['Pneumonia in the left lower lobe. No pleural effusion.']
    """

    findings: tuple[str, ...]
    negatives: tuple[str, ...]
    places: tuple[str, ...]
    peaks: np.ndarray
    placement: dict

    @property
    def placed(self) -> tuple[str, ...]:
        """The findings written with a place."""
        return tuple(self.placement)

    @classmethod
    def from_training(cls, findings: Sequence[str], reports: Sequence[str], maps: np.ndarray,
                      grid_shape: Sequence[int], *,
                      entities: Sequence[list] | None = None) -> FindingsWriter:
        """Learn the negatives, the places and which map places each finding.

        Parameters
        ----------
        findings : sequence of str
            The head's findings (observation names), in the order of its outputs.
        reports : sequence of str
            The training reports, read with :func:`neural_sk.text.extract_entities`.
        maps : ndarray of shape (n, n_maps, P, len(findings))
            Candidate maps over the patches of each training image, per finding.
        grid_shape : (int, int)
            The patch grid.
        entities : sequence of lists, optional
            :func:`~neural_sk.text.extract_entities` of ``reports``, where the caller has them.
        """
        from ..text import extract_entities

        if entities is None:
            entities = extract_entities(list(reports))
        findings = tuple(findings)
        column = {name: k for k, name in enumerate(findings)}
        peaks = attention_peaks(np.moveaxis(np.asarray(maps, dtype=float), -1, -2),
                                grid_shape)  # [n, S, K, 2]
        absent, present, located = Counter(), Counter(), Counter()
        names: dict[tuple, Counter] = defaultdict(Counter)
        mentions: list[tuple] = []  # (study, finding, the regions its report names)
        for i, report in enumerate(entities):
            status: dict[str, set] = defaultdict(set)
            where: dict[str, set] = defaultdict(set)
            for e in report:
                if e.kind == "finding" and e.concept in column:
                    status[e.concept].add(e.status)
                    for place in e.anatomy if e.status == "present" else ():
                        if _region(place):
                            where[e.concept].add(_region(place))
                            names[_region(place)][place] += 1
            for concept, states in status.items():
                if "present" in states:
                    present[concept] += 1
                    located[concept] += bool(where[concept])
                    if where[concept]:
                        mentions.append((i, column[concept], where[concept]))
                elif states == {"absent"}:
                    absent[concept] += 1
        counts = Counter(r for _, _, named in mentions for r in named)
        regions = sorted(r for r, k in counts.items() if k >= MIN_PLACE_MENTIONS)
        at = {r: [(i, k) for i, k, named in mentions if r in named] for r in regions}
        n_maps = peaks.shape[1] if peaks.ndim == 4 else 1
        writer = cls(
            findings=findings,
            negatives=tuple(c for c, k in absent.most_common()
                            if k / max(len(reports), 1) >= NEGATIVE_SHARE),
            places=tuple(names[r].most_common(1)[0][0] for r in regions),
            peaks=np.array([[np.mean([peaks[i, s, k] for i, k in at[r]], 0) for r in regions]
                            for s in range(n_maps)]).reshape(n_maps, len(regions), 2),
            placement={},
        )
        for k, concept in enumerate(findings):
            own = [(i, named) for i, kk, named in mentions if kk == k]
            candidates = tuple(j for j, r in enumerate(regions)
                               if any(r in named for _, named in own))
            if not candidates or located[concept] / present[concept] < PLACE_SHARE:
                continue
            # How often each map's peak lands in a region the study's own report names.
            agreement = [np.mean([_region(writer._nearest(s, candidates, peaks[i, s, k]))
                                  in named for i, named in own]) for s in range(n_maps)]
            best = int(np.argmax(agreement))
            if agreement[best] > PLACE_SHARE:
                writer.placement[concept] = (best, candidates)
        return writer

    def write(self, probabilities: np.ndarray, maps: np.ndarray, grid_shape: Sequence[int],
              threshold: float = 0.5) -> list[str]:
        """One report per study from the head's probabilities [n, K] and the candidate maps
        [n, n_maps, P, K] (as in :meth:`from_training`)."""
        probabilities = np.asarray(probabilities, dtype=float)
        peaks = attention_peaks(np.moveaxis(np.asarray(maps, dtype=float), -1, -2), grid_shape)
        column = {name: k for k, name in enumerate(self.findings)}
        reports = []
        for i, row in enumerate(probabilities):
            sentences = []
            for k in np.argsort(-row, kind="stable"):
                if row[k] < threshold:
                    break
                sentences.append(self._present(self.findings[k], peaks[i, :, k]))
            found = bool(sentences)
            sentences += [f"No {finding_phrase(c)}." for c in self.negatives
                          if row[column[c]] < threshold]
            reports.append(" ".join(sentences) if found else " ".join([NOTHING, *sentences]))
        return reports

    def _present(self, concept: str, peaks: np.ndarray) -> str:
        phrase = finding_phrase(concept)
        phrase = phrase[0].upper() + phrase[1:]
        if concept not in self.placement:
            return f"{phrase} is present."
        source, candidates = self.placement[concept]
        return f"{phrase} in the {place_phrase(self._nearest(source, candidates, peaks[source]))}."

    def _nearest(self, source: int, candidates: Sequence[int], peak: np.ndarray) -> str:
        """The place among ``candidates`` whose mean peak in map ``source`` is nearest."""
        candidates = list(candidates)
        distance = ((self.peaks[source, candidates] - peak) ** 2).sum(-1)
        return self.places[candidates[int(np.argmin(distance))]]


def finding_maps(model, features) -> tuple[np.ndarray, np.ndarray]:
    """The findings head's probabilities [B, K] and the candidate maps [B, n_maps, P, K]: each
    finding's attention in the findings head, and (with a classification head) the map the
    MIL head ranks patches by (the maximum over labels of a multi-label head)."""
    import torch

    with torch.no_grad():
        logits, attention = model.conditioner.attend(features)
        maps = [attention.float()]
        if model.head is not None:
            label_map = model.patch_scores(features, "mil")[1].float()
            if label_map.dim() == 3:
                label_map = label_map.max(1).values
            maps.append(label_map[..., None].expand_as(maps[0]))
    return (logits.sigmoid().float().cpu().numpy(), torch.stack(maps, 1).cpu().numpy())


def fit_findings_writer(model, features_of, n: int, reports: Sequence[str],
                        batch_size: int, entities: Sequence[list] | None = None) -> FindingsWriter:
    """A :class:`FindingsWriter` learned from the ``n`` training studies after training.

    ``features_of(positions)`` gives the (unaugmented) patch features of the studies at
    those positions; the model is put in eval mode. ``entities``: the reports' entities, where
    the caller has read them.
    """
    import torch

    from .conditioning import FINDINGS

    model.eval()
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            features = features_of(torch.arange(start, min(start + batch_size, n)))
            parts.append(finding_maps(model, features)[1])
    P = model.encoder.grid_shape[0] * model.encoder.grid_shape[1]
    maps = np.concatenate(parts) if parts else np.zeros((0, 1, P, len(FINDINGS)))
    return FindingsWriter.from_training(FINDINGS, reports, maps, model.encoder.grid_shape,
                                        entities=entities)


def write_findings(model, features, threshold: float = 0.5) -> list[str]:
    """Reports written by the model's :class:`FindingsWriter` from patch features [B, P, d]."""
    writer = getattr(model, "report_writer", None)
    if writer is None:
        raise ValueError("report_decoder['writer']='findings' needs a model fitted with "
                         "conditioning='findings' by this version: refit the scorer")
    probabilities, maps = finding_maps(model, features)
    return writer.write(probabilities, maps, model.encoder.grid_shape, threshold)
