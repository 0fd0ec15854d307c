"""Device choice and seeding for the torch parts."""

from __future__ import annotations

import random

import numpy as np


def resolve_device(device: str = "auto") -> "torch.device":  # noqa: F821
    """Return a torch device: ``"auto"`` picks CUDA when present, else CPU.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:N]'"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return resolved


def seed_everything(random_state: "int | np.random.RandomState | None") -> int:
    """Seed Python, NumPy and torch from ``random_state`` and return the integer seed used.

    Examples
    --------
    >>> seed_everything(0)
    0
    """
    import torch
    from sklearn.utils import check_random_state

    if isinstance(random_state, (int, np.integer)):
        seed = int(random_state)
    else:
        seed = int(check_random_state(random_state).randint(0, 2**31 - 1))
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return seed
