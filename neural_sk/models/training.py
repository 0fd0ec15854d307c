"""Fitting the stage-1 vision-language model: the training loop and what feeds it.

The loop trains report generation (teacher forcing) and the classification head jointly, on
uint8 images held in memory. When only the encoder's last stage trains, the frozen prefix is
computed once per image (the prefix cache) and augmentation shifts the cached feature maps;
otherwise the pixels themselves are augmented.
"""

from __future__ import annotations

import dataclasses
import io
import warnings

import numpy as np
import torch
from torch.nn import functional as F

from .encoders import normalize
from .presets import default_learning_rates, uses_channels_last

__all__ = [
    "TrainingConfig",
    "augment_pixels",
    "jpeg_degrade",
    "prefix_cache",
    "shift_feature_maps",
    "train_vision_language",
]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train_vision_language` trains (the scorer's parameters, resolved).

    ``method`` decides which patch scores ``grounding_weight`` pulls toward the lesion ("mil"
    or "cam"); ``max_shift`` is the largest pixel translation of the pixel augmentation.
    """

    learning_rate: float
    encoder_learning_rate: float
    weight_decay: float = 0.01
    epochs: int = 10
    batch_size: int = 16
    gradient_accumulation: int = 1
    augment: bool = True
    max_shift: int = 14
    classification_weight: float = 0.5
    grounding_weight: float = 0.0
    method: str = "mil"
    verbose: int = 0

    @classmethod
    def from_params(cls, params: dict) -> TrainingConfig:
        """From AttentionScorer's parameters: "auto" rates resolved, the shift from the image size."""
        rates = default_learning_rates(params["vision_model"], params["text_model"],
                                       params["learning_rate"], params["encoder_learning_rate"])
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{
            **{key: value for key, value in params.items() if key in names},
            "learning_rate": rates[0], "encoder_learning_rate": rates[1],
            "max_shift": params["image_size"] // 16,
        })


def jpeg_degrade(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip uint8 images [B, S, S] through JPEG at ``quality`` (the paper's setting: 10)."""
    from PIL import Image

    out = torch.empty_like(pixels)
    for i, img in enumerate(pixels.numpy()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = torch.from_numpy(np.asarray(Image.open(buf).convert("L")))
    return out


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


def augment_pixels(batch: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation (up to ``max_shift`` px), contrast and brightness jitter [B, S, S]."""
    B = batch.shape[0]
    shifted = shift_feature_maps(batch[:, None], max_shift, generator)[:, 0]
    gain = 1.0 + 0.2 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    bias = 0.1 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    return (shifted * gain + bias).clamp(0, 1)


@torch.inference_mode()
def prefix_cache(encoder, pixels: torch.Tensor, device, batch_size: int = 64) -> torch.Tensor:
    """The frozen encoder prefix of every image, computed once, kept on the CPU in float16."""
    encoder.eval()
    chunks = []
    for start in range(0, len(pixels), batch_size):
        batch = normalize(pixels[start : start + batch_size], encoder).to(device)
        if uses_channels_last(encoder.name):
            batch = batch.contiguous(memory_format=torch.channels_last)
        chunks.append(encoder.prefix(batch).to("cpu", torch.float16))
    return torch.cat(chunks)


def _optimizer(model, config: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW with the encoder in its own group (its own rate; left out when that rate is 0)."""
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    groups = [{"params": rest, "lr": config.learning_rate}]
    if enc_params and config.encoder_learning_rate > 0:
        groups.append({"params": enc_params, "lr": config.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _batch_features(encoder, pixels, cached, idx, config, generator, device) -> torch.Tensor:
    """Patch features [B, P, d] of one training batch, augmented when asked."""
    if cached is not None:
        hidden = cached[idx].to(device, torch.float32)
        if config.augment:
            hidden = shift_feature_maps(hidden, 1, generator)
        if uses_channels_last(encoder.name):
            hidden = hidden.contiguous(memory_format=torch.channels_last)
        return encoder.suffix(hidden)
    batch = pixels[idx].float() / 255.0
    if config.augment:
        batch = augment_pixels(batch, config.max_shift, generator)
    return encoder(normalize(batch, encoder).to(device))


def _mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def _batch_loss(model, features, labels, targets, lesion, weights, config, device):
    """Joint loss of one batch: generation + weight x classification - weight x grounding.

    ``weights`` [B] (or None) weigh each study's part of every term. Returns the loss
    tensor and the floats of its generation and classification parts.
    """
    weights = None if weights is None else weights.to(device)
    if labels is not None:
        # Reports were padded to the longest of the whole set: trim to this batch's.
        length = int((labels != -100).sum(1).max())
        gen = model.generation_loss(features, labels[:, :length].contiguous().to(device), weights)
    else:
        gen = torch.zeros((), device=device)
    loss = gen
    cls_value = 0.0
    if targets is not None:
        targets = targets.to(device)
        logits, scores = model.patch_scores(features, config.method, targets)
        if weights is None:
            cls = F.cross_entropy(logits, targets)
        else:
            cls = _mean(F.cross_entropy(logits, targets, reduction="none"), weights)
        loss = loss + config.classification_weight * cls
        cls_value = cls.item()
        if lesion is not None:
            lesion = lesion.to(device)
            has = lesion.any(1)
            if has.any():
                on_lesion = (scores[has] * lesion[has]).sum(1)
                grounding = _mean(torch.log(on_lesion + 1e-6),
                                  None if weights is None else weights[has])
                loss = loss - config.grounding_weight * grounding
    return loss, gen.item(), cls_value


def _warn_if_head_at_chance(history: list[dict], targets: torch.Tensor,
                            weights: torch.Tensor | None, steps: int) -> None:
    """Warn when the last epoch's classification loss is no better than a constant guess.

    A head that predicts the class frequencies has a cross-entropy equal to their entropy;
    a loss above 90% of it means the head has learned (nearly) nothing from the images.
    """
    if not history:
        return
    w = torch.ones(len(targets)) if weights is None else weights.float().cpu()
    freq = torch.bincount(targets.cpu(), weights=w).float()
    freq = freq[freq > 0] / freq.sum()
    chance = float(-(freq * freq.log()).sum())
    last = history[-1]["classification"]
    if last > 0.9 * chance:
        warnings.warn(
            f"the stage-1 classification head learned (nearly) nothing: its loss in the last "
            f"epoch, {last:.3f}, is at chance level ({chance:.3f}, the class entropy) after "
            f"{steps} optimisation steps on {len(targets)} studies. Patch scores from it are "
            "not meaningful; train longer (more epochs or a smaller batch_size) or on more "
            "studies.", UserWarning, stacklevel=5,
        )


def train_vision_language(model, pixels: torch.Tensor, *, labels: torch.Tensor | None,
                          targets: torch.Tensor | None, lesion: torch.Tensor | None,
                          weights: torch.Tensor | None = None, config: TrainingConfig,
                          generator: torch.Generator, device) -> list[dict]:
    """Train ``model`` in place on ``device`` and leave it on the CPU.

    Parameters
    ----------
    model : VisionLanguageModel
    pixels : Tensor [n, S, S] of uint8
        The training images.
    labels : Tensor [n, T] or None
        Report token ids (-100 at padding), from :func:`~neural_sk.models.vlm.encode_reports`;
        None trains no generation loss.
    targets : Tensor [n] of int64 or None
        Class indices for the classification head; None trains no classification loss.
    lesion : Tensor [n, P] of bool or None
        Patches on the lesion, for the grounding loss (rows without any are left out).
    weights : Tensor [n] or None
        Per-study weights of the losses (sample and class weights); None weighs all alike.
    config : TrainingConfig
    generator : torch.Generator
        Draws the batch order and the augmentation.
    device : torch.device

    Returns
    -------
    list of dict
        Per epoch, the mean ``loss``, ``generation`` and ``classification`` losses. A
        warning says when the classification loss ends no better than chance.
    """
    model = model.to(device)
    optimizer = _optimizer(model, config)
    n = len(pixels)
    cached = None
    if model.encoder.cacheable_prefix and config.epochs > 0:
        cached = prefix_cache(model.encoder, pixels, device)
    epochs = range(config.epochs)
    if config.verbose:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="fit scorer", unit="epoch")
    history = []
    step = 0
    for _ in epochs:
        model.train()
        order = torch.randperm(n, generator=generator)
        totals = {"loss": 0.0, "generation": 0.0, "classification": 0.0}
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            features = _batch_features(model.encoder, pixels, cached, idx, config, generator, device)
            loss, gen, cls = _batch_loss(
                model, features, None if labels is None else labels[idx],
                None if targets is None else targets[idx],
                None if lesion is None else lesion[idx],
                None if weights is None else weights[idx], config, device,
            )
            (loss / config.gradient_accumulation).backward()
            step += 1
            if step % config.gradient_accumulation == 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            k = len(idx)
            totals["loss"] += loss.item() * k
            totals["generation"] += gen * k
            totals["classification"] += cls * k
        if step % config.gradient_accumulation:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        history.append({key: value / max(n, 1) for key, value in totals.items()})
        if config.verbose and hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{history[-1]['loss']:.3f}")
    model.to("cpu")
    if targets is not None:
        _warn_if_head_at_chance(history, targets, weights, step)
    return history
