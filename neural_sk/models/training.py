"""Fitting the stage-1 vision-language model: the training loop and what feeds it.

The loop trains report generation (teacher forcing) and the classification head jointly.
Images stream from a :class:`~neural_sk.models.loading.StudyImages` dataset, decoded and
augmented in DataLoader workers, so memory does not grow with the number of studies. When
only the encoder's last stage trains, the frozen prefix is computed once per image into a
temporary float16 file (the prefix cache) and augmentation shifts the cached feature maps;
otherwise the pixels themselves are augmented.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from .conditioning import report_findings
from .encoders import normalize
from .findings_writer import fit_findings_writer
from .loading import BatchStream, FeatureRows, StudyImages, raise_image_error, resolve_num_workers
from .losses import batch_loss, warn_if_head_at_chance
from .optim import build_optimizer, build_scheduler, resolve_epochs, steps_per_epoch
from .precision import autocast, grad_scaler, resolve_precision
from .presets import default_classification_weight, default_learning_rates, uses_channels_last
from .validation import EarlyStopping, validation_split

__all__ = ["TrainingConfig", "prefix_cache", "train_vision_language"]


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How :func:`train_vision_language` trains (the scorer's parameters, resolved).

    ``method`` decides which patch scores ``grounding_weight`` pulls toward the lesion ("mil"
    or "cam"); ``max_shift`` is the largest pixel translation of the pixel augmentation.
    ``precision`` and ``num_workers`` may be "auto" (resolved for the device and the images
    by :func:`train_vision_language`); ``epochs="auto"`` trains at least
    :data:`~neural_sk.models.optim.MIN_STEPS` steps; a ``validation_fraction`` of the studies
    (stratified) picks the best epoch, which is restored.
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
    image_size: int = 224
    train_jpeg_quality: int | None = None
    precision: str = "32"
    num_workers: int | str = 0
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
            "classification_weight": default_classification_weight(
                params["text_model"], params["classification_weight"]),
            "max_shift": params["image_size"] // 16,
        })


def _to_device(batch: torch.Tensor, device) -> torch.Tensor:
    # Pinned batches copy asynchronously; the uint8 pixels are normalised on the device.
    return batch.to(device, non_blocking=batch.is_pinned())


@torch.inference_mode()
def prefix_cache(encoder, images: StudyImages, device, folder: str, *, config: TrainingConfig,
                 index=None, batch_size: int = 64) -> FeatureRows:
    """The frozen encoder prefix of every image, computed once, written to a float16 file.

    The file lives in ``folder`` (the caller's temporary directory), so the cache takes disk,
    not memory: n x C x h x w x 2 bytes (about 130 kB per study for EfficientNet-Lite0 at
    384 px, 48 GB for all of MIMIC-CXR). A study whose image cannot be read raises, naming
    its row label in ``index``.
    """
    encoder.eval()
    stream = BatchStream(images, config.num_workers, pin_memory=device.type == "cuda")
    path = Path(folder) / "prefix.f16"
    shape = None
    try:
        with open(path, "wb") as out:
            batches = range(0, len(images), batch_size)
            for positions, pixels, failed in stream.run(
                    [range(b, min(b + batch_size, len(images))) for b in batches],
                    desc="read images" if config.verbose else None):
                for position, failure in zip(positions.tolist(), failed):
                    if failure is not None:
                        raise_image_error(failure, position if index is None else index[position])
                batch = normalize(_to_device(pixels, device), encoder)
                if uses_channels_last(encoder.name):
                    batch = batch.contiguous(memory_format=torch.channels_last)
                with autocast(config.precision, device):
                    hidden = encoder.prefix(batch)
                hidden = hidden.to("cpu", torch.float16).contiguous()
                shape = tuple(hidden.shape[1:])
                out.write(hidden.numpy().tobytes())
    finally:
        stream.close()
    return FeatureRows(path, shape, len(images), max_shift=1 if config.augment else 0)


def _batch_features(encoder, batch, cached: bool, device) -> torch.Tensor:
    """Patch features [B, P, d] of one training batch (already augmented by the loader)."""
    if cached:
        hidden = _to_device(batch, device).float()
        if uses_channels_last(encoder.name):
            hidden = hidden.contiguous(memory_format=torch.channels_last)
        return encoder.suffix(hidden)
    return encoder(normalize(_to_device(batch, device), encoder))


def _step(optimizer, scaler, model, scheduler) -> None:
    scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _plain_features(encoder, stream, positions: torch.Tensor, cached: bool, device):
    """Patch features of the studies at ``positions``, without augmentation (validation)."""
    ((_, batch, _),) = list(stream.run([positions]))  # read once before: no failures now
    return _batch_features(encoder, batch, cached, device)


def train_vision_language(model, sources, *, labels: torch.Tensor | None,
                          targets: torch.Tensor | None, lesion: torch.Tensor | None,
                          weights: torch.Tensor | None = None, config: TrainingConfig,
                          generator: torch.Generator, device, index=None,
                          reports: Sequence[str] | None = None) -> list[dict]:
    """Train ``model`` in place on ``device`` and leave it on the CPU.

    Parameters
    ----------
    model : VisionLanguageModel
    sources : sequence of ndarray or path
        The training images, read (and augmented) batch by batch in ``config.num_workers``
        DataLoader worker processes.
    labels : Tensor [n, T] or None
        Report token ids (-100 at padding), from :func:`~neural_sk.models.data.report_labels`;
        None trains no generation loss.
    targets : Tensor [n] of int64 or None
        Class indices for the classification head; None trains no classification loss.
    lesion : Tensor [n, P] of bool or None
        Patches on the lesion, for the grounding loss (rows without any are left out).
    weights : Tensor [n] or None
        Per-study weights of the losses (sample and class weights); None weighs all alike.
    reports : sequence of str or None
        The training reports: a report-guided head (``model.conditioning == "findings"``)
        learns the findings the labeler reads from them.
    config : TrainingConfig
    generator : torch.Generator
        Draws the batch order and each epoch's augmentation seed (every study's
        augmentation then draws from its own generator: the same numbers whatever the
        number of workers).
    device : torch.device
    index : sequence, optional
        Row labels of the studies, named when an image cannot be read.

    Returns
    -------
    list of dict
        Per epoch, the mean ``loss``, ``generation`` and ``classification`` losses. A
        warning says when the classification loss ends no better than chance.
    """
    config = dataclasses.replace(
        config, precision=resolve_precision(config.precision, device),
        num_workers=resolve_num_workers(config.num_workers, sources, config.batch_size, device))
    images = StudyImages(sources, config.image_size, jpeg_quality=config.train_jpeg_quality,
                         max_shift=config.max_shift)
    findings = entities = None
    if reports is not None and getattr(model, "conditioning", "none") == "findings":
        from ..text import extract_entities

        entities = extract_entities(list(reports))  # read once: the head's targets, the writer
        findings = report_findings(reports, entities)
    model = model.to(device)
    optimizer = build_optimizer(model, config)
    scaler = grad_scaler(config.precision, device)
    rows = list(range(len(images))) if index is None else list(index)
    # Multi-label targets [n, 2, k] train on every study: the split and the stopper are
    # single-label (class indices).
    split = (None if targets is None or targets.dim() != 1
             else validation_split(targets, config.validation_fraction, generator))
    train_idx = torch.arange(len(images)) if split is None else split[0]
    n = len(train_idx)
    n_epochs = resolve_epochs(config.epochs, n, config.batch_size, config.gradient_accumulation)
    scheduler = build_scheduler(optimizer, n_epochs * steps_per_epoch(
        n, config.batch_size, config.gradient_accumulation), config.schedule)
    cached = model.encoder.cacheable_prefix and n_epochs > 0
    history: list[dict] = []
    step = 0
    stopper = None
    with tempfile.TemporaryDirectory(prefix="neural_sk-") as folder:
        if cached:
            source = prefix_cache(model.encoder, images, device, folder, config=config, index=rows)
        else:
            source = images
        stream = BatchStream(source, config.num_workers, pin_memory=device.type == "cuda",
                             seed=int(torch.randint(2**62, (1,), generator=generator)))
        if split is not None:
            stopper = EarlyStopping(
                lambda idx: _plain_features(model.encoder, stream, split[1][idx], cached, device),
                targets[split[1]], config.n_iter_no_change, config.batch_size,
                metric=config.early_stopping_metric)
        try:
            for epoch in range(n_epochs):
                model.train()
                order = train_idx[torch.randperm(n, generator=generator)]
                seed = int(torch.randint(2**62, (1,), generator=generator)) if config.augment else None
                totals = {"loss": 0.0, "generation": 0.0, "classification": 0.0}
                seen = 0
                batches = stream.run(
                    [order[s : s + config.batch_size] for s in range(0, n, config.batch_size)],
                    seed=seed,
                    desc=f"fit scorer: epoch {epoch + 1}/{n_epochs}" if config.verbose else None,
                )
                for idx, batch, failed in batches:
                    for position, failure in zip(idx.tolist(), failed):
                        if failure is not None:
                            raise_image_error(failure, rows[position])
                    with autocast(config.precision, device):
                        features = _batch_features(model.encoder, batch, cached, device)
                        loss, gen, cls = batch_loss(
                            model, features, None if labels is None else labels[idx],
                            None if targets is None else targets[idx],
                            None if lesion is None else lesion[idx],
                            None if weights is None else weights[idx], config, device,
                            findings=None if findings is None else findings[idx],
                        )
                    scaler.scale(loss.float() / config.gradient_accumulation).backward()
                    step += 1
                    if step % config.gradient_accumulation == 0:
                        _step(optimizer, scaler, model, scheduler)
                    k = len(idx)
                    seen += k
                    totals["loss"] += loss.item() * k
                    totals["generation"] += gen * k
                    totals["classification"] += cls * k
                    if hasattr(batches, "set_postfix"):
                        batches.set_postfix(loss=f"{totals['loss'] / seen:.3f}")
                if step % config.gradient_accumulation:
                    _step(optimizer, scaler, model, scheduler)
                history.append({key: value / max(n, 1) for key, value in totals.items()})
                if stopper is not None:  # once per epoch: score the head, keep the best weights
                    scores, stop = stopper.update(model, epoch)
                    history[-1].update(scores)
                    if stop:
                        break
            if stopper is not None:
                stopper.restore_best(model)
            if findings is not None:  # after the weights are final
                model.report_writer = fit_findings_writer(
                    model, lambda idx: _plain_features(model.encoder, stream, idx, cached, device),
                    len(images), reports, config.batch_size, entities)
        finally:
            stream.close()
    model.to("cpu")
    if targets is not None:
        warn_if_head_at_chance(history, targets, weights, step, stopper)
    return history

