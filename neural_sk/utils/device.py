"""Device choice and random seeds for the torch parts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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
