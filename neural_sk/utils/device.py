"""Device choice and random seeds for the torch parts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral

import numpy as np


def _mps_built(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_built()


def resolve_device(device: str = "auto") -> "torch.device":  # noqa: F821
    """Return a torch device: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU.

    Asking for a device this machine lacks is an error that says what is missing (the torch
    build, or the hardware), never a silent fall-back.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_built(torch) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'auto', 'cpu', 'cuda[:N]' or 'mps'"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        missing = ("this torch build has no CUDA (a CPU-only wheel)" if torch.version.cuda is None
                   else "CUDA is not available (no GPU visible to torch)")
        raise ValueError(f"device={device!r} was asked for but {missing}")
    if resolved.type == "mps" and not (_mps_built(torch) and torch.backends.mps.is_available()):
        missing = ("this torch build has no MPS" if not _mps_built(torch)
                   else "MPS is not available on this machine (it needs macOS 12.3+ on Apple silicon)")
        raise ValueError(f"device={device!r} was asked for but {missing}")
    return resolved


def resolve_seed(random_state: "int | np.random.RandomState | np.random.Generator | None") -> int:
    """An integer seed from ``random_state``, without touching any global generator.

    An int is returned as is; a ``RandomState`` or ``Generator`` gives its next draw (as
    scikit-learn's estimators use one); None draws fresh entropy from the operating system.

    Examples
    --------
    >>> resolve_seed(7)
    7
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise ValueError(f"random_state must be an int, a RandomState, a Generator or None, "
                     f"got {random_state!r}")


@contextmanager
def torch_seeded(seed: int, device: "torch.device | None" = None) -> Iterator[None]:  # noqa: F821
    """Run torch code that draws from the default generators, seeded from ``seed``.

    Layer initialisation and dropout take no generator argument: they draw from torch's
    global generator. Inside this block that generator (and the one of ``device``, if it is
    a CUDA GPU) is seeded from ``seed``; on leaving, the caller's states are restored, so the
    user's own torch stream is unchanged. (MPS has no forkable generator: dropout there is
    left unseeded rather than reseeding the user's stream.)
    """
    import torch

    devices = []
    if device is not None and device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def seed_everything(random_state: "int | np.random.RandomState | None") -> int:
    """Seed Python, NumPy and torch from ``random_state`` and return the integer seed used.

    Deprecated inside neural_sk: estimators use :func:`torch_seeded` and local generators,
    which leave the global state alone.

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
