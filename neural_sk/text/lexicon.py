"""The curated radiology lexicon (``lexicon.json``) and the vocabularies derived from it.

The lexicon lists, per CheXpert observation, its synonyms, the indirect signs, exclusions,
structures with their state words, the negation and uncertainty cues, anatomy and the
normal-study statements. The reader (:mod:`neural_sk.text.entities`) compiles it once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = ["load_lexicon", "normalize_observation", "side_level", "OBSERVATIONS", "ANATOMY",
           "CONCEPTS", "STATUSES"]

#: The status a finding mention can have.
STATUSES = ("present", "absent", "uncertain")


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


def normalize_observation(name: str) -> str:
    """Spell an observation name the way :data:`OBSERVATIONS` does.

    ``"Pleural Effusion"``, ``"pleural_effusion"`` and ``"pleural-effusion"`` are the same
    observation; the CheXpert file's ``"Support Devices"`` and a singular ``"support device"``
    both become ``"support-devices"``.

    Examples
    --------
    >>> normalize_observation("Pleural Effusion")
    'pleural-effusion'
    >>> normalize_observation("Enlarged_Cardiomediastinum")
    'enlarged-cardiomediastinum'
    """
    key = re.sub(r"[\s_\-]+", "-", str(name).strip().lower())
    if key == "support-device":
        key = "support-devices"
    return key


_VOWEL_Y = re.compile(r"[aeiou]y$")


def plural(word: str) -> str | None:
    """The plural of a lexicon word, or None where adding one would be wrong."""
    if not word.isalpha() or len(word) < 3 or word.endswith(("s", "ous", "ed", "ing")):
        return None
    if word.endswith("y") and not _VOWEL_Y.search(word):
        return word[:-1] + "ies"
    if word.endswith(("x", "ch", "sh", "z")):
        return word + "es"
    return word + "s"


def with_plurals(phrases: Iterable[str]) -> list[str]:
    """The phrases and their plurals (last word pluralised), without duplicates, in order."""
    out = []
    for phrase in phrases:
        out.append(phrase)
        words = phrase.split(" ")
        form = plural(words[-1])
        if form:
            out.append(" ".join(words[:-1] + [form]))
    return list(dict.fromkeys(out))


_SIDES = ("right", "left", "bilateral")
_LEVELS = {"upper": "upper", "apex": "upper", "mid": "mid", "middle": "mid", "lingula": "mid",
           "lower": "lower", "base": "lower", "costophrenic": "lower"}


def side_level(place: str) -> tuple[str | None, str | None]:
    """The side and the level (upper / mid / lower) an anatomy concept names, where it does.

    Examples
    --------
    >>> side_level("right-lower-lobe"), side_level("right-base"), side_level("lingula")
    (('right', 'lower'), ('right', 'lower'), ('left', 'mid'))
    >>> side_level("heart")
    (None, None)
    """
    words = place.split("-")
    side = next((w for w in words if w in _SIDES), "left" if place == "lingula" else None)
    level = next((_LEVELS[w] for w in words if w in _LEVELS), None)
    return side, level
