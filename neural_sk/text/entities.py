"""Findings (with present / absent / uncertain status) and anatomy in radiology reports.

The reader is rule-based and offline: spaCy's blank English tokenizer and sentencizer and
one ``PhraseMatcher`` (lower-cased tokens) over the curated lexicon in ``lexicon.json``; the
scoping rules below run over the matched spans. No model is loaded. Batched with
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
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "Entity",
    "OBSERVATIONS",
    "ANATOMY",
    "STATUSES",
    "CONCEPTS",
    "extract_entities",
    "load_lexicon",
]

STATUSES = ("present", "absent", "uncertain")
_PRESENT, _ABSENT, _UNCERTAIN = STATUSES


@lru_cache(maxsize=1)
def load_lexicon() -> dict[str, Any]:
    """Return the curated radiology lexicon (parsed ``lexicon.json``).

    Examples
    --------
    >>> lexicon = load_lexicon()
    >>> "pneumonia" in lexicon["findings"]
    True
    """
    text = resources.files("neural_sk.text").joinpath("lexicon.json").read_text("utf-8")
    return json.loads(text)


def _anatomy_names(lexicon: dict[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for region in lexicon["anatomy"]["sided_regions"]:
        if region == "lung":
            names += ["lungs", "right-lung", "left-lung"]
        elif region == "middle-lobe":
            names += ["right-middle-lobe"]
        else:
            names += [region, f"right-{region}", f"left-{region}", f"bilateral-{region}"]
    for organ in lexicon["anatomy"]["organs"].values():
        if organ not in names:
            names.append(organ)
    return tuple(names)


#: The 14 CheXpert observations, in the CheXpert order.
OBSERVATIONS: tuple[str, ...] = tuple(load_lexicon()["observations"])
#: Every anatomy name the reader can produce (fixed order: the one-hot vocabulary).
ANATOMY: tuple[str, ...] = _anatomy_names(load_lexicon())
#: Observations then anatomy: the concept vocabulary of report graphs.
CONCEPTS: tuple[str, ...] = OBSERVATIONS + ANATOMY


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


# --------------------------------------------------------------------------------------
# Lexicon compilation
# --------------------------------------------------------------------------------------

_VOWEL_Y = re.compile(r"[aeiou]y$")


def _plural(word: str) -> str | None:
    if not word.isalpha() or len(word) < 3 or word.endswith(("s", "ous", "ed", "ing")):
        return None
    if word.endswith("y") and not _VOWEL_Y.search(word):
        return word[:-1] + "ies"
    if word.endswith(("x", "ch", "sh", "z")):
        return word + "es"
    return word + "s"


def _with_plurals(phrases: Iterable[str]) -> list[str]:
    out = []
    for phrase in phrases:
        out.append(phrase)
        words = phrase.split(" ")
        plural = _plural(words[-1])
        if plural:
            out.append(" ".join(words[:-1] + [plural]))
    return list(dict.fromkeys(out))


@dataclasses.dataclass(frozen=True)
class _Cue:
    pre: tuple[str, int] | None = None  # (status, scope in tokens)
    post: tuple[str, int] | None = None
    kind: str = "cue"  # "cue" | "terminator" | "pseudo" | "transparent"
    concepts: frozenset | None = None  # the cue only applies to these concepts
    modifier: bool = False  # an adjective hedge ("possible"), negated inside a negated list
    evidential: bool = False  # "concerning for": after a negated finding, negated too


class _Doc:
    """Per-text state shared by the status rules."""

    __slots__ = ("lowers", "cues", "free", "sent_bounds", "finding_start", "finding_end")

    def __init__(self, lowers: list[str], cues: list, covered: list[bool],
                 sent_bounds: list[tuple[int, int]], finding_start: list[bool],
                 finding_end: list[bool]) -> None:
        self.lowers = lowers
        self.finding_start = finding_start
        self.finding_end = finding_end  # finding_end[i]: a finding mention ends at token i
        self.cues = cues
        self.sent_bounds = sent_bounds
        # free[i]: tokens before i not inside a finding or anatomy mention. Scopes count
        # these only, so a list of findings ("no effusion, pneumothorax, edema or nodules")
        # does not use up a cue's reach.
        free = [0]
        for c in covered:
            free.append(free[-1] + (not c))
        self.free = free

    def gap(self, left_end: int, right_start: int) -> int:
        return self.free[right_start] - self.free[left_end]


_COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "appears", "appear", "remains",
                       "remain", "seems", "seem", "looks", "look", "has", "have"})


class _Reader:
    """Compiled spaCy pipeline and matchers; built once per process (see ``_reader``)."""

    def __init__(self, lexicon: dict[str, Any]) -> None:
        import spacy
        from spacy.attrs import IDX, LENGTH, SENT_START
        from spacy.matcher import PhraseMatcher
        from spacy.util import compile_infix_regex

        nlp = spacy.blank("en")
        # "2.Probably scarring", "apex.There", "atelectasis.2.": split a period glued to a word.
        infixes = list(nlp.Defaults.infixes) + [r"(?<=[0-9a-z])\.(?=[A-Za-z])",
                                                r"(?<=[a-z])\.(?=[0-9])"]
        nlp.tokenizer.infix_finditer = compile_infix_regex(infixes).finditer
        # "?" is an uncertainty cue ("? pneumonia"), not a sentence end.
        nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "..", "...", "...."]})
        self.nlp = nlp
        self.array_attrs = [IDX, LENGTH, SENT_START]
        self.matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self.info: dict[int, tuple[str, Any]] = {}

        def add(category: str, phrase: str, info: Any) -> None:
            key = f"{category}:{phrase}"
            self.matcher.add(key, [nlp.make_doc(phrase)])
            self.info[nlp.vocab.strings[key]] = (category, info)

        # Findings: a phrase may name several concepts ("nodular opacity").
        finding_concepts: dict[str, list[str]] = {}
        for concept, phrases in lexicon["findings"].items():
            if concept not in OBSERVATIONS:
                raise ValueError(f"lexicon names unknown observation {concept!r}")
            for phrase in _with_plurals(phrases):
                finding_concepts.setdefault(phrase, []).append(concept)
        for phrase, concepts in lexicon.get("multi", {}).items():
            finding_concepts.setdefault(phrase, []).extend(concepts)
        for phrase, concepts in finding_concepts.items():
            add("F", phrase, tuple(dict.fromkeys(concepts)))
        # Ambiguous words that are a finding only in a sentence that names a lung region.
        contextual = lexicon.get("contextual", {})
        regions = set(contextual.get("lung_regions", ()))
        self.lung_places = frozenset(
            name for name in ANATOMY
            if name in ("lungs", "lingula") or any(name.endswith(r) for r in regions))
        for concept, phrases in contextual.get("findings", {}).items():
            for phrase in phrases:
                add("F", phrase, (("lung", concept),))
        # Indirect signs: present is read as uncertain.
        for concept, phrases in lexicon.get("signs", {}).items():
            if concept.startswith("_"):
                continue
            for phrase in _with_plurals(phrases):
                add("F", phrase, (("sign", concept),))
        for phrase in lexicon["exclude"]:
            add("F", phrase, ())

        # Heads (structures whose state word makes a finding) and their attributes.
        attributes: dict[str, dict[str, str]] = {}
        self.head_groups: dict[str, dict[str, Any]] = {}
        for group, spec in lexicon["heads"].items():
            self.head_groups[group] = {
                "concepts": tuple(spec["concepts"]),
                "positive_status": spec.get("positive_status", _PRESENT),
            }
            for phrase in _with_plurals(spec["phrases"]):
                add("H", phrase, group)
            for polarity in ("positive", "negative"):
                for phrase in spec[polarity]:
                    attributes.setdefault(phrase, {})[group] = polarity
        for phrase, groups in attributes.items():
            add("A", phrase, groups)

        # Cues: one entry per phrase holding its pre and post roles.
        cues: dict[str, dict[str, Any]] = {}
        spec = lexicon["cues"]
        # A high-probability hedge ("probable", "most consistent with") reads as present: on
        # the radiology hedging scale it sits with "consistent with", far above "possible".
        # As a cue it still closes the scope, so the hedge's own reading wins over a farther
        # cue ("no effusion; probable atelectasis").
        for role, status in (("pre_negation", _ABSENT), ("pre_uncertainty", _UNCERTAIN),
                             ("pre_probable", _PRESENT)):
            for phrase, scope in spec.get(role, {}).items():
                cues.setdefault(phrase, {})["pre"] = (status, int(scope))
        for role, status in (("post_negation", _ABSENT), ("post_uncertainty", _UNCERTAIN),
                             ("post_probable", _PRESENT)):
            for phrase, scope in spec.get(role, {}).items():
                cues.setdefault(phrase, {})["post"] = (status, int(scope))
        past = spec.get("past", {"phrases": {}, "concepts": []})
        for phrase, scope in past["phrases"].items():
            cues.setdefault(phrase, {}).update(
                pre=(_ABSENT, int(scope)), concepts=frozenset(past["concepts"]))
        for phrase in spec.get("modifier_hedges", ()):
            if phrase in cues:
                cues[phrase]["modifier"] = True
        for phrase in spec.get("evidential_hedges", ()):
            if phrase in cues:
                cues[phrase]["evidential"] = True
        for kind in ("pseudo", "transparent", "terminators"):
            for phrase in spec[kind]:
                cues[phrase] = {"kind": "terminator" if kind == "terminators" else kind}
        for phrase, roles in cues.items():
            add("C", phrase, _Cue(**roles))

        explained = lexicon.get("explained", {})
        self.explained_concepts = frozenset(explained.get("concepts", ()))
        self.explain_links = frozenset(explained.get("links", ()))
        self.explain_causes = tuple(explained.get("causes", ()))

        # Anatomy.
        anatomy = lexicon["anatomy"]
        self.sides = anatomy["sides"]
        self.levels = anatomy["levels"]
        plural_regions = set(anatomy["plural_regions"])
        regions: dict[str, tuple] = {}
        for phrase, region in anatomy["regions"].items():
            regions[phrase] = (region, phrase in plural_regions, phrase.startswith("bi"))
            plural = _plural(phrase.split(" ")[-1])
            if plural:
                regions.setdefault(" ".join(phrase.split(" ")[:-1] + [plural]),
                                   (region, True, phrase.startswith("bi")))
        for phrase, info in regions.items():
            add("R", phrase, info)
        for phrase, organ in anatomy["organs"].items():
            add("O", phrase, organ)

        # Normal-study statements.
        nf = lexicon["no_finding"]
        for phrase in nf["phrases"]:
            add("N", phrase, "no-finding")
        # "no [acute] [cardiopulmonary] abnormality": a lead, modifiers, a noun.
        for lead in nf["leads"]:
            add("L", lead, None)
        self.nf_modifiers = frozenset(nf["modifiers"])
        self.nf_nouns = frozenset(nf["nouns"])

    # ----------------------------------------------------------------------------------
    def read(self, texts: Sequence[str], batch_size: int) -> list[tuple[int, list[tuple]]]:
        """Per text: its number of sentences and its raw mentions, tuples
        ``(kind, concept, status, sentence, start_char, end_char)``."""
        docs = self.nlp.pipe(texts, batch_size=batch_size)
        return [self._read_doc(doc, text) for doc, text in zip(docs, texts)]

    def _read_doc(self, doc, text: str) -> tuple[int, list[tuple]]:
        n = len(doc)
        if n == 0:
            return 0, []
        # Plain arrays instead of Token objects: creating tokens dominates the run time.
        arr = doc.to_array(self.array_attrs).tolist()
        # Slices of the input, not doc.text (rebuilt from Token objects); lower-cased per
        # token so that offsets stay right when lower() changes a string's length.
        lowers = [text[i:i + length].lower() for i, length, _ in arr]
        sent_of = [0] * n
        sent_bounds = []
        sent = -1
        for t, (_, _, first) in enumerate(arr):
            if first == 1 or t == 0:
                if sent_bounds:
                    sent_bounds[-1] = (sent_bounds[-1][0], t)
                sent_bounds.append((t, n))
                sent += 1
            sent_of[t] = sent

        groups: dict[str, list[tuple[int, int, Any]]] = {
            "F": [], "A": [], "C": [], "R": [], "O": [], "N": [], "L": []
        }
        for match_id, start, end in self.matcher(doc):
            category, info = self.info[match_id]
            groups["F" if category == "H" else category].append(
                (start, end, (category, info) if category in ("F", "H") else info)
            )
        for start, end, _ in groups["L"]:
            k = end
            while k < n and k - end < 6 and lowers[k] in self.nf_modifiers:
                k += 1
            if k < n and lowers[k] in self.nf_nouns:
                groups["N"].append((start, k + 1, "no-finding"))

        findings = _longest(groups["F"])  # lexical findings, exclusions and heads compete
        attrs = _longest(groups["A"])
        places = _longest(groups["R"] + groups["O"])
        normals = _longest(groups["N"])
        named_places = []
        for start, end, info in places:
            if isinstance(info, str):
                named_places.append((start, end, info))
            else:
                name, start = self._region_name(start, end, info, lowers)
                if name is not None:
                    named_places.append((start, end, name))
        covered = [False] * n
        finding_start = [False] * (n + 1)
        finding_end = [False] * (n + 1)
        for start, end, _ in findings + named_places:
            for t in range(start, end):
                covered[t] = True
        for start, end, _ in findings:
            finding_start[start] = True
            finding_end[end] = True
        state = _Doc(lowers, _longest(groups["C"]), covered, sent_bounds, finding_start,
                     finding_end)

        mentions: list[tuple] = []
        for start, end, (category, info) in findings:
            sent = sent_of[start]
            if category == "F":
                for concept in info:  # an exclusion names no concept
                    rule = None
                    if isinstance(concept, tuple):
                        rule, concept = concept
                        if rule == "lung" and not any(
                                name in self.lung_places and sent_of[p_start] == sent
                                for p_start, _, name in named_places):
                            continue
                    status = self._status(start, end, sent, concept, state)
                    if rule == "sign" and status == _PRESENT:
                        status = _UNCERTAIN
                    elif (status == _PRESENT and concept in self.explained_concepts
                          and self._explained(end, sent, state)):
                        status = _ABSENT
                    mentions.append(("finding", concept, status, sent, start, end))
            else:
                for concept in self.head_groups[info]["concepts"]:
                    found = self._head_finding(start, end, info, concept, attrs, sent, state)
                    if found is not None:
                        status, span_start, span_end = found
                        mentions.append(("finding", concept, status, sent, span_start, span_end))
        for start, end, _ in normals:
            mentions.append(("finding", "no-finding", _PRESENT, sent_of[start], start, end))
        for start, end, name in named_places:
            mentions.append(("anatomy", name, None, sent_of[start], start, end))

        out = []
        for kind, concept, status, sent, start, end in mentions:
            out.append((kind, concept, status, sent, arr[start][0],
                        arr[end - 1][0] + arr[end - 1][1]))
        return len(sent_bounds), out

    # ----------------------------------------------------------------------------------
    def _status(self, start: int, end: int, sent: int, concept: str, state: _Doc, *,
                pre_from: int | None = None) -> str:
        """Status of the target tokens ``[start, end)`` from the cues around it.

        ``pre_from``: pre cues must start at or after this token (head + attribute findings).
        """
        sent_start, sent_end = state.sent_bounds[sent]
        pre = self._pre_cue(start, sent_start if pre_from is None else pre_from, concept, state)
        post = self._post_cue(end, sent_end, concept, state)
        if pre and post:
            return pre[0] if pre[1] <= post[1] else post[0]
        if pre:
            return pre[0]
        if post:
            return post[0]
        return _PRESENT

    @staticmethod
    def _applies(cue: _Cue, concept: str) -> bool:
        return cue.kind == "cue" and (cue.concepts is None or concept in cue.concepts)

    def _pre_cue(self, start: int, limit: int, concept: str,
                 state: _Doc) -> tuple[str, int] | None:
        cues = state.cues
        i = len(cues) - 1
        while i >= 0 and cues[i][1] > start:
            i -= 1
        while i >= 0:
            c_start, c_end, cue = cues[i]
            if c_start < limit or cue.kind in ("terminator", "pseudo"):
                return None
            if self._applies(cue, concept):
                if cue.pre is None:  # a post cue closes the clause before it
                    return None
                status, scope = cue.pre
                distance = state.gap(c_end, start)
                if distance <= scope:
                    if status == _UNCERTAIN and self._negated_hedge(i, cue, start, limit,
                                                                    concept, state):
                        return _ABSENT, distance
                    if status == _PRESENT and any(state.finding_start[c_end:start]):
                        # "favoring atelectasis over infection", "likely atelectasis or
                        # pneumonia": the hedge backs its first finding; the others are
                        # the less likely alternatives.
                        return _UNCERTAIN, distance
                    return status, distance
            i -= 1
        return None

    def _negated_hedge(self, i: int, cue: _Cue, start: int, limit: int, concept: str,
                       state: _Doc) -> bool:
        """A hedge governed by a negation is a negation.

        "no suspicious nodule" (negation right before the hedge); "no consolidation or
        possible opacity" (an adjective hedge joined by "or" to a negated list); "no
        opacity concerning for pneumonia" (an evidential hedge after a negated finding).
        """
        cues, lowers = state.cues, state.lowers
        c_start = cues[i][0]
        if i > 0:
            p_start, p_end, prev = cues[i - 1]
            if p_end == c_start and prev.kind == "cue" and prev.pre and prev.pre[0] == _ABSENT:
                return True
        joined = cue.modifier and c_start > 0 and lowers[c_start - 1] in ("or", "nor")
        evidence = cue.evidential and state.finding_end[c_start]
        if not (joined or evidence):
            return False
        for j in range(i - 1, -1, -1):
            p_start, p_end, prev = cues[j]
            if p_start < limit or prev.kind in ("terminator", "pseudo"):
                return False
            if self._applies(prev, concept) and prev.pre:
                status, scope = prev.pre
                return status == _ABSENT and state.gap(p_end, start) <= scope
        return False

    def _post_cue(self, end: int, limit: int, concept: str,
                  state: _Doc) -> tuple[str, int] | None:
        for c_start, c_end, cue in state.cues:
            if c_start < end:
                continue
            if c_start >= limit or self._clause_break(end, c_start, state):
                return None
            if cue.kind in ("terminator", "pseudo"):
                return None
            if self._applies(cue, concept):
                if cue.post is None:  # a pre cue opens a new clause
                    return None
                status, scope = cue.post
                distance = state.gap(end, c_start)
                return (status, distance) if distance <= scope else None
        return None

    def _explained(self, end: int, sent: int, state: _Doc) -> bool:
        """The mention ending at ``end`` is attributed to a non-parenchymal cause.

        "Nodular densities consistent with chronic granulomatous disease", "opacity at the
        base of the mediastinum which is likely a hiatal hernia": a link word within 8
        tokens, then a cause word within 5 tokens of it, before
        any finding, and not offered as one of several alternatives ("may represent scarring
        or atelectasis" keeps the opacity).
        """
        lowers, starts = state.lowers, state.finding_start
        sent_end = state.sent_bounds[sent][1]
        link = None
        for k in range(end, min(end + 8, sent_end)):
            if lowers[k] in (";", ":"):
                return False
            if lowers[k] in self.explain_links:
                link = k
                break
        if link is None:
            return False
        for k in range(link + 1, min(link + 6, sent_end)):
            if lowers[k].startswith(self.explain_causes):
                after = lowers[k + 1:min(k + 5, sent_end)]
                return not any(w in ("or", "versus", "vs", "vs.", "and/or") and
                               any(starts[k + 1 + j:k + 5]) for j, w in enumerate(after))
            if starts[k]:
                return False
        return False

    @staticmethod
    def _clause_break(left: int, right: int, state: _Doc) -> bool:
        """A comma between ``left`` and ``right`` that does not continue a list of findings.

        "Consolidation, atelectasis, and blunting have cleared" is one list (its commas
        are followed by findings and it closes with "and"/"or" before a finding); "left
        base opacity, infection cannot be excluded" is two statements.
        """
        lowers, starts = state.lowers, state.finding_start
        if "," not in lowers[left:right]:
            return False
        closed = any(lowers[k] in ("and", "or", "nor") and starts[k + 1]
                     for k in range(left, right - 1))
        if not closed:
            return True
        for k in range(left, right):
            if lowers[k] != ",":
                continue
            nxt = k + 1
            while nxt < right and lowers[nxt] in ("and", "or", "nor"):
                nxt += 1
            if nxt >= right or not starts[nxt]:
                return True
        return False

    def _head_finding(self, start: int, end: int, group: str, concept: str, attrs: list,
                      sent: int, state: _Doc) -> tuple[str, int, int] | None:
        """Status and token span of a head + attribute finding, or None without attribute."""
        sent_start, sent_end = state.sent_bounds[sent]
        near = []
        for a_start, a_end, groups in attrs:
            polarity = groups.get(group)
            if polarity is None or a_start < sent_start or a_end > sent_end:
                continue
            gap = a_start - end if a_start >= end else start - a_end
            if 0 <= gap <= 8:
                near.append((gap, a_start, a_end, polarity))
        if not near:
            return None
        near.sort()
        _, a_start, a_end, polarity = near[0]
        span = (min(start, a_start), max(end, a_end))
        # "upper limits normal or mildly enlarged": a state and its opposite offered as
        # alternatives is an uncertain finding.
        for _, b_start, b_end, other in near[1:]:
            lo, hi = (a_end, b_start) if b_start >= a_end else (b_end, a_start)
            if other != polarity and any(w in ("or", "versus", "vs") for w in state.lowers[lo:hi]):
                return _UNCERTAIN, min(span[0], b_start), max(span[1], b_end)
        if polarity == "negative":
            return _ABSENT, span[0], span[1]
        # The attribute itself may be a hedge ("borderline").
        for c_start, c_end, cue in state.cues:
            if c_start == a_start and cue.kind == "cue" and cue.pre and cue.pre[0] == _UNCERTAIN:
                return _UNCERTAIN, span[0], span[1]
        # "the heart is not enlarged": only the clause's own cues count; "costophrenic
        # blunting" is a noun phrase and takes the cues before it ("no ... blunting").
        if a_start >= end and any(w in _COPULAS for w in state.lowers[end:a_start]):
            status = self._status(a_start, a_end, sent, concept, state, pre_from=end)
        else:
            status = self._status(span[0], span[1], sent, concept, state)
        if status == _PRESENT:
            status = self.head_groups[group]["positive_status"]
        return status, span[0], span[1]

    def _region_name(self, start: int, end: int, info: tuple,
                     lowers: list[str]) -> tuple[str | None, int]:
        """Normalised name of a region mention and the first token of its side/level words."""
        region, plural, bi_prefix = info
        first = start
        side = "bilateral" if bi_prefix else None
        level = None
        # Look back over side and level words: "right upper", "left lower lung", "right and
        # left lower".
        i = start - 1
        while i >= 0 and start - i <= 5:
            word = lowers[i]
            if word in self.levels and level is None and side is None:
                level = self.levels[word]
                first = i
            elif word in self.sides:
                new = self.sides[word]
                side = new if side is None or side == new else "bilateral"
                first = i
            elif word not in ("-", "lung", "and", "/", "or", "the"):
                break
            i -= 1
        # Look forward: "lower lobes bilaterally", "costophrenic angle on the right".
        if end < len(lowers):
            if lowers[end] == "bilaterally":
                side = "bilateral"
            elif lowers[end:end + 2] == ["on", "the"] and end + 2 < len(lowers) \
                    and lowers[end + 2] in ("right", "left"):
                side = lowers[end + 2]
        if region == "lobe":
            if level is None:  # "the lobe" alone names no place
                return None, first
            level = "middle" if level == "mid" else level
            if level == "middle":
                return ("lingula" if side == "left" else "right-middle-lobe"), first
            region = f"{level}-lobe"
        elif region in ("zone", "lung") and level is not None:
            region = f"{'mid' if level == 'middle' else level}-zone"
        elif region == "zone":
            region = "lung"
        if side is None and plural:
            side = "bilateral"
        if region == "lung":
            return ("lungs" if side in (None, "bilateral") else f"{side}-lung"), first
        return (f"{side}-{region}" if side else region), first


def _longest(spans: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Keep the longest non-overlapping spans (earlier first on ties), sorted by start."""
    if len(spans) < 2:
        return spans
    taken: set[int] = set()
    kept = []
    for span in sorted(spans, key=lambda s: (s[0] - s[1], s[0])):
        start, end = span[0], span[1]
        if any(t in taken for t in range(start, end)):
            continue
        taken.update(range(start, end))
        kept.append(span)
    kept.sort(key=lambda s: s[0])
    return kept


@lru_cache(maxsize=1)
def _reader() -> _Reader:
    return _Reader(load_lexicon())


_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n|(?:^|\n)(?=[ \t]*\d{1,2}[.)][ \t])")


def _pieces(report: str, sections: str | Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of the report to read: selected sections, split into paragraphs."""
    from .sections import CONTEXT_SECTIONS, section_spans

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
    reader = _reader()
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
    for (i, offset), (n_sents, mentions) in zip(owners, reader.read(texts, batch_size)):
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
