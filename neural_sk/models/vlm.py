"""The stage-1 vision-language model: encoder + projection + report decoder + MIL head.

Patch features from a :class:`~neural_sk.models.encoders.VisionEncoder` are projected to the
decoder's width (Linear, Dropout 0.2, ReLU, Linear, as in the paper), given a learned 2-D
position embedding, and passed to a seq2seq decoder as its encoder output. A gated attention
multiple-instance (MIL) head classifies the label from the unprojected patch features.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .encoders import VisionEncoder, resolve_local_dir

__all__ = ["GatedAttentionMIL", "VisionLanguageModel", "build_decoder", "cross_attention_modules"]

TEXT_PRESETS = ("tiny",)


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


def build_decoder(text_model: str, vocab_size: int | None = None, pad_token_id: int = 0,
                  eos_token_id: int = 1) -> nn.Module:
    """A seq2seq model whose decoder writes the report; eager attention so it returns weights.

    ``"tiny"`` is a 2-layer T5 with random weights sized for ``vocab_size``; a local directory
    is loaded with ``AutoModelForSeq2SeqLM`` (T5 family; BART works too).
    """
    from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

    if text_model == "tiny":
        config = T5Config(
            vocab_size=vocab_size, d_model=128, d_kv=32, d_ff=256, num_layers=2,
            num_decoder_layers=2, num_heads=4, dropout_rate=0.1, pad_token_id=pad_token_id,
            eos_token_id=eos_token_id, decoder_start_token_id=pad_token_id,
            feed_forward_proj="relu", tie_word_embeddings=True,
            # num_layers sizes the generation cache too, so it matches the decoder depth
            # although the text encoder is never run.
        )
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
    """Encoder + projection (+ 2-D position embedding) + decoder + gated-attention MIL head."""

    def __init__(self, encoder: VisionEncoder, decoder: nn.Module | None, n_classes: int,
                 position_embedding: bool = True):
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
        self.head = GatedAttentionMIL(d, n_classes) if n_classes else None

    def memory(self, features: torch.Tensor):
        """Patch features [B, P, d] -> the decoder's encoder output."""
        from transformers.modeling_outputs import BaseModelOutput

        mem = self.projection(features)
        if self.position is not None:
            mem = mem + self.position
        return BaseModelOutput(last_hidden_state=mem)

    def generation_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forced report cross-entropy; ``labels`` use -100 for padding."""
        ones = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        out = self.decoder(encoder_outputs=self.memory(features), attention_mask=ones,
                           labels=labels)
        return out.loss

    def cross_attention(self, features: torch.Tensor, labels: torch.Tensor,
                        layer: int = -1) -> torch.Tensor:
        """Teacher-forced pass; returns one layer's cross-attention [B, heads, T, P].

        Row ``t`` is the attention of the decoder step that predicts label token ``t``. Only
        the asked layer is captured (a forward hook), not every layer's weights.
        """
        module = cross_attention_modules(self.decoder)[layer]
        captured: list[torch.Tensor] = []
        handle = module.register_forward_hook(lambda m, i, out: captured.append(out[-1]))
        try:
            ones = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
            self.decoder(encoder_outputs=self.memory(features), attention_mask=ones,
                         labels=labels, use_cache=False)
        finally:
            handle.remove()
        if not captured or captured[-1] is None:
            raise RuntimeError(
                "the decoder returned no attention weights: it must use attn_implementation='eager'"
            )
        return captured[-1]

    @torch.no_grad()
    def generate(self, features: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        ones = torch.ones(features.shape[:2], dtype=torch.long, device=features.device)
        return self.decoder.generate(
            encoder_outputs=self.memory(features), attention_mask=ones,
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        )


def shift_feature_maps(hidden: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Randomly translate each [C, h, w] map by up to ``max_shift`` cells, zero-filling the edge.

    Augmentation on cached stride-16 maps: a one-cell shift is a 16-pixel translation of the
    image, which the frozen convolutional prefix commutes with away from the border.
    """
    if max_shift <= 0:
        return hidden
    B = hidden.shape[0]
    shifts = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator)
    pad = F.pad(hidden, (max_shift,) * 4)
    h, w = hidden.shape[-2:]
    out = torch.empty_like(hidden)
    for b in range(B):  # a loop over the batch, not over patches
        dy, dx = int(shifts[b, 0]), int(shifts[b, 1])
        out[b] = pad[b, :, max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]
    return out
