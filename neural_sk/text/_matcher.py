"""The compiled reader: spaCy's blank English pipeline and one ``PhraseMatcher`` over the
lexicon, turning a text into raw finding and anatomy mentions (statuses from :mod:`._scope`).

Built once per process (:func:`reader`); see :mod:`neural_sk.text.entities` for the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ._scope import Doc, ScopeRules, compile_cues
from .lexicon import ANATOMY, OBSERVATIONS, STATUSES, load_lexicon, plural, with_plurals

_PRESENT, _ABSENT, _UNCERTAIN = STATUSES


class Reader:
    """Compiled spaCy pipeline and matchers, and the status rules."""

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
        # The phrases go in by category, in this order: findings, heads and attributes, cues,
        # anatomy, normal-study statements.
        self._add_findings(lexicon)
        head_groups = self._add_heads(lexicon)
        for phrase, cue in compile_cues(lexicon["cues"]).items():
            self._add("C", phrase, cue)
        self.rules = ScopeRules(head_groups, lexicon.get("explained", {}))
        self._add_anatomy(lexicon["anatomy"])
        self._add_no_finding(lexicon["no_finding"])

    def _add(self, category: str, phrase: str, info: Any) -> None:
        key = f"{category}:{phrase}"
        self.matcher.add(key, [self.nlp.make_doc(phrase)])
        self.info[self.nlp.vocab.strings[key]] = (category, info)

    def _add_findings(self, lexicon: dict[str, Any]) -> None:
        add = self._add
        # Findings: a phrase may name several concepts ("nodular opacity").
        finding_concepts: dict[str, list[str]] = {}
        for concept, phrases in lexicon["findings"].items():
            if concept not in OBSERVATIONS:
                raise ValueError(f"lexicon names unknown observation {concept!r}")
            for phrase in with_plurals(phrases):
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
            for phrase in with_plurals(phrases):
                add("F", phrase, (("sign", concept),))
        for phrase in lexicon["exclude"]:
            add("F", phrase, ())

    def _add_heads(self, lexicon: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Heads (structures whose state word makes a finding) and their attributes."""
        attributes: dict[str, dict[str, str]] = {}
        head_groups: dict[str, dict[str, Any]] = {}
        for group, spec in lexicon["heads"].items():
            head_groups[group] = {
                "concepts": tuple(spec["concepts"]),
                "positive_status": spec.get("positive_status", _PRESENT),
            }
            for phrase in with_plurals(spec["phrases"]):
                self._add("H", phrase, group)
            for polarity in ("positive", "negative"):
                for phrase in spec[polarity]:
                    attributes.setdefault(phrase, {})[group] = polarity
        for phrase, groups in attributes.items():
            self._add("A", phrase, groups)
        return head_groups

    def _add_anatomy(self, anatomy: dict[str, Any]) -> None:
        self.sides = anatomy["sides"]
        self.levels = anatomy["levels"]
        plural_regions = set(anatomy["plural_regions"])
        regions: dict[str, tuple] = {}
        for phrase, region in anatomy["regions"].items():
            regions[phrase] = (region, phrase in plural_regions, phrase.startswith("bi"))
            form = plural(phrase.split(" ")[-1])
            if form:
                regions.setdefault(" ".join(phrase.split(" ")[:-1] + [form]),
                                   (region, True, phrase.startswith("bi")))
        for phrase, info in regions.items():
            self._add("R", phrase, info)
        for phrase, organ in anatomy["organs"].items():
            self._add("O", phrase, organ)

    def _add_no_finding(self, nf: dict[str, Any]) -> None:
        """Normal-study statements."""
        for phrase in nf["phrases"]:
            self._add("N", phrase, "no-finding")
        # "no [acute] [cardiopulmonary] abnormality": a lead, modifiers, a noun.
        for lead in nf["leads"]:
            self._add("L", lead, None)
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
        sent_of, sent_bounds = _sentences(arr)
        groups = self._match(doc, lowers)

        findings = longest(groups["F"])  # lexical findings, exclusions and heads compete
        attrs = longest(groups["A"])
        places = longest(groups["R"] + groups["O"])
        normals = longest(groups["N"])
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
        state = Doc(lowers, longest(groups["C"]), covered, sent_bounds, finding_start,
                    finding_end)

        mentions = self._findings(findings, attrs, named_places, sent_of, state)
        for start, end, _ in normals:
            mentions.append(("finding", "no-finding", _PRESENT, sent_of[start], start, end))
        for start, end, name in named_places:
            mentions.append(("anatomy", name, None, sent_of[start], start, end))

        out = []
        for kind, concept, status, sent, start, end in mentions:
            out.append((kind, concept, status, sent, arr[start][0],
                        arr[end - 1][0] + arr[end - 1][1]))
        return len(sent_bounds), out

    def _match(self, doc, lowers: list[str]) -> dict[str, list[tuple[int, int, Any]]]:
        """Matched spans ``(start, end, info)`` per category (heads go with findings)."""
        n = len(lowers)
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
        return groups

    def _findings(self, findings: list, attrs: list, named_places: list, sent_of: list[int],
                  state: Doc) -> list[tuple]:
        """Finding mentions (token offsets) with their status, from the matched spans."""
        rules = self.rules
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
                    status = rules.status(start, end, sent, concept, state)
                    if rule == "sign" and status == _PRESENT:
                        status = _UNCERTAIN
                    elif (status == _PRESENT and concept in rules.explained_concepts
                          and rules.explained(end, sent, state)):
                        status = _ABSENT
                    mentions.append(("finding", concept, status, sent, start, end))
            else:
                for concept in rules.head_groups[info]["concepts"]:
                    found = rules.head_finding(start, end, info, concept, attrs, sent, state)
                    if found is not None:
                        status, span_start, span_end = found
                        mentions.append(("finding", concept, status, sent, span_start, span_end))
        return mentions

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


def _sentences(arr: list) -> tuple[list[int], list[tuple[int, int]]]:
    """Sentence number of each token, and each sentence's token bounds."""
    n = len(arr)
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
    return sent_of, sent_bounds


def longest(spans: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
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
def reader() -> Reader:
    """The process's reader, compiled on first use."""
    return Reader(load_lexicon())
