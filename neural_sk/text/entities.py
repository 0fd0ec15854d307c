"""Findings (with present / absent / uncertain status) and anatomy in radiology reports.

The reader is rule-based and offline: spaCy's blank English tokenizer and sentencizer and
one ``PhraseMatcher`` (lower-cased tokens) over the curated lexicon in ``lexicon.json``
(:mod:`neural_sk.text.lexicon`); the scoping rules below run over the matched spans. No model is loaded. Batched with
``nlp.pipe``, it reads a few thousand IU reports per second on one CPU core
(``benchmarks/bench_reports.py``).

How a report is read
--------------------
1. Sections (:func:`neural_sk.text.sections.section_spans`): by default every section that
   describes the image is read; indication, history, comparison, technique, examination,
   recommendation and notification sections are skipped, because the conditions they name
   ("eval for pneumonia") are questions, not observations. Each section, and each paragraph
   or numbered item within it, is its own text, so sentences never cross a header.
2. Findings are mentions of the 14 CheXpert observations, found four ways:

   - *lexical*: a synonym from the lexicon ("infiltrate", "airspace disease" -> lung-opacity;
     "collapse" -> atelectasis; "hydropneumothorax" -> pneumothorax and pleural-effusion;
     "nodular opacity" -> lung-lesion and lung-opacity). Exclusions ("pericardial
     effusion", "calcified nodule", "granulomatous infection", "lung volumes") block a
     synonym inside them; the longest match wins.
   - *indirect signs*, whose "present" is read as "uncertain": volume loss (atelectasis),
     vascular congestion, cephalization, fluid overload (edema), blunting of a
     costophrenic angle (pleural effusion): each suggests the finding without proving it.
   - *head + attribute*: a structure named with a state word in the same sentence (the
     nearest attribute within 8 tokens wins): "heart size is normal" -> cardiomegaly
     absent, "the heart is enlarged" -> present, "borderline enlarged" -> present (a degree,
     like "mild"), "upper limits normal or mildly enlarged" (a state and its opposite as
     alternatives) -> uncertain;
     "the lungs are clear" -> lung-opacity and consolidation absent; "mediastinum is
     widened" -> enlarged-cardiomediastinum; "costophrenic angles are sharp" -> pleural
     effusion absent. A structure named without a state word is not a finding.
   - *context-dependent words*: "density" is a lung opacity only in a sentence that names a
     lung region (elsewhere it is often bone, a hernia or a device); and "no acute
     cardiopulmonary abnormality", "normal chest" -> no-finding (present).

3. Status comes from NegEx-style scoped cues. Negation: "no", "without", "free of",
   "negative for", "clear of", "resolved", "removal of", "history of", "rather than", "not
   seen", "no longer visualized", "is normal" ...; uncertainty: "possible", "may represent",
   "cannot exclude", "questionable", "suspicious for", "concerning for", "versus", "?",
   "in the appropriate clinical setting", "no new" (as the CheXpert labeler reads it: an
   older finding may persist) ... High-probability hedges read as present, as on the
   radiology hedging scale ("probable", "likely", "favored", "presumed", "most consistent
   with", "is likely"): they sit with "consistent with", not with "possible". An opacity
   the sentence attributes to a non-parenchymal or old cause is not a lung opacity
   ("nodular densities consistent with chronic granulomatous disease", "opacity ...
   secondary to epicardial fat") unless the cause is one of several alternatives ("may
   represent scarring or atelectasis"). A *pre* cue reaches forward over at most its scope in
   tokens ("no" 20, "not" 3), a *post* cue ("is not seen", "cannot be excluded") back over
   at most its scope; words inside other finding or anatomy mentions do not count, so a
   list ("no effusion, pneumothorax, edema or nodules") is covered. Scopes end at
   terminators ("but", "however", "except", "which", "there", "and the", ", with", ";") and
   at pseudo cues that contain a cue word without negating ("no change in", "not well
   seen"). Transparent phrases neither cue nor end a scope ("to suggest" in "no opacity to
   suggest pneumonia"; "nearly resolved", "partial resolution of"; "prior study"). A post
   cue does not reach back over a comma unless the comma continues a list closed by
   "and"/"or" ("consolidation, atelectasis, and blunting have cleared"). The nearest cue in
   reach wins ("no definite pneumonia, possible atelectasis": atelectasis uncertain), but a
   hedge governed by a negation is a negation: right after it ("no suspicious nodule"),
   joined to a negated list by "or" ("no consolidation or possible opacity"), or evidential
   after a negated finding ("no opacity concerning for pneumonia"). For a head + attribute
   finding whose attribute follows a verb ("the heart is not enlarged") only the clause's
   own cues count, so "no pneumothorax and the heart is enlarged" keeps cardiomegaly.
   Past-event modifiers right before an infection ("prior pneumonia") mark it absent.
4. Anatomy: regions with side and level (lobes, zones, bases, apices, hila, costophrenic
   angles, hemithorax, hemidiaphragm, pleura; "right lower lobe" -> ``right-lower-lobe``,
   "bibasilar" -> ``bilateral-base``, "lower lobes" -> ``bilateral-lower-lobe``, "lingula",
   "retrocardiac") and organs (heart, mediastinum, aorta, spine, ribs, ...). Each finding is
   linked to every anatomy mention of its sentence (:attr:`Entity.anatomy`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from ._matcher import reader
from .lexicon import ANATOMY, CONCEPTS, OBSERVATIONS, STATUSES, load_lexicon
from .sections import CONTEXT_SECTIONS, section_spans

__all__ = [
    "Entity",
    "OBSERVATIONS",
    "ANATOMY",
    "STATUSES",
    "CONCEPTS",
    "extract_entities",
    "load_lexicon",
]


@dataclasses.dataclass(frozen=True)
class Entity:
    """One finding or anatomy mention in a report.

    Parameters
    ----------
    concept : str
        A CheXpert observation (:data:`OBSERVATIONS`) or an anatomy name (:data:`ANATOMY`).
    kind : {"finding", "anatomy"}
    status : {"present", "absent", "uncertain"} or None
        None for anatomy.
    sentence : int
        Index of the sentence in the report (counted over the sections read).
    start, end : int
        Character offsets ``[start, end)`` in the original report string.
    text : str
        ``report[start:end]``.
    anatomy : tuple of str
        For findings: the anatomy names mentioned in the same sentence.

    Examples
    --------
    >>> e = extract_entities(["Right lower lobe consolidation."])[0]
    >>> [(x.concept, x.kind, x.status) for x in e]
    [('right-lower-lobe', 'anatomy', None), ('consolidation', 'finding', 'present')]
    >>> e[1].anatomy
    ('right-lower-lobe',)
    """

    concept: str
    kind: str
    status: str | None
    sentence: int
    start: int
    end: int
    text: str
    anatomy: tuple[str, ...] = ()


_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n|(?:^|\n)(?=[ \t]*\d{1,2}[.)][ \t])")


def _pieces(report: str, sections: str | Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of the report to read: selected sections, split into paragraphs."""
    spans = section_spans(report)
    if sections == "all":
        chosen = [(s, e) for name, s, e in spans if name not in CONTEXT_SECTIONS]
    else:
        wanted = {sections} if isinstance(sections, str) else set(sections)
        chosen = [(s, e) for name, s, e in spans if name in wanted]
    out = []
    for start, end in chosen:
        cursor = start
        for m in _PARAGRAPH_RE.finditer(report, start, end):
            if m.start() > cursor:
                out.append((cursor, m.start()))
            cursor = max(cursor, m.end())
        if end > cursor:
            out.append((cursor, end))
    return out


def extract_entities(
    reports: Sequence[str],
    *,
    sections: str | Sequence[str] = "all",
    batch_size: int = 256,
) -> list[list[Entity]]:
    """Find findings (with status) and anatomy in a batch of reports.

    Parameters
    ----------
    reports : sequence of str
        Report texts. ``None`` or an empty string gives an empty list.
    sections : "all", section name or sequence of names, default="all"
        Which sections to read (see :func:`neural_sk.text.extract_sections`). ``"all"``
        reads every section except the clinical context (indication, history, comparison,
        technique, examination, recommendation, notification). ``"findings"`` reads the
        FINDINGS section (and a report's unheaded body when it has no FINDINGS header);
        ``"impression"`` the IMPRESSION (or CONCLUSION) section.
    batch_size : int, default=256
        Texts per ``nlp.pipe`` batch.

    Returns
    -------
    list of list of Entity
        One list per report, in order of appearance (anatomy before a finding that
        starts at the same place). Offsets index the original report string.

    Examples
    --------
    >>> ents = extract_entities(["No pneumonia.", "Cannot exclude pneumonia."])
    >>> [(e.concept, e.status) for e in ents[0]], [(e.concept, e.status) for e in ents[1]]
    ([('pneumonia', 'absent')], [('pneumonia', 'uncertain')])
    >>> [(e.concept, e.status) for e in extract_entities(["The lungs are clear."])[0]]
    [('lungs', None), ('lung-opacity', 'absent'), ('consolidation', 'absent')]
    """
    if isinstance(reports, str):
        raise TypeError("reports must be a sequence of str, not one str; wrap it in a list")
    if isinstance(sections, str) and sections != "all" and not sections:
        raise ValueError("sections must be 'all', a section name or a list of names")
    if not isinstance(batch_size, (int,)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    read = reader().read
    owners: list[tuple[int, int]] = []  # (report index, char offset) per piece
    texts: list[str] = []
    for i, report in enumerate(reports):
        if report is None or (isinstance(report, float) and report != report):
            continue
        if not isinstance(report, str):
            raise TypeError(f"report {i} is {type(report).__name__}, not str")
        for start, end in _pieces(report, sections):
            owners.append((i, start))
            texts.append(report[start:end])

    raw: list[list[tuple]] = [[] for _ in range(len(reports))]
    sentence_base: dict[int, int] = {}
    for (i, offset), (n_sents, mentions) in zip(owners, read(texts, batch_size)):
        base = sentence_base.get(i, 0)  # sentences are numbered across a report's pieces
        for kind, concept, status, sent, start, end in mentions:
            raw[i].append((start + offset, kind == "finding", end + offset, kind, concept,
                           status, base + sent))
        sentence_base[i] = base + n_sents
    return [_entities(reports[i], mentions) for i, mentions in enumerate(raw)]


def _entities(report: str, mentions: list[tuple]) -> list[Entity]:
    """Entities of one report, sorted by position, findings linked to their sentence's
    anatomy."""
    if not mentions:
        return []
    places: dict[int, list[str]] = {}
    for _, _, _, kind, concept, _, sent in mentions:
        if kind == "anatomy":
            names = places.setdefault(sent, [])
            if concept not in names:
                names.append(concept)
    mentions.sort(key=lambda m: m[:3])
    return [
        Entity(concept, kind, status, sent, start, end, report[start:end],
               tuple(places.get(sent, ())) if is_finding else ())
        for start, is_finding, end, kind, concept, status, sent in mentions
    ]
