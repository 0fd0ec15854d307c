"""The stage-1 losses: report generation, classification and lesion grounding, per batch,
and the check that the classification head learned more than the class frequencies."""

from __future__ import annotations

import math
import warnings

import torch
from torch.nn import functional as F

from .validation import auc_chance_bound

__all__ = ["FINDINGS_WEIGHT", "batch_loss", "classification_loss", "findings_loss",
           "masked_bce", "warn_if_head_at_chance", "weighted_mean"]

#: Weight of the report-guided findings loss (a mean binary cross-entropy over findings).
FINDINGS_WEIGHT = 1.0


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def findings_loss(model, features, findings, weights):
    """Binary cross-entropy of the report-guided head against the findings [B, K] read from
    the reports (zero when the model has no such head)."""
    logits = model.findings_logits(features)
    if logits is None:
        return torch.zeros((), device=features.device)
    bce = F.binary_cross_entropy_with_logits(logits, findings.to(logits.device),
                                             reduction="none").mean(1)
    return weighted_mean(bce, weights)


def masked_bce(logits: torch.Tensor, targets: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of multi-label logits [B, k], over the known entries only.

    ``targets`` [B, 2, k] holds the 0/1 targets and each entry's weight (0 where the label
    is unknown, see :func:`~neural_sk.models.targets.encode_multilabel`); ``weights`` [B]
    weigh the studies. The mean is over the weighted known entries, so a study with two
    known labels counts in two terms and one with none in no term.
    """
    y, entry = targets[:, 0].float(), targets[:, 1].float()
    if weights is not None:
        entry = entry * weights[:, None]
    bce = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="none")
    return (bce * entry).sum() / entry.sum().clamp_min(1e-12)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor,
                        weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of class indices [B], or :func:`masked_bce` of multi-label targets."""
    if targets.dim() == 3:
        return masked_bce(logits, targets, weights)
    if weights is None:
        return F.cross_entropy(logits, targets)
    return weighted_mean(F.cross_entropy(logits, targets, reduction="none"), weights)


def batch_loss(model, features, labels, targets, lesion, weights, config, device,
               findings=None):
    """Joint loss of one batch: generation + weight x classification - weight x grounding
    (+ the report-guided findings loss when ``findings`` [B, K] is given).

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
    if findings is not None:
        loss = loss + FINDINGS_WEIGHT * findings_loss(model, features, findings, weights)
    cls_value = 0.0
    if targets is not None:
        targets = targets.to(device)
        logits, scores = model.patch_scores(features, config.method, targets)
        cls = classification_loss(logits, targets, weights)
        if scores.dim() == 3:  # one map per label: the lesion column grounds their mean
            scores = scores.mean(1)
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


def _entropy(counts: torch.Tensor) -> float:
    freq = counts[counts > 0] / counts.sum()
    return float(-(freq * freq.log()).sum())


def _multilabel_entropy(targets: torch.Tensor, w: torch.Tensor) -> float:
    """The loss of a head that predicts each label's frequency: per-label binary entropies,
    averaged as :func:`masked_bce` averages its entries."""
    y, entry = targets[:, 0].double(), targets[:, 1].double() * w[:, None].double()
    mass = entry.sum(0)
    pos = ((y * entry).sum(0) / mass.clamp_min(1e-12)).clamp(1e-12, 1 - 1e-12)
    per_label = -(pos * pos.log() + (1 - pos) * (1 - pos).log())
    return float((per_label * mass).sum() / mass.sum().clamp_min(1e-12))


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
    chance = (_multilabel_entropy(targets.cpu(), w) if targets.dim() == 3
              else _entropy(torch.bincount(targets.cpu(), weights=w).float()))
    last = history[-1]["classification"]
    if last > 0.9 * chance:
        warnings.warn(
            f"the stage-1 classification head learned (nearly) nothing: its loss in the last "
            f"epoch, {last:.3f}, is at chance level ({chance:.3f}, the class entropy) after "
            f"{steps} optimisation steps on {len(targets)} studies. " + advice,
            UserWarning, stacklevel=5,
        )
