"""The stage-1 losses: report generation, classification and lesion grounding, per batch,
and the check that the classification head learned more than the class frequencies."""

from __future__ import annotations

import math
import warnings

import torch
from torch.nn import functional as F

from .validation import auc_chance_bound

__all__ = ["batch_loss", "warn_if_head_at_chance", "weighted_mean"]


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def batch_loss(model, features, labels, targets, lesion, weights, config, device):
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
            cls = weighted_mean(F.cross_entropy(logits, targets, reduction="none"), weights)
        loss = loss + config.classification_weight * cls
        cls_value = cls.item()
        if lesion is not None:
            lesion = lesion.to(device)
            has = lesion.any(1)
            if has.any():
                on_lesion = (scores[has] * lesion[has]).sum(1)
                grounding = weighted_mean(torch.log(on_lesion + 1e-6),
                                  None if weights is None else weights[has])
                loss = loss - config.grounding_weight * grounding
    return loss, gen.item(), cls_value


def warn_if_head_at_chance(history: list[dict], targets: torch.Tensor,
                            weights: torch.Tensor | None, steps: int, stopper=None) -> None:
    """Warn when the stage-1 head is no better than chance.

    With a validation split (``stopper``, an :class:`~neural_sk.models.validation.EarlyStopping`
    that evaluated at least one epoch): when the kept epoch's validation AUC is below what a
    head without any signal exceeds 5% of the time on that many studies. Without one (or with
    one too small to tell): when the last epoch's training loss is above 90% of a constant
    guess's (the class entropy).
    """
    if not history:
        return
    advice = ("Patch scores from it are not meaningful; train longer (more epochs or a smaller "
              "batch_size) or on more studies.")
    bound = math.nan if stopper is None else auc_chance_bound(stopper.targets)
    # A split too small to tell (the bound reaches 1: two or three studies) falls back on the
    # training loss rather than warning on every tiny fit.
    if stopper is not None and stopper.best_epoch >= 0 and bound < 1:
        if not stopper.best_auc > bound:  # NaN (one class) never passes
            warnings.warn(
                f"the stage-1 classification head is no better than chance on its validation "
                f"split: AUC {stopper.best_auc:.3f} on {len(stopper.targets)} held-out studies "
                f"(best epoch {stopper.best_epoch + 1}), where a head without signal reaches "
                f"{bound:.3f} 5% of the time; after {steps} batches on {len(targets)} studies. "
                + advice, UserWarning, stacklevel=5,
            )
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
            f"{steps} optimisation steps on {len(targets)} studies. " + advice,
            UserWarning, stacklevel=5,
        )
