"""Patch scores from a fitted vision-language model, one batch at a time.

Two sources: the classification head (MIL attention weights or class activation), or the
decoder's cross-attention reduced over heads and report tokens to one score per patch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .encoders import normalize
from .findings_writer import write_findings
from .generation import check_decoder_options, drop_repeated_tail, generation_kwargs
from .presets import uses_channels_last
from .vlm import encode_reports

__all__ = [
    "clear_failed",
    "complete_reports",
    "content_token_mask",
    "finding_token_mask",
    "generate_text",
    "head_proba",
    "label_scores",
    "patch_features",
    "reduce_cross_attention",
    "reduce_heads",
    "reduce_label_scores",
    "score_buffers",
    "score_patches",
]


def patch_features(model, pixels: torch.Tensor, device) -> torch.Tensor:
    """Encoder patch features [B, P, d] of uint8 images [B, S, S], computed on ``device``."""
    # uint8 crosses to the device (a quarter of float32's bytes; asynchronously when pinned)
    # and is normalised there.
    pixels = normalize(pixels.to(device, non_blocking=pixels.is_pinned()), model.encoder)
    if uses_channels_last(model.encoder.name):
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    return model.encoder(pixels)


def generate_text(model, tokenizer, features: torch.Tensor, max_tokens: int,
                  options: dict | None = None) -> list[str]:
    """Reports written by the decoder from patch features [B, P, d].

    ``options`` are decoding options (:data:`~neural_sk.models.generation.DECODER_DEFAULTS`,
    which fill in what is missing): beams, n-gram blocking, penalties, and whether a
    sentence may repeat.
    """
    options = check_decoder_options(options)
    writer = options["writer"]
    if writer == "auto":  # models fitted before the writer existed have none
        writer = "findings" if getattr(model, "report_writer", None) is not None else "decoder"
    if writer == "findings":
        return write_findings(model, features, options["findings_threshold"])
    ids = model.generate(features, max_new_tokens=max_tokens,
                         **generation_kwargs(options, tokenizer))
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [drop_repeated_tail(t) for t in texts] if options["no_repeat_sentence"] else texts


def complete_reports(model, tokenizer, features: torch.Tensor, given: Sequence[str], *,
                     max_tokens: int, generate_all: bool = False,
                     options: dict | None = None) -> list[str]:
    """The given reports, with a generated one wherever a report is blank (or everywhere)."""
    given = list(given)
    need = [k for k, r in enumerate(given) if generate_all or not r.strip()]
    if need:
        texts = generate_text(model, tokenizer, features[need], max_tokens, options)
        for k, text in zip(need, texts):
            given[k] = text
    return given


def content_token_mask(tokenizer, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Tokens [n, T] that are part of the report: neither padding nor special tokens."""
    special = torch.tensor(tokenizer.all_special_ids)
    return mask.clone() & ~torch.isin(labels.masked_fill(labels < 0, 0), special)


def finding_token_mask(reports: Sequence[str], offsets: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
    """Tokens [n, T] that fall inside a clinical-finding word of their report (and in ``mask``)."""
    from ..text import extract_entities

    weights = torch.zeros(mask.shape, dtype=torch.bool)
    for k, entities in enumerate(extract_entities(reports)):
        spans = [(e.start, e.end) for e in entities if e.kind == "finding"]
        if not spans:
            continue
        starts, ends = offsets[k, :, 0], offsets[k, :, 1]
        for s, e in spans:
            weights[k] |= (starts < e) & (ends > s)
    return weights.to(mask.device) & mask.bool()


def reduce_heads(cross: torch.Tensor, head_reduce: str = "mean") -> torch.Tensor:
    """Cross-attention [B, heads, T, P] reduced over heads ("mean" or "max") to [B, T, P]."""
    return cross.mean(1) if head_reduce == "mean" else cross.amax(1)


def reduce_cross_attention(cross: torch.Tensor, token_mask: torch.Tensor, *,
                           head_reduce: str = "mean", token_reduce: str = "mean",
                           token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """One score per image patch from decoder cross-attention.

    Parameters
    ----------
    cross : Tensor [B, heads, T, P]
        Cross-attention of one decoder layer: T report tokens over P image patches.
    token_mask : Tensor [B, T]
        True for the report's content tokens (padding and special tokens False).
    head_reduce : {"mean", "max"}
    token_reduce : {"mean", "max", "findings"}
    token_weights : Tensor [B, T] of bool, optional
        For ``"findings"``: tokens inside clinical-finding words. A study with none falls
        back to all content tokens.

    Returns
    -------
    Tensor [B, P]
        Rows sum to 1. The public NEURAL code ranks the T token positions instead; here the
        heads and the tokens are reduced, so what is ranked is always the P patches.
    """
    per_token = reduce_heads(cross, head_reduce)  # [B, T, P]
    mask = token_mask.bool()
    if token_reduce == "findings" and token_weights is not None:
        has = (token_weights & mask).any(1, keepdim=True)
        mask = torch.where(has, token_weights & mask, mask)
    if token_reduce == "max":
        filled = per_token.masked_fill(~mask[..., None], float("-inf"))
        scores = filled.amax(1)
        scores = torch.where(torch.isfinite(scores), scores, torch.zeros_like(scores))
    else:
        m = mask[..., None].to(per_token.dtype)
        scores = (per_token * m).sum(1) / m.sum(1).clamp_min(1.0)
    total = scores.sum(-1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[-1])
    return torch.where(total > 0, scores / total.clamp_min(1e-12), uniform)


def _normalized(scores: torch.Tensor) -> np.ndarray:
    scores = scores.float()
    return (scores / scores.sum(-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()


def score_buffers(n: int, grid_shape, feature_dim: int, feature_dtype: str, n_labels: int = 0,
                  keep_token_attention: bool = False) -> dict:
    """The StudySet fields a scorer's ``transform`` fills batch by batch, allocated once."""
    n_patches = int(grid_shape[0]) * int(grid_shape[1])
    return {
        "attention": np.empty((n, n_patches), dtype=np.float32),
        "patch_features": np.empty((n, n_patches, feature_dim), dtype=feature_dtype),
        "label_attention": (np.empty((n, n_labels, n_patches), dtype=np.float32)
                            if n_labels else None),
        "reports": [""] * n,
        "token_attention": [None] * n if keep_token_attention else None,
        "token_offsets": [None] * n if keep_token_attention else None,
    }


def clear_failed(out: dict, failed) -> None:
    """Uniform attention and zero features for the studies that could not be read."""
    rows = np.flatnonzero(np.asarray(failed, dtype=bool))
    if not rows.size:
        return
    n_patches = out["attention"].shape[1]
    out["attention"][rows] = 1.0 / n_patches
    out["patch_features"][rows] = 0
    if out["label_attention"] is not None:
        out["label_attention"][rows] = 1.0 / n_patches


def label_scores(model, features: torch.Tensor, method: str = "mil") -> np.ndarray | None:
    """A multi-label head's maps, one per label [B, k, P] (rows sum to 1); None otherwise."""
    if method == "cross_attention" or model.head is None or not model.multilabel:
        return None
    return _normalized(model.patch_scores(features, method)[1])


def reduce_label_scores(scores, label="max"):
    """One map per study from per-label maps [B, k, P]: their max or mean, or label ``label``
    (a column index); rows sum to 1. A [B, P] map passes through.

    Examples
    --------
    >>> import numpy as np
    >>> maps = np.array([[[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]]])
    >>> reduce_label_scores(maps, "max").round(3), reduce_label_scores(maps, 1)
    (array([[0.278, 0.278, 0.444]]), array([[0. , 0.2, 0.8]]))
    """
    if scores.ndim == 2:
        return scores
    if label == "max":
        scores = scores.max(1)
    elif label == "mean":
        scores = scores.mean(1)
    else:
        scores = scores[:, int(label)]
    return scores / np.maximum(scores.sum(-1, keepdims=True), 1e-12)


def head_proba(model, features: torch.Tensor) -> np.ndarray:
    """Class probabilities of the head from all patches: softmax over classes [B, C], or one
    sigmoid per label [B, k] for a multi-label head."""
    logits = model.head(features)[0].float()
    return (logits.sigmoid() if model.multilabel else logits.softmax(-1)).cpu().numpy()


def score_patches(model, features: torch.Tensor, reports: Sequence[str], *, method: str = "mil",
                  tokenizer=None, max_tokens: int = 128, attention_layer: int = -1,
                  head_reduce: str = "mean", token_reduce: str = "mean",
                  keep_token_attention: bool = False, warn_rows: Sequence | None = None,
                  attention_label="max"):
    """One importance score per patch for a batch, as AttentionScorer's parameters ask.

    Parameters
    ----------
    model : VisionLanguageModel
        In eval mode, on the device of ``features``.
    features : Tensor [B, P, d]
        The encoder's patch features.
    reports : sequence of str
        The report each study is scored with (cross-attention and token attention only).
    method : {"mil", "cam", "cross_attention"}
    tokenizer, max_tokens, attention_layer, head_reduce, token_reduce
        How reports are tokenised and cross-attention is read and reduced.
    keep_token_attention : bool
        Also return each study's per-token attention and the tokens' character offsets.
    warn_rows : sequence, optional
        Row labels, to name reports cut at ``max_tokens`` in a warning.
    attention_label : "max", "mean" or int, default="max"
        A multi-label head's maps reduced to one (see :func:`reduce_label_scores`).

    Returns
    -------
    scores : ndarray [B, P] of float32
        Rows sum to 1.
    token_attention, token_offsets : list of ndarray, or None
        Without ``keep_token_attention``, None.
    """
    if method == "cross_attention" or keep_token_attention:
        labels, offsets, mask = encode_reports(tokenizer, reports, max_tokens, warn_rows=warn_rows)
        mask = content_token_mask(tokenizer, labels, mask).to(features.device)
        cross = model.cross_attention(features, labels.to(features.device), layer=attention_layer)
        cross = cross.float()  # reduced in float32 whatever the autocast precision
    if method == "cross_attention":
        token_weights = None
        if token_reduce == "findings":
            token_weights = finding_token_mask(reports, offsets, mask)
        scores = reduce_cross_attention(cross, mask, head_reduce=head_reduce,
                                        token_reduce=token_reduce, token_weights=token_weights)
    else:
        scores = model.patch_scores(features, method)[1]
        if scores.dim() == 3:
            scores = torch.as_tensor(reduce_label_scores(_normalized(scores), attention_label))
    if not keep_token_attention:
        return _normalized(scores), None, None
    per_token = reduce_heads(cross, head_reduce)
    token_attention, token_offsets = [], []
    for k in range(len(features)):
        keep = mask[k].bool()
        token_attention.append(_normalized(per_token[k][keep]))
        token_offsets.append(offsets[k][keep].cpu().numpy().astype(np.int64))
    return _normalized(scores), token_attention, token_offsets
