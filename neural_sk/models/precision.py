"""Numeric precision of the torch parts: float32, bfloat16 autocast, or float16 autocast with
a gradient scaler (the scaler keeps small float16 gradients from flushing to zero)."""

from __future__ import annotations

from contextlib import nullcontext

import torch

__all__ = ["autocast", "grad_scaler", "resolve_precision"]

_DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"32"``, ``"bf16"`` or ``"16-mixed"`` for ``device``.

    ``"auto"`` is bfloat16 on a CUDA GPU that supports it and float32 elsewhere (the CPU
    stays float32 unless asked). ``"16-mixed"`` needs CUDA; bfloat16 on a GPU without it
    is an error that says so.

    Examples
    --------
    >>> import torch
    >>> resolve_precision("auto", torch.device("cpu")), resolve_precision("bf16", torch.device("cpu"))
    ('32', 'bf16')
    """
    cuda = device.type == "cuda"
    if precision == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "32"
    if precision == "16-mixed" and not cuda:
        raise ValueError(f"precision='16-mixed' needs a CUDA device (got {device.type!r}); "
                         "use 'bf16' or '32'")
    if precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ValueError("precision='bf16' was asked for but this GPU has no bfloat16; "
                         "use '16-mixed' or '32'")
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context of a resolved precision (a no-op for ``"32"``)."""
    if precision == "32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for float16 (bfloat16 has float32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
