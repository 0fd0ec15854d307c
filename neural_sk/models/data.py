"""Studies to model input: images as uint8 tensors (batch by batch, decoded ahead in
DataLoader workers), and reports as the text the model reads. A bad study raises naming its
row, or is recorded."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from .loading import (BatchStream, StudyImages, consecutive, image_error, raise_image_error,
                      resolve_num_workers)

__all__ = ["image_batches", "read_reports", "report_labels"]


def read_reports(reports: Sequence, *, index: Sequence | None = None, allow_empty: bool = False,
                 errors: list | None = None, offset: int = 0) -> list[str]:
    """Check reports and keep what the image shows (:func:`neural_sk.text.observation_text`).

    The clinical-context sections (indication, history, comparison, technique) are left out:
    the referral is not what the image shows, and its "evaluate for pneumonia" would leak
    the label. A non-string report, or an empty one unless ``allow_empty``, raises naming its
    row; with an ``errors`` list it is recorded at ``errors[offset + k]`` (unless that study
    already has an error) and read as ``""``.
    """
    from ..text.sections import observation_text
    from ..utils.validation import check_reports

    index = list(range(len(reports))) if index is None else list(index)
    out = []
    for k, (row, report) in enumerate(zip(index, reports)):
        try:
            checked = check_reports([report], allow_empty=allow_empty, index=[row])[0]
            out.append(observation_text(checked))
        except (TypeError, ValueError) as exc:
            if errors is None:
                raise
            errors[offset + k] = errors[offset + k] or f"{type(exc).__name__}: {exc}"
            out.append("")
    return out


def report_labels(tokenizer, reports: Sequence[str], max_tokens: int, *,
                  warn_rows: Sequence | None = None, chunk: int = 1024) -> torch.Tensor:
    """Token ids [n, T] of the reports (-100 at padding; T the longest, at most ``max_tokens``).

    :func:`~neural_sk.models.vlm.encode_reports` a chunk at a time: the tokenizer's
    per-report objects (about 20 kB a report) then never exist for every study at once, so
    a fit's peak memory does not grow with them. One warning names the reports cut at
    ``max_tokens`` (rows from ``warn_rows``), as ``encode_reports`` does.
    """
    from .vlm import encode_reports

    reports = list(reports)
    parts, long_rows = [], []
    for start in range(0, len(reports), chunk):
        labels, _, mask = encode_reports(tokenizer, reports[start : start + chunk], max_tokens)
        parts.append(labels)
        if warn_rows is None:
            continue
        # Only reports that fill the limit can have been cut: tokenise those again whole.
        at_limit = (start + np.flatnonzero(mask.sum(1).numpy() >= max_tokens)).tolist()
        full = tokenizer([reports[i] for i in at_limit], truncation=False)["input_ids"] if at_limit else []
        long_rows += [warn_rows[i] for i, ids in zip(at_limit, full) if len(ids) > max_tokens]
    if long_rows:
        warnings.warn(
            f"{len(long_rows)} report(s) exceed max_report_tokens={max_tokens} and were "
            f"truncated (rows {long_rows[:10]}{'...' if len(long_rows) > 10 else ''})",
            stacklevel=4,
        )
    width = max((p.shape[1] for p in parts), default=0)
    out = torch.full((len(reports), width), -100, dtype=torch.long)
    start = 0
    for part in parts:
        out[start : start + len(part), : part.shape[1]] = part
        start += len(part)
    return out


def image_batches(sources: Sequence, image_size: int, batch_size: int, *,
                  index: Sequence | None = None, errors: list | None = None,
                  desc: str | None = None, num_workers: int | str = 0,
                  device: torch.device | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(start, pixels)`` for consecutive batches of images, read ahead by workers.

    Images are decoded in ``num_workers`` DataLoader worker processes (``"auto"``: see
    :func:`~neural_sk.models.loading.resolve_num_workers`) while the caller works on the
    current batch. ``index`` and ``errors`` are as in :func:`read_pixels`; ``desc`` shows a
    progress bar with that title; batches are page-locked when ``device`` is a CUDA GPU.
    """
    sources = list(sources)
    n = len(sources)
    index = list(range(n)) if index is None else list(index)
    workers = resolve_num_workers(num_workers, sources, batch_size, device)
    pin = device is not None and device.type == "cuda"
    stream = BatchStream(StudyImages(sources, image_size), workers, pin_memory=pin)
    try:
        for positions, pixels, failed in stream.run(consecutive(n, batch_size), desc=desc):
            for position, failure in zip(positions.tolist(), failed):
                if failure is None:
                    continue
                if errors is None:
                    raise_image_error(failure, index[position])
                errors[position] = image_error(failure, index[position], sources[position])
            yield int(positions[0]), pixels
    finally:
        stream.close()
