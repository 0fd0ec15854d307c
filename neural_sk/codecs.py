"""Lossy codecs on 8-bit grey images: encode at a setting or within a byte budget, decode.

JPEG, JPEG 2000 and WebP through Pillow, as the codec baseline
(:class:`neural_sk.baselines.CodecCompressor`) uses them. Pure functions on uint8 arrays;
reading image files is :mod:`neural_sk.datasets.images`' job.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["CODECS", "encode_image", "decode_image", "encode_within"]

# Per codec: the default quality, the allowed quality range, and the grid a byte-budget
# search walks, ordered from lowest to highest fidelity.
CODECS: dict[str, dict[str, Any]] = {
    # The paper's "resource-constrained" training setting.
    "jpeg": {"default": 10, "range": (1, 100), "grid": np.arange(1, 96)},
    # Same nominal scale as JPEG, so the two defaults are comparable settings.
    "webp": {"default": 10, "range": (0, 100), "grid": np.arange(0, 101)},
    # quality = compression ratio (raw 8-bit bytes / encoded bytes); 20:1 is where JPEG 2000
    # studies still find chest lesions detectable. Higher ratio = lower fidelity, so the
    # grid runs from high ratios down.
    "jpeg2000": {"default": 20.0, "range": (1.0, None), "grid": np.geomspace(2000.0, 1.0, 97)},
}


def encode_image(pixels: np.ndarray, codec: str, quality: float) -> bytes:
    """Encode one 8-bit grey image with a lossy codec.

    Parameters
    ----------
    pixels : ndarray of shape (H, W), uint8
        The image.
    codec : {"jpeg", "jpeg2000", "webp"}
        The codec. JPEG 2000 is written as a raw codestream (no JP2 container) with the
        irreversible 9/7 wavelet.
    quality : float
        The codec's quality, or for ``"jpeg2000"`` the compression ratio.

    Returns
    -------
    bytes
        The encoded file.

    Examples
    --------
    >>> import numpy as np
    >>> data = encode_image(np.zeros((16, 16), dtype=np.uint8), "jpeg", 50)
    >>> data[:2] == b"\\xff\\xd8"                 # the JPEG start-of-image marker
    True
    """
    from PIL import Image

    image = Image.fromarray(pixels)
    buf = io.BytesIO()
    if codec == "jpeg":
        image.save(buf, format="JPEG", quality=int(quality))
    elif codec == "webp":
        image.save(buf, format="WEBP", quality=int(quality))
    else:
        # Raw codestream (no JP2 boxes: only what a decoder needs) and the irreversible
        # 9/7 wavelet, the usual choice for lossy JPEG 2000.
        image.save(buf, format="JPEG2000", quality_mode="rates",
                   quality_layers=[float(quality)], irreversible=True, no_jp2=True)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """Decode an encoded image as 8-bit grey.

    Parameters
    ----------
    data : bytes
        An encoded image (any format Pillow reads).

    Returns
    -------
    ndarray of shape (H, W), uint8
        The decoded pixels.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((8, 8), 100, dtype=np.uint8)
    >>> int(decode_image(encode_image(flat, "webp", 90)).mean())
    100
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def encode_within(pixels: np.ndarray, codec: str, target_bytes: int) -> tuple[bytes, float, bool]:
    """Encode at the highest-fidelity grid setting of ``codec`` that fits a byte budget.

    A binary search over ``CODECS[codec]["grid"]``; sizes grow almost monotonically with
    fidelity, so this is the best fitting setting up to rare non-monotone steps.

    Parameters
    ----------
    pixels : ndarray of shape (H, W), uint8
        The image.
    codec : {"jpeg", "jpeg2000", "webp"}
        The codec.
    target_bytes : int
        The budget.

    Returns
    -------
    data : bytes
        The encoded file; the lowest-fidelity one when nothing fits.
    quality : float
        The setting used.
    fits : bool
        Whether ``len(data) <= target_bytes``.

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    >>> data, quality, fits = encode_within(noise, "jpeg", 2000)
    >>> fits and len(data) <= 2000
    True
    """
    grid = CODECS[codec]["grid"]
    lo, hi = 0, len(grid) - 1
    best: tuple[bytes, float] | None = None
    while lo <= hi:
        mid = (lo + hi) // 2
        data = encode_image(pixels, codec, grid[mid])
        if len(data) <= int(target_bytes):
            best, lo = (data, float(grid[mid])), mid + 1
        else:
            hi = mid - 1
    if best is None:
        return encode_image(pixels, codec, grid[0]), float(grid[0]), False
    return best[0], best[1], True
