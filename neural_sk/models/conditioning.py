"""Extra memory tokens that tell the report decoder what the image-side heads found.

Left alone, a small decoder learns the reports' language and little of the image: it writes
the commonest normal report whatever the image shows. These modules add a few tokens to the
memory the decoder cross-attends to, each a summary of the projected patches (so it carries
the learned position embedding of the patches it pools: where) plus an embedding of a
probability (what):

* :class:`HeadConditioner` reads the classification head: one token pools the patches by
  the head's attention weights, one embeds its class probabilities.
* :class:`FindingsConditioner` is a report-guided head: one attention map and one
  present / absent logit per finding in :data:`FINDINGS`, trained against the findings the
  labeler reads from each training report (:func:`report_findings`), one token per finding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["FINDINGS", "FindingsConditioner", "HeadConditioner", "report_findings"]


def _findings() -> tuple[str, ...]:
    from ..text import OBSERVATIONS

    return tuple(o for o in OBSERVATIONS if o != "no-finding")


#: The findings the report-guided head predicts (the labeler's observations; "no-finding" is
#: derived from the others, not seen).
FINDINGS: tuple[str, ...] = _findings()


def report_findings(reports: Sequence[str], entities: Sequence[list] | None = None) -> torch.Tensor:
    """[n, len(FINDINGS)] float: 1 where the report states the finding as present.

    ``entities`` (:func:`neural_sk.text.extract_entities` of ``reports``) saves reading the
    reports again where the caller already has them.

    Examples
    --------
    >>> t = report_findings(["Right lower lobe pneumonia.", "No pneumonia."])
    >>> int(t[0, FINDINGS.index("pneumonia")]), int(t[1, FINDINGS.index("pneumonia")])
    (1, 0)
    """
    from ..text import extract_entities

    if entities is None:
        entities = extract_entities(list(reports))
    column = {name: j for j, name in enumerate(FINDINGS)}
    out = torch.zeros((len(entities), len(FINDINGS)))
    for i, mentions in enumerate(entities):
        for e in mentions:
            if e.kind == "finding" and e.status == "present" and e.concept in column:
                out[i, column[e.concept]] = 1.0
    return out


class HeadConditioner(nn.Module):
    """Two tokens from the classification head: its attended patches and its probabilities.

    The head's outputs are detached: the report loss must not move the patch ranking.
    """

    def __init__(self, width: int, n_classes: int):
        super().__init__()
        self.kind = nn.Parameter(torch.randn(2, width) * 0.02)
        self.probabilities = nn.Linear(n_classes, width)

    def forward(self, head: nn.Module, features: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """Patch features [B, P, d] and memory [B, P, w] -> tokens [B, 2, w]."""
        logits, weights = head(features)
        logits = logits.detach().float()
        if weights.dim() == 3:  # multi-label head: one map per label [B, k, P], sigmoid outputs
            weights, probabilities = weights.mean(1), logits.sigmoid()
        else:
            probabilities = logits.softmax(-1)
        where = torch.einsum("bp,bpw->bw", weights.detach().to(mem.dtype), mem)
        what = self.probabilities(probabilities.to(mem.dtype))
        return torch.stack([where, what], 1) + self.kind


class FindingsConditioner(nn.Module):
    """Report-guided head: per finding, gated attention over the patches and a logit.

    Parameters
    ----------
    in_dim : int
        Width of the encoder's patch features.
    width : int
        Width of the decoder's memory.
    n_findings : int
        Number of findings (one attention map, logit and memory token each).
    hidden : int
        Width of the gated attention.
    """

    def __init__(self, in_dim: int, width: int, n_findings: int, hidden: int = 128):
        super().__init__()
        self.V = nn.Linear(in_dim, hidden)
        self.U = nn.Linear(in_dim, hidden)
        self.w = nn.Linear(hidden, n_findings)
        self.weight = nn.Parameter(torch.randn(n_findings, in_dim) * in_dim ** -0.5)
        self.bias = nn.Parameter(torch.zeros(n_findings))
        self.kind = nn.Parameter(torch.randn(n_findings, width) * 0.02)
        self.present = nn.Parameter(torch.randn(n_findings, width) * 0.02)

    def attend(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch features [B, P, d] -> (logits [B, K], attention [B, P, K], softmax over P)."""
        attention = self.w(torch.tanh(self.V(features)) * torch.sigmoid(self.U(features)))
        attention = attention.float().softmax(1)
        pooled = torch.einsum("bpk,bpd->bkd", attention, features.float())
        return (pooled * self.weight).sum(-1) + self.bias, attention

    def forward(self, features: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """Patch features [B, P, d] and memory [B, P, w] -> tokens [B, K, w].

        A token pools the memory by its finding's attention (trained by both the findings
        and the report loss, so it learns where) and adds the finding's embedding scaled by
        its detached probability (what the findings loss alone decides).
        """
        logits, attention = self.attend(features)
        where = torch.einsum("bpk,bpw->bkw", attention.to(mem.dtype), mem)
        present = logits.detach().sigmoid()[..., None].to(mem.dtype) * self.present
        return where + self.kind + present
