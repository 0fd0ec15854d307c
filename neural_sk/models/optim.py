"""The stage-1 optimiser: AdamW with the encoder's parameters in their own group."""

from __future__ import annotations

import torch

__all__ = ["build_optimizer"]


def build_optimizer(model, config) -> torch.optim.Optimizer:
    """AdamW with the encoder in its own group (its own rate; left out when that rate is 0)."""
    enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in model.encoder.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    groups = [{"params": rest, "lr": config.learning_rate}]
    if enc_params and config.encoder_learning_rate > 0:
        groups.append({"params": enc_params, "lr": config.encoder_learning_rate})
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)
