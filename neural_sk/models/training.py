"""Fitting the stage-1 vision-language model: the training loop and what feeds it.

The loop trains report generation (teacher forcing) and the classification head jointly, on
uint8 images held in memory. When only the encoder's last stage trains, the frozen prefix is
computed once per image (the prefix cache) and augmentation shifts the cached feature maps;
otherwise the pixels themselves are augmented.
"""

from __future__ import annotations

import dataclasses

import torch

from .augment import augment_pixels, shift_feature_maps
from .encoders import normalize
from .losses import batch_loss, warn_if_head_at_chance
from .optim import build_optimizer, build_scheduler, resolve_epochs, steps_per_epoch
from .presets import default_learning_rates, uses_channels_last
from .validation import EarlyStopping, validation_split

__all__ = ["TrainingConfig", "prefix_cache", "train_vision_language"]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train_vision_language` trains (the scorer's parameters, resolved).

    ``method`` decides which patch scores ``grounding_weight`` pulls toward the lesion ("mil"
    or "cam"); ``max_shift`` is the largest pixel translation of the pixel augmentation;
    ``epochs="auto"`` trains at least :data:`~neural_sk.models.optim.MIN_STEPS` steps; a
    ``validation_fraction`` of the studies (stratified) picks the best epoch, which is restored.
    """

    learning_rate: float
    encoder_learning_rate: float
    weight_decay: float = 0.01
    epochs: int | str = 10
    validation_fraction: float | None = None
    n_iter_no_change: int | None = None
    schedule: str = "cosine"
    early_stopping_metric: str = "loss"
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
    optimizer = build_optimizer(model, config)
    split = None if targets is None else validation_split(targets, config.validation_fraction,
                                                           generator)
    train_idx = torch.arange(len(pixels)) if split is None else split[0]
    n = len(train_idx)
    n_epochs = resolve_epochs(config.epochs, n, config.batch_size, config.gradient_accumulation)
    scheduler = build_scheduler(optimizer, n_epochs * steps_per_epoch(
        n, config.batch_size, config.gradient_accumulation), config.schedule)
    cached = None
    if model.encoder.cacheable_prefix and n_epochs > 0:
        cached = prefix_cache(model.encoder, pixels, device)
    stopper = None
    if split is not None:
        plain = dataclasses.replace(config, augment=False)
        stopper = EarlyStopping(
            lambda idx: _batch_features(model.encoder, pixels, cached, split[1][idx], plain,
                                        generator, device),
            targets[split[1]], config.n_iter_no_change, config.batch_size,
            metric=config.early_stopping_metric)
    epochs = range(n_epochs)
    if config.verbose:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="fit scorer", unit="epoch")
    history = []
    step = 0
    for epoch in epochs:
        model.train()
        order = train_idx[torch.randperm(n, generator=generator)]
        totals = {"loss": 0.0, "generation": 0.0, "classification": 0.0}
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            features = _batch_features(model.encoder, pixels, cached, idx, config, generator, device)
            loss, gen, cls = batch_loss(
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
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            k = len(idx)
            totals["loss"] += loss.item() * k
            totals["generation"] += gen * k
            totals["classification"] += cls * k
        if step % config.gradient_accumulation:
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        history.append({key: value / max(n, 1) for key, value in totals.items()})
        stop = False
        if stopper is not None:  # once per epoch: score the head, keep the best weights
            scores, stop = stopper.update(model, epoch)
            history[-1].update(scores)
        if config.verbose and hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        if stop:
            break
    if stopper is not None:
        stopper.restore_best(model)
    model.to("cpu")
    if targets is not None:
        warn_if_head_at_chance(history, targets, weights, step, stopper)
    return history
