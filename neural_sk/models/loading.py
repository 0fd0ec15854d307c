"""Streaming studies into the model: images decoded (and augmented) in DataLoader workers.

A :class:`StudyImages` dataset reads one study's image per item, so nothing holds the whole
archive; :class:`BatchStream` runs it through a ``torch.utils.data.DataLoader`` in the order
the caller sets for each pass. Randomness never depends on the number of workers: the caller
draws one seed per pass and every study's augmentation draws from its own generator,
seeded from that seed and the study's position. A bad image comes back as an
:class:`ImageFailure` (its error's type and message, which always pickle, unlike some
exceptions), so the caller can record it for that study (never drop it) or raise naming
the row.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import augment_pixels, jpeg_degrade, shift_feature_maps
from .encoders import images_to_tensor

__all__ = ["BatchStream", "FeatureRows", "ImageFailure", "StudyImages", "consecutive", "image_error",
           "raise_image_error", "resolve_num_workers", "sample_generator"]

class ImageFailure(NamedTuple):
    """Why a study's image could not be read: the error's type name and message."""

    kind: str
    message: str


# Keys are (position, seed): seed None means "no augmentation" (reading, scoring).
Key = tuple[int, "int | None"]


def resolve_num_workers(num_workers: int | str, sources: Sequence, batch_size: int,
                        device: torch.device | None = None) -> int:
    """Worker processes for ``sources``: ``"auto"`` gives min(4, CPUs - 1) for image paths
    when the model runs on an accelerator.

    With the model on the CPU, "auto" reads in the calling process: the model uses every
    core, so workers only compete for them, and forking a process that holds a model costs
    about a second of copy-on-write per call (measured: 1.6 s without workers, 2.4-4.0 s
    with one, for 256 studies on 2 cores; a read-ahead thread was slower too, 2.8 s,
    probably its own OpenMP team competing with the model's). In-memory
    arrays are read in the calling process too (handing them to workers would copy them),
    and so are fewer than four batches (e.g. ``compress``, which scores one small batch at
    a time) and anything inside a daemon process (a pool's worker may not start any).

    Examples
    --------
    >>> import numpy as np
    >>> resolve_num_workers("auto", [np.zeros((4, 4))] * 64, 16)
    0
    >>> resolve_num_workers("auto", ["a.png"] * 64, 16, torch.device("cpu"))
    0
    >>> resolve_num_workers(3, ["a.png"], 16)
    3
    """
    if num_workers != "auto":
        return int(num_workers)
    if ((device is not None and device.type == "cpu") or len(sources) < 4 * batch_size
            or multiprocessing.current_process().daemon
            or not all(isinstance(s, (str, os.PathLike)) for s in sources)):
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cpus or 1) - 1))


def sample_generator(seed: int, position: int) -> torch.Generator:
    """The generator of one study in one pass: a function of the pass's seed and the position,
    so the same seed gives the same numbers in any worker, with any number of workers."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(position)) % (2**63 - 1))


class StudyImages(Dataset):
    """One study's image per item: ``(position, uint8 [S, S], ImageFailure or None)``.

    Parameters
    ----------
    sources : sequence of ndarray or path
    image_size : int
        Side every image is resized to.
    jpeg_quality : int or None
        JPEG-degrade every image at this quality (training only).
    max_shift : int
        Largest translation, in pixels, of the augmentation applied to keys with a seed
        (with intensity jitter); 0 turns it off.
    """

    def __init__(self, sources: Sequence, image_size: int, *, jpeg_quality: int | None = None,
                 max_shift: int = 0):
        self.sources = list(sources)
        self.image_size = int(image_size)
        self.jpeg_quality = jpeg_quality
        self.max_shift = int(max_shift)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, key: Key):
        from ..datasets.images import read_image

        position, seed = key
        try:
            image = read_image(self.sources[position])
        except Exception as exc:  # handed to the caller, which records or raises per row
            blank = torch.zeros((self.image_size, self.image_size), dtype=torch.uint8)
            return position, blank, ImageFailure(type(exc).__name__, str(exc))
        pixels = images_to_tensor([image], self.image_size)
        if self.jpeg_quality is not None:
            pixels = jpeg_degrade(pixels, self.jpeg_quality)
        if seed is not None and self.max_shift > 0:
            moved = augment_pixels(pixels.float() / 255.0, self.max_shift,
                                   sample_generator(seed, position))
            # Back to uint8: a quarter of the bytes between processes and to the GPU.
            pixels = (moved * 255.0 + 0.5).to(torch.uint8)
        return position, pixels[0], None


class FeatureRows(Dataset):
    """Rows of a float16 array on disk ([n, *shape], C order), one study per item.

    Reads use the file, not a memory map, so the rows read do not stay in the process's
    resident memory; each process opens its own handle. Keys with a seed shift the
    [C, h, w] map by up to ``max_shift`` cells (the cached-prefix augmentation).
    """

    def __init__(self, path: str, shape: Sequence[int], n: int, *, max_shift: int = 0):
        self.path = str(path)
        self.shape = tuple(int(s) for s in shape)
        self.n = int(n)
        self.max_shift = int(max_shift)
        self._row_bytes = int(np.prod(self.shape)) * 2
        self._handle: Any = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self.n

    def __getstate__(self):
        return {**self.__dict__, "_handle": None, "_pid": None}

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __getitem__(self, key: Key):
        position, seed = key
        if self._pid != os.getpid():  # a forked worker must not share the parent's offset
            self._handle, self._pid = open(self.path, "rb"), os.getpid()
        self._handle.seek(position * self._row_bytes)
        data = self._handle.read(self._row_bytes)
        row = torch.from_numpy(np.frombuffer(data, dtype=np.float16).copy()).view(self.shape)
        if seed is not None and self.max_shift > 0:
            row = shift_feature_maps(row[None], self.max_shift, sample_generator(seed, position))[0]
        return position, row, None


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor, list]:
    positions = torch.tensor([item[0] for item in items], dtype=torch.long)
    return positions, torch.stack([item[1] for item in items]), [item[2] for item in items]


class _SetBatches:
    """A batch sampler whose batches the caller sets before each pass (workers can persist)."""

    def __init__(self):
        self.batches: list[list[Key]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class BatchStream:
    """Batches of a dataset in a caller-given order, decoded by ``num_workers`` processes.

    Parameters
    ----------
    dataset : StudyImages or FeatureRows
    num_workers : int
        0 reads in the calling process.
    pin_memory : bool
        Page-locked batches, for asynchronous copies to a CUDA device.
    seed : int
        Seeds the DataLoader's own generator (so the global torch stream is left alone).
    """

    def __init__(self, dataset: Dataset, num_workers: int, *, pin_memory: bool = False,
                 seed: int = 0):
        self._batches = _SetBatches()
        self.loader = DataLoader(
            dataset, batch_sampler=self._batches, num_workers=num_workers,
            collate_fn=_collate, pin_memory=pin_memory,
            persistent_workers=num_workers > 0,
            generator=torch.Generator().manual_seed(int(seed)),
        )

    def run(self, positions: Iterable[torch.Tensor | Sequence[int]], *, seed: int | None = None,
            desc: str | None = None) -> Iterable[tuple[torch.Tensor, torch.Tensor, list]]:
        """``(positions, batch, failures)`` for each batch of ``positions``, in order.

        ``seed`` (None: no augmentation) is the pass's seed; ``desc`` shows a progress bar
        (the returned tqdm then takes ``set_postfix``).
        """
        self._batches.batches = [[(int(p), seed) for p in batch] for batch in positions]
        if desc is None:
            return self.loader
        from tqdm.auto import tqdm

        return tqdm(self.loader, desc=desc, total=len(self._batches), unit="batch")

    def close(self) -> None:
        """Stop the workers (they persist between passes otherwise)."""
        dataset = self.loader.dataset
        # Dropping the loader drops its persistent iterator, which shuts the workers down.
        self.loader = None
        close = getattr(dataset, "close", None)
        if close is not None:
            close()


def consecutive(n: int, batch_size: int) -> list[range]:
    """Positions 0..n-1 in consecutive batches."""
    return [range(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def image_error(failure: ImageFailure, row, source) -> str:
    """The message recorded for a study whose image could not be read."""
    where = f" ({source})" if isinstance(source, (str, os.PathLike)) else ""
    return f"row {row!r}{where}: {failure.kind}: {failure.message}"


def raise_image_error(failure: ImageFailure, row) -> None:
    """Raise an unreadable image's error naming its row (as ``read_images`` does)."""
    from ..datasets.images import ImageReadError

    kinds = {"ImageReadError": ImageReadError, "TypeError": TypeError,
             "ImportError": ImportError, "ValueError": ValueError, "OSError": OSError}
    message = f"image of row {row!r}: {failure.message}"
    if failure.kind in kinds:
        raise kinds[failure.kind](message)
    raise RuntimeError(f"image of row {row!r}: {failure.kind}: {failure.message}")
