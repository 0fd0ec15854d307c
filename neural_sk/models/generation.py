"""How the report decoder is conditioned and how it decodes: options, their check, and the
rule that a report never states the same sentence twice.

The options are one dict (``AttentionScorer(report_decoder=...)``) merged over
:data:`DECODER_DEFAULTS`; :func:`check_decoder_options` validates it in ``fit`` and names the
bad key.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
import re
from typing import Any

import torch

__all__ = ["CONDITIONING", "DECODER_DEFAULTS", "WRITERS", "NoRepeatSentence",
           "check_decoder_options", "drop_repeated_tail", "generation_kwargs"]

#: What the decoder sees besides the projected patches: nothing more ("none"), the
#: classification head's findings ("head": its class probabilities and the patches it attends
#: to), or a report-guided head ("findings": one attention map and one present / absent
#: probability per finding the labeler reads from the training reports).
CONDITIONING = ("none", "head", "findings")

#: Who writes a generated report: the decoder (free text), or
#: :class:`~neural_sk.models.findings_writer.FindingsWriter` from the findings head (each
#: finding whose probability reaches ``findings_threshold``, placed where its attention peaks,
#: and the pertinent negatives; it needs ``conditioning="findings"``). "auto": the findings
#: writer where the model has one (fitted with that head), else the decoder. From one fit on the demo split (12
#: epochs) the decoder's held-out reports name almost nothing (present-finding F1 0.02, recall
#: 0.01), the writer's F1 is 0.48 (precision 0.81) at the threshold 0.5
#: (``results/bench_reports_writer.json``); 0.58 with the demo's 24 epochs.
WRITERS = ("auto", "decoder", "findings")

#: Chosen with ``benchmarks/bench_reports.py --generation`` (demo split, 404 / 296 studies,
#: EfficientNet-Lite0 at 224 px, 12 epochs; ``results/bench_reports_generation.json``).
#: Present-finding F1 of the held-out reports: no conditioning 0.058, the head's 0.208
#: (precision 0.63), the findings head's 0.178 (precision 0.79); it needs no labels and stays
#: ahead with twice the epochs (0.293 against 0.227). Greedy: beams lower recall at 12 epochs
#: (F1 0.128) and location agreement at 24 (0.42 against 0.70 on positives). Blocking
#: repeated sentences costs nothing (F1 0.164 -> 0.178; repeats 13.5% -> 0.7%, a cut tail, now
#: dropped); n-gram blocking and a repetition penalty changed no finding.
DECODER_DEFAULTS: dict[str, Any] = {
    "conditioning": "findings",
    "num_beams": 1,
    "no_repeat_ngram_size": 0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_sentence": True,
    "writer": "auto",
    "findings_threshold": 0.5,
}

# (check, what is allowed) per key, for the error message.
_CHECKS = {
    "conditioning": (lambda v: v in CONDITIONING, f"one of {list(CONDITIONING)}"),
    "num_beams": (lambda v: isinstance(v, Integral) and not isinstance(v, bool) and v >= 1,
                  "an int >= 1"),
    "no_repeat_ngram_size": (lambda v: isinstance(v, Integral) and not isinstance(v, bool)
                             and v >= 0, "an int >= 0 (0: off)"),
    "repetition_penalty": (lambda v: isinstance(v, Real) and not isinstance(v, bool) and v > 0,
                           "a float > 0 (1: off)"),
    "length_penalty": (lambda v: isinstance(v, Real) and not isinstance(v, bool),
                       "a float (beam search only; > 0 favours longer reports)"),
    "no_repeat_sentence": (lambda v: isinstance(v, bool), "a bool"),
    "writer": (lambda v: v in WRITERS, f"one of {list(WRITERS)}"),
    "findings_threshold": (lambda v: isinstance(v, Real) and not isinstance(v, bool)
                           and 0 < v < 1, "a float in (0, 1)"),
}


def check_decoder_options(options: Mapping[str, Any] | None,
                          param: str = "report_decoder") -> dict[str, Any]:
    """``options`` merged over :data:`DECODER_DEFAULTS`, each value checked.

    Parameters
    ----------
    options : mapping or None
        Keys of :data:`DECODER_DEFAULTS`; missing keys take the default.
    param : str
        The parameter's name, for error messages.

    Returns
    -------
    dict
        Every key of :data:`DECODER_DEFAULTS`.

    Raises
    ------
    ValueError
        An unknown key, or a value that is not allowed, named with what is.

    Examples
    --------
    >>> check_decoder_options({"num_beams": 3})["num_beams"]
    3
    >>> check_decoder_options({"beams": 3})
    Traceback (most recent call last):
    ...
    ValueError: report_decoder has unknown key(s) ['beams']; known: ['conditioning', ...
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(DECODER_DEFAULTS))
    if unknown:
        raise ValueError(f"{param} has unknown key(s) {unknown}; known: {list(DECODER_DEFAULTS)}")
    for key, value in options.items():
        ok, allowed = _CHECKS[key]
        if not ok(value):
            raise ValueError(f"{param}[{key!r}] must be {allowed}, got {value!r}")
    options = {**DECODER_DEFAULTS, **options}
    if options["writer"] == "findings" and options["conditioning"] != "findings":
        raise ValueError(f"{param}['writer']='findings' writes from the findings head: it needs "
                         f"{param}['conditioning']='findings', got {options['conditioning']!r}")
    return options


class NoRepeatSentence:
    """A logits processor that never lets a hypothesis close a sentence it already wrote.

    A sentence is the tokens between sentence-end tokens ("." "!" "?"). When the open
    sentence, closed now by an end token or by end-of-sequence, would equal a finished one,
    those tokens are banned at this step, so the decoder has to write something else. N-gram
    blocking cannot promise this: a two-word sentence ("cardiomegaly .") repeats without
    repeating any trigram.
    """

    def __init__(self, end_ids: list[int], eos_id: int | None, start: int = 1):
        self.end_ids = sorted(set(end_ids))
        self.close_ids = sorted(set(self.end_ids) | ({eos_id} if eos_id is not None else set()))
        self.start = start  # the decoder-start token is not text

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        ends = set(self.end_ids)
        banned = []
        # One copy to the host per step (not one sync per row); the rest is plain Python.
        for row, ids in enumerate(input_ids[:, self.start:].tolist()):
            cuts = [-1, *(k for k, token in enumerate(ids) if token in ends)]
            current = tuple(ids[cuts[-1] + 1 :])
            if current and current in {tuple(ids[a + 1 : b]) for a, b in zip(cuts, cuts[1:])}:
                banned.append(row)
        if banned:
            rows = torch.tensor(banned, device=scores.device)
            close = torch.tensor(self.close_ids, device=scores.device)
            scores[rows[:, None], close] = float("-inf")
        return scores


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


def drop_repeated_tail(report: str) -> str:
    """``report`` without a last, unfinished sentence that repeats an earlier one.

    Decoding can stop at its length limit inside a sentence, where :class:`NoRepeatSentence`
    has no close to ban: what was cut is dropped if it says again what was said.

    Examples
    --------
    >>> drop_repeated_tail("no effusion. heart normal. no effusion")
    'no effusion. heart normal.'
    """
    pieces = _SENTENCE.findall(report)
    norm = [" ".join(p.rstrip(".!?").split()) for p in pieces]
    if len(pieces) > 1 and norm[-1] and norm[-1] in norm[:-1]:
        return "".join(pieces[:-1]).rstrip()
    return report


def sentence_end_ids(tokenizer) -> list[int]:
    """Ids of the sentence-end tokens the tokenizer knows."""
    vocab = tokenizer.get_vocab()
    return [vocab[t] for t in (".", "!", "?") if t in vocab]


def generation_kwargs(options: Mapping[str, Any], tokenizer) -> dict[str, Any]:
    """Keyword arguments of ``transformers`` ``generate`` for checked decoder options."""
    from transformers import LogitsProcessorList

    kwargs: dict[str, Any] = {
        "num_beams": int(options["num_beams"]),
        "no_repeat_ngram_size": int(options["no_repeat_ngram_size"]),
        "repetition_penalty": float(options["repetition_penalty"]),
        "do_sample": False,
    }
    if kwargs["num_beams"] > 1:
        kwargs["length_penalty"] = float(options["length_penalty"])
    if options["no_repeat_sentence"]:
        ends = sentence_end_ids(tokenizer)
        if ends:
            kwargs["logits_processor"] = LogitsProcessorList(
                [NoRepeatSentence(ends, tokenizer.eos_token_id)])
    return kwargs
