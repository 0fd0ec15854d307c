"""Training-time image changes: JPEG degradation, translation and intensity jitter.

The same augmentation works on pixels and on the cached stride-16 feature maps of a frozen
encoder prefix (a one-cell shift of the map is a 16-pixel translation of the image).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["augment_pixels", "jpeg_degrade", "shift_feature_maps"]


def jpeg_degrade(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip uint8 images [B, S, S] through JPEG at ``quality`` (the paper's setting: 10)."""
    from PIL import Image

    out = torch.empty_like(pixels)
    for i, img in enumerate(pixels.numpy()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = torch.from_numpy(np.asarray(Image.open(buf).convert("L")))
    return out


def shift_feature_maps(hidden: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Randomly translate each [C, h, w] map by up to ``max_shift`` cells, zero-filling the edge.

    Augmentation on cached stride-16 maps: a one-cell shift is a 16-pixel translation of the
    image, which the frozen convolutional prefix commutes with away from the border.
    """
    if max_shift <= 0:
        return hidden
    B = hidden.shape[0]
    shifts = torch.randint(-max_shift, max_shift + 1, (B, 2), generator=generator)
    pad = F.pad(hidden, (max_shift,) * 4)
    h, w = hidden.shape[-2:]
    out = torch.empty_like(hidden)
    for b in range(B):  # a loop over the batch, not over patches
        dy, dx = int(shifts[b, 0]), int(shifts[b, 1])
        out[b] = pad[b, :, max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]
    return out


def augment_pixels(batch: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation (up to ``max_shift`` px), contrast and brightness jitter [B, S, S]."""
    B = batch.shape[0]
    shifted = shift_feature_maps(batch[:, None], max_shift, generator)[:, 0]
    gain = 1.0 + 0.2 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    bias = 0.1 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    return (shifted * gain + bias).clamp(0, 1)
