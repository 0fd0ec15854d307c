"""Early stopping for the stage-1 fit: a stratified validation split, the head's loss and AUC
on it once per epoch, and the best epoch's weights kept in memory to be restored."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["EarlyStopping", "auc_chance_bound", "rank_auc", "validation_split"]


def validation_split(targets: torch.Tensor, fraction: float | None,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Stratified (train, validation) indices, or None when there is nothing to split.

    Each class gives ``ceil(fraction x its count)`` studies to validation, and keeps at least
    one for training. None when ``fraction`` is None or 0, or when a class has fewer than two
    studies (no split could hold it on both sides).

    Examples
    --------
    >>> targets = torch.tensor([0] * 6 + [1] * 4)
    >>> train, val = validation_split(targets, 0.2, torch.Generator().manual_seed(0))
    >>> len(train), len(val), int(targets[val].sum())
    (7, 3, 1)
    """
    if not fraction:
        return None
    counts = torch.bincount(targets)
    counts = counts[counts > 0]
    if len(counts) < 2 or int(counts.min()) < 2:
        return None
    train, val = [], []
    for cls in torch.unique(targets):
        members = torch.nonzero(targets == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        k = min(max(math.ceil(fraction * len(members)), 1), len(members) - 1)
        val.append(members[:k])
        train.append(members[k:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def rank_auc(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """ROC AUC of class probabilities [n, C] against class indices [n] (ties count half).

    Two classes: the AUC of the positive class's score; more: the mean one-vs-rest AUC over
    the classes present. NaN when only one class is present.

    Examples
    --------
    >>> rank_auc(torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]]), torch.tensor([0, 1, 0]))
    0.5
    """
    present = torch.unique(targets)
    if len(present) < 2:
        return float("nan")
    classes = [1] if scores.shape[1] == 2 else present.tolist()
    values = []
    for cls in classes:
        pos = scores[targets == cls, cls].double()
        neg = scores[targets != cls, cls].double()
        if len(pos) and len(neg):
            diff = pos[:, None] - neg[None, :]
            values.append(float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean()))
    return sum(values) / len(values) if values else float("nan")


def auc_chance_bound(targets: torch.Tensor, z: float = 1.645) -> float:
    """The AUC a head without any signal exceeds only 5% of the time on these ``targets``.

    Under no signal the AUC of n1 positives against n0 negatives has mean 0.5 and standard
    deviation sqrt((n0 + n1 + 1) / (12 n0 n1)) (Mann-Whitney); with few validation studies a
    useless head often scores 0.6 or 0.7, so "better than chance" needs this margin.
    """
    counts = torch.bincount(targets)
    n1 = int(counts.min()) if len(counts) else 0
    n0 = int(counts.sum()) - n1
    if n0 == 0 or n1 == 0:
        return float("nan")
    return 0.5 + z * math.sqrt((n0 + n1 + 1) / (12 * n0 * n1))


class EarlyStopping:
    """Evaluate the head on the validation studies each epoch; keep the best epoch's weights.

    The best epoch is the one with the lowest validation classification loss (smoother than
    the AUC on a few dozen studies, where many epochs tie at 1.0); ``metric="auc"`` picks the
    highest AUC, ties going to the lower loss (kept for ablations: on 160 synthetic studies
    it kept worse epochs than the loss, see ``benchmarks/results/bench_few_studies.json``).

    Parameters
    ----------
    features : callable
        ``features(idx)`` -> patch features [B, P, d] of validation studies ``idx``, without
        augmentation, on the training device.
    targets : Tensor [n_val]
        Class indices of the validation studies.
    n_iter_no_change : int or None
        Stop after this many epochs without improvement; None trains every epoch (and still
        restores the best).
    batch_size : int
    tol : float
        Smallest fall of the validation loss that counts as better.
    metric : {"loss", "auc"}
    """

    def __init__(self, features, targets: torch.Tensor, n_iter_no_change: int | None,
                 batch_size: int, tol: float = 1e-4, metric: str = "loss"):
        self.metric = metric
        self.features = features
        self.targets = targets
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.tol = tol
        self.best_loss = math.inf
        self.best_epoch = -1
        self.best_auc = float("nan")
        self.best_state: dict | None = None
        self.epochs_without_improvement = 0

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        """The head's ``val_loss`` (cross-entropy) and ``val_auc`` on the validation studies."""
        was_training = model.training
        model.eval()
        probs, losses = [], []
        for start in range(0, len(self.targets), self.batch_size):
            idx = torch.arange(start, min(start + self.batch_size, len(self.targets)))
            logits = model.head(self.features(idx))[0].float().cpu()
            losses.append(F.cross_entropy(logits, self.targets[idx], reduction="sum"))
            probs.append(logits.softmax(-1))
        model.train(was_training)
        return {"val_loss": float(sum(losses)) / len(self.targets),
                "val_auc": rank_auc(torch.cat(probs), self.targets)}

    def update(self, model, epoch: int) -> tuple[dict, bool]:
        """Evaluate after ``epoch``; keep the weights if best. Returns (scores, stop now)."""
        scores = self.evaluate(model)
        if self._better(scores):
            self.best_loss, self.best_auc = scores["val_loss"], scores["val_auc"]
            self.best_epoch = epoch
            self.best_state = {k: v.detach().to("cpu", copy=True)
                               for k, v in model.state_dict().items()}
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        patience = self.n_iter_no_change
        return scores, patience is not None and self.epochs_without_improvement >= patience

    def _better(self, scores: dict) -> bool:
        """Lower loss; or with ``metric="auc"``, higher AUC and, at the same AUC, lower loss."""
        lower = scores["val_loss"] < self.best_loss - self.tol
        if self.metric != "auc" or math.isnan(scores["val_auc"]):
            return lower
        if self.best_epoch < 0 or math.isnan(self.best_auc):
            return True
        return scores["val_auc"] > self.best_auc + 1e-9 or (
            abs(scores["val_auc"] - self.best_auc) <= 1e-9 and lower)

    def restore_best(self, model) -> None:
        """Load the best epoch's weights into ``model`` (nothing when no epoch was evaluated)."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
