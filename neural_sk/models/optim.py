"""The stage-1 optimiser and its schedule: AdamW with the encoder's parameters in their own
group, a linear warm-up then a cosine decay, and the number of epochs a fit runs."""

from __future__ import annotations

import math

import torch

__all__ = ["MIN_STEPS", "MIN_EPOCHS", "build_optimizer", "build_scheduler", "resolve_epochs",
           "steps_per_epoch", "warmup_cosine"]

# epochs="auto" trains at least this many optimisation steps, and at least MIN_EPOCHS epochs.
# 160 synthetic studies learned nothing in 100 steps; in 300 (four seeds) held-out AUC
# 0.70-0.84 and the top patch on the lesion in 0.25-0.49 of positives; in 600, 0.78-0.87 and
# 0.51-0.61 (benchmarks/results/bench_few_studies.json). 480 studies get 20 epochs.
MIN_STEPS = 600
MIN_EPOCHS = 10
# Share of the steps spent warming up: the fresh head and decoder start at a small rate
# instead of pulling the pretrained encoder stage with their first, random gradients.
WARMUP_FRACTION = 0.05


def build_optimizer(model, config) -> torch.optim.Optimizer:
    """AdamW with the encoder in its own group (its own rate; left out when that rate is 0)."""
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    groups = [{"params": rest, "lr": config.learning_rate}]
    if enc_params and config.encoder_learning_rate > 0:
        groups.append({"params": enc_params, "lr": config.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Factor of the base rate at ``step``: linear warm-up to 1, then a cosine decay to 0.

    Parameters
    ----------
    step : int
        Optimisation steps taken so far (0 before the first).
    total_steps : int
        Steps the whole fit takes.
    warmup_steps : int
        Steps of the linear warm-up.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> [round(warmup_cosine(s, 10, 2), 2) for s in (0, 1, 2, 6, 10)]
    [0.33, 0.67, 1.0, 0.5, 0.0]
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int,
                    schedule: str = "cosine") -> torch.optim.lr_scheduler.LambdaLR:
    """The rate schedule over ``total_steps`` optimiser steps: ``"cosine"`` (warm-up, then
    cosine decay) or ``"constant"``. Step it where the optimiser steps."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    warmup = max(1, round(WARMUP_FRACTION * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup))


def resolve_epochs(epochs: int | str, n_train: int, batch_size: int,
                   gradient_accumulation: int = 1) -> int:
    """Epochs of a fit: an integer as given; ``"auto"`` enough for :data:`MIN_STEPS`
    optimisation steps (few studies train more epochs), and at least :data:`MIN_EPOCHS`.

    Examples
    --------
    >>> resolve_epochs("auto", 160, 16), resolve_epochs("auto", 480, 16), resolve_epochs(3, 160, 16)
    (60, 20, 3)
    """
    if epochs != "auto":
        return int(epochs)
    return max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch(n_train, batch_size,
                                                                  gradient_accumulation)))


def steps_per_epoch(n_train: int, batch_size: int, gradient_accumulation: int = 1) -> int:
    """Optimiser steps in one epoch (a last, partial accumulation steps too)."""
    return max(math.ceil(math.ceil(n_train / batch_size) / gradient_accumulation), 1)
