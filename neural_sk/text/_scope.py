"""Status of a finding mention from the cues around it: NegEx-style negation and uncertainty
scopes, hedges, explained opacities and head + attribute findings.

The rules are described in :mod:`neural_sk.text.entities`; they run over the token arrays
and matched spans that the matcher (:mod:`neural_sk.text._matcher`) finds in one text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .lexicon import STATUSES

_PRESENT, _ABSENT, _UNCERTAIN = STATUSES


@dataclasses.dataclass(frozen=True)
class Cue:
    pre: tuple[str, int] | None = None  # (status, scope in tokens)
    post: tuple[str, int] | None = None
    kind: str = "cue"  # "cue" | "terminator" | "pseudo" | "transparent"
    concepts: frozenset | None = None  # the cue only applies to these concepts
    modifier: bool = False  # an adjective hedge ("possible"), negated inside a negated list
    evidential: bool = False  # "concerning for": after a negated finding, negated too


class Doc:
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


def compile_cues(spec: dict[str, Any]) -> dict[str, Cue]:
    """One :class:`Cue` per phrase of the lexicon's ``cues`` entry, holding its pre and post
    roles."""
    cues: dict[str, dict[str, Any]] = {}
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
    return {phrase: Cue(**roles) for phrase, roles in cues.items()}


class ScopeRules:
    """The status rules, with the lexicon's head groups and explained-opacity words."""

    def __init__(self, head_groups: dict[str, dict[str, Any]],
                 explained: dict[str, Any]) -> None:
        self.head_groups = head_groups
        self.explained_concepts = frozenset(explained.get("concepts", ()))
        self.explain_links = frozenset(explained.get("links", ()))
        self.explain_causes = tuple(explained.get("causes", ()))

    def status(self, start: int, end: int, sent: int, concept: str, state: Doc, *,
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
    def _applies(cue: Cue, concept: str) -> bool:
        return cue.kind == "cue" and (cue.concepts is None or concept in cue.concepts)

    def _pre_cue(self, start: int, limit: int, concept: str,
                 state: Doc) -> tuple[str, int] | None:
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

    def _negated_hedge(self, i: int, cue: Cue, start: int, limit: int, concept: str,
                       state: Doc) -> bool:
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
                  state: Doc) -> tuple[str, int] | None:
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

    def explained(self, end: int, sent: int, state: Doc) -> bool:
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
    def _clause_break(left: int, right: int, state: Doc) -> bool:
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

    def head_finding(self, start: int, end: int, group: str, concept: str, attrs: list,
                      sent: int, state: Doc) -> tuple[str, int, int] | None:
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
            status = self.status(a_start, a_end, sent, concept, state, pre_from=end)
        else:
            status = self.status(span[0], span[1], sent, concept, state)
        if status == _PRESENT:
            status = self.head_groups[group]["positive_status"]
        return status, span[0], span[1]
