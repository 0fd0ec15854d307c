"""The stage-1 vision-language model: encoder + projection + report decoder + MIL head.

Patch features from a :class:`~neural_sk.models.encoders.VisionEncoder` are projected to the
decoder's width (Linear, Dropout 0.2, ReLU, Linear, as in the paper), given a learned 2-D
position embedding, and passed to a seq2seq decoder as its encoder output. A gated attention
multiple-instance (MIL) head classifies the label from the unprojected patch features.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .conditioning import FINDINGS, FindingsConditioner, HeadConditioner
from .encoders import VisionEncoder, build_encoder, resolve_local_dir
from .generation import check_decoder_options
from .presets import TINY_T5, uses_channels_last

__all__ = [
    "GatedAttentionMIL",
    "MultiLabelAttentionMIL",
    "VisionLanguageModel",
    "build_decoder",
    "build_vision_language_model",
    "cross_attention_modules",
    "encode_reports",
    "state_digest",
]


class GatedAttentionMIL(nn.Module):
    """Gated attention pooling (Ilse et al., 2018) followed by a linear classifier.

    The attention weights are a per-patch importance learned from the label alone (the image
    decides them, never the report), which is what ``method="mil"`` ranks patches by.
    """

    def __init__(self, in_dim: int, n_classes: int, hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.V = nn.Linear(in_dim, hidden)
        self.U = nn.Linear(in_dim, hidden)
        self.w = nn.Linear(hidden, 1)
        self.classifier = nn.Linear(in_dim, n_classes)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, P, d] -> (class logits [B, C], attention weights [B, P])."""
        h = self.dropout(h)
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h))).squeeze(-1)
        weights = scores.softmax(dim=-1)
        pooled = torch.einsum("bp,bpd->bd", weights, h)
        return self.classifier(pooled), weights

    def class_activation(self, h: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        """Per-patch evidence for class ``cls`` [B]: classifier weights . patch features [B, P].

        For two classes this is the evidence for ``cls`` against the other class.
        """
        logits = self.classifier(h)  # [B, P, C]
        if logits.shape[-1] == 2:
            diff = logits[..., 1] - logits[..., 0]
            return torch.where(cls[:, None] == 1, diff, -diff)
        return logits.gather(-1, cls[:, None, None].expand(-1, logits.shape[1], 1)).squeeze(-1)


class MultiLabelAttentionMIL(nn.Module):
    """One gated attention pooling per label and one logit per label (multi-label targets).

    The gating layers are shared; each label has its own attention vector, so each finding
    learns where it is seen (the effusion at the costophrenic angle, the pneumonia in its
    zone), and its own classifier on its own pooled vector.

    Examples
    --------
    >>> import torch
    >>> head = MultiLabelAttentionMIL(8, 3)
    >>> logits, weights = head(torch.randn(2, 5, 8))
    >>> logits.shape, weights.shape, bool(torch.allclose(weights.sum(-1), torch.ones(2, 3)))
    (torch.Size([2, 3]), torch.Size([2, 3, 5]), True)
    """

    def __init__(self, in_dim: int, n_labels: int, hidden: int = 128, dropout: float = 0.25):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.V = nn.Linear(in_dim, hidden)
        self.U = nn.Linear(in_dim, hidden)
        self.w = nn.Linear(hidden, n_labels)
        self.classifier = nn.Linear(in_dim, n_labels)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, P, d] -> (label logits [B, k], attention weights [B, k, P])."""
        h = self.dropout(h)
        scores = self.w(torch.tanh(self.V(h)) * torch.sigmoid(self.U(h)))  # [B, P, k]
        weights = scores.transpose(1, 2).softmax(dim=-1)
        pooled = torch.einsum("bkp,bpd->bkd", weights, h)
        logits = (pooled * self.classifier.weight).sum(-1) + self.classifier.bias
        return logits, weights

    def class_activation(self, h: torch.Tensor, cls: torch.Tensor | None = None) -> torch.Tensor:
        """Per-patch evidence for each label [B, k, P] (``cls`` is not used: every label has
        its own map)."""
        return self.classifier(h).transpose(1, 2)


def build_decoder(text_model: str, vocab_size: int | None = None, pad_token_id: int = 0,
                  eos_token_id: int = 1) -> nn.Module:
    """A seq2seq model whose decoder writes the report; eager attention so it returns weights.

    ``"tiny"`` is a 2-layer T5 with random weights sized for ``vocab_size``; a local directory
    is loaded with ``AutoModelForSeq2SeqLM`` (T5 family; BART works too).
    """
    from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

    if text_model == "tiny":
        # num_layers sizes the generation cache too, so it matches the decoder depth although
        # the text encoder is never run.
        config = T5Config(vocab_size=vocab_size, pad_token_id=pad_token_id,
                          eos_token_id=eos_token_id, decoder_start_token_id=pad_token_id,
                          **TINY_T5)
        config._attn_implementation = "eager"
        model = T5ForConditionalGeneration(config)
    else:
        path = resolve_local_dir(text_model, param="text_model")
        model = AutoModelForSeq2SeqLM.from_pretrained(
            Path(path), local_files_only=True, attn_implementation="eager"
        )
    if hasattr(model, "get_encoder"):
        # The images replace the text encoder; its weights stay (the checkpoint owns them) but
        # are never run.
        for p in model.get_encoder().parameters():
            p.requires_grad_(False)
    return model


def cross_attention_modules(decoder_model: nn.Module) -> list[nn.Module]:
    """The decoder's cross-attention modules, one per layer, first to last.

    Each returns its attention weights [B, heads, T, P] as the last element of its output.
    """
    if hasattr(decoder_model, "decoder") and hasattr(decoder_model.decoder, "block"):  # T5
        return [block.layer[1] for block in decoder_model.decoder.block]
    base = getattr(decoder_model, "model", decoder_model)
    layers = getattr(getattr(base, "decoder", None), "layers", None)
    if layers is not None and hasattr(layers[0], "encoder_attn"):  # BART family
        return [layer.encoder_attn for layer in layers]
    raise ValueError(f"cannot find cross-attention layers in {type(decoder_model).__name__}")


def decoder_width(decoder_model: nn.Module) -> int:
    config = decoder_model.config
    return int(getattr(config, "d_model", None) or config.hidden_size)


class VisionLanguageModel(nn.Module):
    """Encoder + projection (+ 2-D position embedding) + decoder + gated-attention MIL head.

    ``conditioning`` ("none", "head", "findings"; :mod:`.conditioning`) adds memory tokens that
    tell the decoder what the classification head, or a report-guided findings head, found.
    """

    def __init__(self, encoder: VisionEncoder, decoder: nn.Module | None, n_classes: int,
                 position_embedding: bool = True, conditioning: str = "none",
                 multilabel: bool = False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        d = encoder.feature_dim
        self.projection = self.position = None
        if decoder is not None:  # None: an image-only model (classification head alone)
            width = decoder_width(decoder)
            self.projection = nn.Sequential(
                nn.Linear(d, width), nn.Dropout(0.2), nn.ReLU(), nn.Linear(width, width)
            )
            n_patches = encoder.grid_shape[0] * encoder.grid_shape[1]
            if position_embedding:
                self.position = nn.Parameter(torch.randn(n_patches, width) * 0.02)
        head = MultiLabelAttentionMIL if multilabel else GatedAttentionMIL
        self.head = head(d, n_classes) if n_classes else None
        self.conditioning = conditioning if decoder is not None else "none"
        self.conditioner = None
        if self.conditioning == "head":
            if not n_classes:
                raise ValueError("report_decoder['conditioning']='head' needs the classification "
                                 "head: pass y, or use 'findings' or 'none'")
            self.conditioner = HeadConditioner(width, n_classes)
        elif self.conditioning == "findings":
            self.conditioner = FindingsConditioner(d, width, len(FINDINGS))

    @property
    def multilabel(self) -> bool:
        """Whether the head gives one logit and one attention map per label."""
        return isinstance(self.head, MultiLabelAttentionMIL)

    def memory(self, features: torch.Tensor):
        """Patch features [B, P, d] -> (the decoder's encoder output, its attention mask).

        The first P memory positions are the patches; conditioning tokens follow them.
        """
        from transformers.modeling_outputs import BaseModelOutput

        mem = self.projection(features)
        if self.position is not None:
            mem = mem + self.position
        conditioning = getattr(self, "conditioning", "none")  # models pickled before it
        if conditioning == "head":
            mem = torch.cat([mem, self.conditioner(self.head, features, mem)], 1)
        elif conditioning == "findings":
            mem = torch.cat([mem, self.conditioner(features, mem)], 1)
        ones = torch.ones(mem.shape[:2], dtype=torch.long, device=mem.device)
        return BaseModelOutput(last_hidden_state=mem), ones

    def findings_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        """The report-guided head's logits [B, len(FINDINGS)]; None without that head."""
        if getattr(self, "conditioning", "none") != "findings":
            return None
        return self.conditioner.attend(features)[0]

    def generation_loss(self, features: torch.Tensor, labels: torch.Tensor,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced report cross-entropy; ``labels`` use -100 for padding.

        With per-study ``weights`` [B], every token counts with its study's weight, so a
        weight of 2 equals the study twice in the batch.
        """
        memory, ones = self.memory(features)
        out = self.decoder(encoder_outputs=memory, attention_mask=ones, labels=labels)
        if weights is None:
            return out.loss
        tokens = F.cross_entropy(out.logits.transpose(1, 2).float(), labels, ignore_index=-100,
                                 reduction="none")
        w = weights[:, None] * (labels != -100)
        return (tokens * w).sum() / w.sum().clamp_min(1e-12)

    def cross_attention(self, features: torch.Tensor, labels: torch.Tensor,
                        layer: int = -1) -> torch.Tensor:
        """Teacher-forced pass; returns one layer's cross-attention [B, heads, T, P].

        Row ``t`` is the attention of the decoder step that predicts label token ``t``. Only
        the asked layer is captured (a forward hook), not every layer's weights. Attention to
        conditioning tokens is left out: the P columns are the patches.
        """
        module = cross_attention_modules(self.decoder)[layer]
        captured: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda m, i, out: captured.append(out[-1]))
        try:
            memory, ones = self.memory(features)
            self.decoder(encoder_outputs=memory, attention_mask=ones, labels=labels,
                         use_cache=False)
        finally:
            handle.remove()
        if not captured or captured[-1] is None:
            raise RuntimeError(
                "the decoder returned no attention weights: it must use attn_implementation='eager'"
            )
        return captured[-1][..., : features.shape[1]]

    def patch_scores(self, features: torch.Tensor, method: str,
                     classes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits [B, C] and one score per patch [B, P] from the classification head.

        ``method="mil"`` gives the head's attention weights; ``"cam"`` the softmax of the
        class activation for ``classes`` (the true labels in training, the predicted class
        when None). A multi-label head gives [B, k] logits and [B, k, P] scores, one map
        per label.
        """
        logits, weights = self.head(features)
        if method == "cam" and self.multilabel:
            weights = self.head.class_activation(features).softmax(-1)
        elif method == "cam":
            if classes is None:
                classes = logits.argmax(-1)
            weights = self.head.class_activation(features, classes).softmax(-1)
        return logits, weights

    @torch.no_grad()
    def generate(self, features: torch.Tensor, max_new_tokens: int, **kwargs) -> torch.Tensor:
        """Report token ids [B, T] written from patch features [B, P, d].

        Greedy unless ``kwargs`` (``transformers`` ``generate`` arguments, e.g. from
        :func:`~neural_sk.models.generation.generation_kwargs`) ask otherwise.
        """
        memory, ones = self.memory(features)
        kwargs = {"do_sample": False, "num_beams": 1, **kwargs}
        return self.decoder.generate(encoder_outputs=memory, attention_mask=ones,
                                     max_new_tokens=max_new_tokens, **kwargs)


def build_vision_language_model(vision_model: str, text_model: str | None, *,
                                reports: Sequence[str] | None, n_classes: int,
                                image_size: int = 224, train_encoder: str = "last_stage",
                                feature_stage: int = 16, position_embedding: bool = True,
                                report_decoder: dict | None = None, multilabel: bool = False):
    """Build the stage-1 model and its tokenizer from descriptions (presets or directories).

    Parameters
    ----------
    vision_model, text_model : str or None
        As in :class:`~neural_sk.AttentionScorer`; ``text_model=None`` gives an image-only model.
    reports : sequence of str or None
        The training reports: the ``"tiny"`` preset trains its word-level tokenizer on them.
    n_classes : int
        Width of the classification head; 0 for none.
    multilabel : bool, default=False
        One attention map and one logit per label (:class:`MultiLabelAttentionMIL`).
    image_size, train_encoder, feature_stage, position_embedding
        As in :class:`~neural_sk.AttentionScorer`.
    report_decoder : dict or None
        As in :class:`~neural_sk.AttentionScorer`, checked here; its ``conditioning`` decides
        what the decoder is told besides the patches (:mod:`neural_sk.models.conditioning`).

    Returns
    -------
    model : VisionLanguageModel
        Random layers are drawn from torch's default generator, in a fixed order.
    tokenizer : transformers.PreTrainedTokenizerFast or None
    """
    conditioning = check_decoder_options(report_decoder)["conditioning"]
    encoder = build_encoder(vision_model, image_size=image_size, train_encoder=train_encoder,
                            feature_stage=int(feature_stage))
    if text_model is None:
        tokenizer = decoder = None
    elif text_model == "tiny":
        from ..text.tokenizer import train_report_tokenizer

        tokenizer = train_report_tokenizer(reports)
        decoder = build_decoder("tiny", vocab_size=len(tokenizer),
                                pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id)
    else:
        from transformers import AutoTokenizer

        path = resolve_local_dir(text_model, param="text_model")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        decoder = build_decoder(str(path))
    model = VisionLanguageModel(encoder, decoder, n_classes, position_embedding=position_embedding,
                                conditioning=conditioning, multilabel=multilabel)
    if uses_channels_last(encoder.name):
        model = model.to(memory_format=torch.channels_last)
    return model, tokenizer


def encode_reports(tokenizer, reports: Sequence[str], max_tokens: int, *,
                   warn_rows: Sequence | None = None):
    """Tokenise reports for the decoder, warning about those cut at ``max_tokens``.

    Parameters
    ----------
    tokenizer : transformers.PreTrainedTokenizerFast
    reports : sequence of str
    max_tokens : int
        Longer reports are truncated.
    warn_rows : sequence, optional
        Row labels of ``reports``; when given, truncated reports are named in a warning.

    Returns
    -------
    labels : Tensor [n, T]
        Token ids, -100 at padding (the decoder's loss ignores it).
    offsets : Tensor [n, T, 2]
        Character span of each token in its report.
    mask : Tensor [n, T]
        1 for real tokens, 0 for padding.
    """
    enc = tokenizer(list(reports), padding=True, truncation=True, max_length=max_tokens,
                    return_offsets_mapping=True, return_tensors="pt")
    at_limit = np.flatnonzero(enc["attention_mask"].sum(1).numpy() >= max_tokens)
    if warn_rows is not None and len(at_limit):
        # Only reports that fill the limit can have been cut: tokenise those again whole.
        full = tokenizer([reports[i] for i in at_limit], truncation=False)["input_ids"]
        long_rows = [warn_rows[i] for i, ids in zip(at_limit, full) if len(ids) > max_tokens]
        if long_rows:
            warnings.warn(
                f"{len(long_rows)} report(s) exceed max_report_tokens={max_tokens} "
                f"and were truncated (rows {long_rows[:10]}{'...' if len(long_rows) > 10 else ''})",
                stacklevel=4,
            )
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return labels, enc["offset_mapping"], enc["attention_mask"]


def state_digest(model: nn.Module) -> str:
    """A short hash of every tensor of ``model``'s state: the identity of fitted weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
