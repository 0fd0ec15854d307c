"""Read chest X-ray images (PNG, JPEG, 8/16-bit, DICOM, arrays) as float32 grey levels in [0, 1].

:func:`read_image` is the one reader; :func:`read_image_uint8` gives the same image as 8-bit
grey, the form the codecs, the archive's pixel tiles and the lossless byte counts work on.

DICOM needs the ``dicom`` extra (``pip install "neural-sk[dicom]"``); pydicom is imported only
when a DICOM file is read.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

__all__ = ["ImageReadError", "read_image", "read_image_uint8", "read_images"]

ImageSource = Union[str, "os.PathLike[str]", np.ndarray]

# ITU-R BT.601 luma weights, the ones PIL uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)
_DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}


class ImageReadError(ValueError, OSError):
    """An image could not be read or is not a usable grey-level image.

    It is both a :class:`ValueError` and an :class:`OSError`, so either ``except`` catches it.

    Examples
    --------
    >>> try:
    ...     read_image("no/such/file.png")
    ... except ImageReadError as err:
    ...     print(err)
    cannot read image 'no/such/file.png': file not found
    """


def read_image(source: ImageSource) -> np.ndarray:
    """Read one image as a float32 2-D array of grey levels in [0, 1].

    Parameters
    ----------
    source : str, path-like or ndarray
        A file path (PNG, JPEG or anything else Pillow opens, 8 or 16 bits, grey, RGB or RGBA;
        or DICOM, recognised by a ``.dcm``/``.dicom`` suffix or the ``DICM`` magic bytes), or an
        array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).

    Returns
    -------
    image : ndarray of float32 of shape (H, W)
        Grey levels in [0, 1].

    Raises
    ------
    ImageReadError
        The file is missing, corrupt, truncated or unsupported, the image is empty, or an array
        holds NaN or infinite values. The message names the path.
    ImportError
        A DICOM file was given and pydicom is not installed.

    Notes
    -----
    * Colour is turned into luminance (ITU-R BT.601 weights); an alpha channel is ignored.
    * uint8 is divided by 255, uint16 by 65535. Other integer types, and floats outside [0, 1],
      are min-max scaled (a constant image becomes all zeros); floats inside [0, 1] are kept.
    * DICOM: the modality LUT (rescale slope / intercept) and the VOI LUT or window
      (window centre / width) are applied, the result is min-max scaled, and MONOCHROME1
      images are inverted so that bone is bright. Only the first frame of a multi-frame file
      is read.

    Examples
    --------
    >>> import numpy as np
    >>> img = read_image(np.array([[0, 255], [51, 102]], dtype=np.uint8))
    >>> img.dtype, img.shape, float(img.max())
    (dtype('float32'), (2, 2), 1.0)
    >>> read_image(np.zeros((2, 2, 3), dtype=np.uint16)).shape
    (2, 2)
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, "array")
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source), source)
    raise TypeError(
        f"image source must be a path (str or os.PathLike) or a numpy array, "
        f"got {type(source).__name__}"
    )


def read_image_uint8(source: ImageSource, *, keep_uint16: bool = False) -> np.ndarray:
    """Read one image as 8-bit grey levels: :func:`read_image` scaled to 0..255 and rounded.

    A 2-D uint8 array (or one of shape (H, W, 1)) is returned as it is, without a copy, so
    images that are already 8-bit grey are never re-quantised.

    Parameters
    ----------
    source : str, path-like or ndarray
        Anything :func:`read_image` reads.
    keep_uint16 : bool, default=False
        Return a 2-D uint16 array as it is too (for lossless 16-bit storage) instead of
        scaling it down to 8 bits.

    Returns
    -------
    image : ndarray of uint8 (or uint16 with ``keep_uint16``) of shape (H, W)
        Grey levels.

    Raises
    ------
    ImageReadError
        As :func:`read_image`.

    Examples
    --------
    >>> import numpy as np
    >>> read_image_uint8(np.array([[0.0, 0.5], [0.999, 1.0]]))
    array([[  0, 128],
           [255, 255]], dtype=uint8)
    >>> read_image_uint8(np.full((2, 2), 1000, dtype=np.uint16), keep_uint16=True).dtype
    dtype('uint16')
    """
    if isinstance(source, np.ndarray):
        arr = source[:, :, 0] if source.ndim == 3 and source.shape[2] == 1 else source
        if arr.ndim == 2 and (arr.dtype == np.uint8 or (keep_uint16 and arr.dtype == np.uint16)):
            return arr
    return np.round(read_image(source) * 255.0).astype(np.uint8)


def read_images(sources: Sequence[ImageSource], *,
                index: Sequence[Any] | None = None) -> list[np.ndarray]:
    """Read several images with :func:`read_image`; an error names the failing row.

    Parameters
    ----------
    sources : sequence of str, path-like or ndarray
        The images.
    index : sequence, optional
        Row labels used in error messages (default: the positions 0..n-1).

    Returns
    -------
    images : list of ndarray of float32
        One (H, W) array per source, in order.

    Raises
    ------
    ImageReadError
        With the row's label and the path in the message.

    Examples
    --------
    >>> import numpy as np
    >>> [im.shape for im in read_images([np.zeros((4, 5), np.uint8), np.ones((3, 3))])]
    [(4, 5), (3, 3)]
    >>> try:
    ...     read_images([np.zeros((2, 2)), "missing.png"], index=["a", "b"])
    ... except ImageReadError as err:
    ...     print(err)
    image of row 'b': cannot read image 'missing.png': file not found
    """
    if isinstance(sources, (str, os.PathLike, np.ndarray)) and not (
        isinstance(sources, np.ndarray) and sources.dtype == object
    ):
        raise TypeError("sources must be a sequence of images; use read_image for one image")
    sources = list(sources)
    if index is not None and len(index) != len(sources):
        raise ValueError(f"index has {len(index)} labels for {len(sources)} sources")
    out = []
    for i, source in enumerate(sources):
        row = i if index is None else index[i]
        try:
            out.append(read_image(source))
        except (ImageReadError, TypeError) as exc:
            raise type(exc)(f"image of row {row!r}: {exc}") from exc
    return out


# --------------------------------------------------------------------------------------------


def _from_array(arr: np.ndarray, what: str) -> np.ndarray:
    """Turn a (H, W[, C]) array into float32 grey levels in [0, 1]; ``what`` names it in errors."""
    if arr.ndim == 3 and arr.shape[2] in (1, 2, 3, 4):
        # 2 = grey + alpha, 4 = RGB + alpha: alpha is dropped.
        arr = arr[..., 0] if arr.shape[2] <= 2 else arr[..., :3]
    elif arr.ndim != 2:
        raise ImageReadError(
            f"{what} has shape {arr.shape}; expected (H, W) or (H, W, C) with C in 1..4"
        )
    if arr.size == 0 or 0 in arr.shape[:2]:
        raise ImageReadError(f"{what} is empty (shape {arr.shape})")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ImageReadError(f"{what} has unsupported dtype {arr.dtype}")
    if arr.ndim == 3:
        if np.issubdtype(arr.dtype, np.floating):
            _check_finite(arr, what)
        # Luminance in float64 keeps the input's scale, so the dtype's rule still applies.
        grey = arr.astype(np.float64) @ _LUMA
        if arr.dtype == np.uint8:
            return (grey / 255.0).astype(np.float32)
        if arr.dtype == np.uint16:
            return (grey / 65535.0).astype(np.float32)
        if np.issubdtype(arr.dtype, np.integer):
            return _minmax(grey)
        arr = grey
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(arr.dtype, np.integer):
        return _minmax(arr)
    _check_finite(arr, what)
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= -1e-6 and hi <= 1.0 + 1e-6:
        return np.clip(arr, 0.0, 1.0).astype(np.float32)
    return _minmax(arr)


def _check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        raise ImageReadError(
            f"{what} holds non-finite values ({n_nan} NaN, {n_inf} infinite); "
            "fill or mask them before reading"
        )


def _minmax(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return ((arr - lo) / (hi - lo)).astype(np.float32)


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def _read_path(path: Path, original: Any) -> np.ndarray:
    shown = repr(str(original))
    if not path.exists():
        raise ImageReadError(f"cannot read image {shown}: file not found")
    if path.is_dir():
        raise ImageReadError(f"cannot read image {shown}: it is a directory")
    try:
        dicom = _is_dicom(path)
    except OSError as exc:
        raise ImageReadError(f"cannot read image {shown}: {exc}") from exc
    if dicom:
        return _read_dicom(path, shown)
    return _read_pil(path, shown)


def _read_pil(path: Path, shown: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            # load() decodes the whole file, so truncated data fails here and not later.
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                mode = im.mode
            elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("L" if mode == "1" else "RGB")
                mode = im.mode
            arr = np.asarray(im)
    except UnidentifiedImageError as exc:
        raise ImageReadError(
            f"cannot read image {shown}: not an image format Pillow recognises "
            "(PNG, JPEG, TIFF, BMP ...) nor DICOM"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(
            f"cannot read image {shown}: corrupt or truncated file ({exc})"
        ) from exc
    if mode.startswith("I;16"):
        arr = arr.astype(np.uint16)
    elif mode == "I":
        # 32-bit integer mode: 16-bit PNGs open this way in some Pillow versions.
        if arr.size and arr.min() >= 0 and arr.max() <= 65535:
            arr = arr.astype(np.uint16)
    elif mode == "LA":
        arr = arr[..., 0]
    return _from_array(arr, f"image {shown}")


def _import_pydicom():
    try:
        import pydicom  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            'reading DICOM files needs pydicom, which comes with the "dicom" extra: '
            'pip install "neural-sk[dicom]"'
        ) from exc
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pydicom < 3
        from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
    return pydicom, apply_modality_lut, apply_voi_lut


def _read_dicom(path: Path, shown: str) -> np.ndarray:
    pydicom, apply_modality_lut, apply_voi_lut = _import_pydicom()
    from pydicom.errors import InvalidDicomError

    try:
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            # Some writers leave out the 128-byte preamble; the suffix said DICOM, so insist.
            ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # pydicom raises many types for a bad file
        raise ImageReadError(f"cannot read DICOM {shown}: {exc}") from exc
    if "PixelData" not in ds:
        raise ImageReadError(f"cannot read DICOM {shown}: it holds no pixel data")
    try:
        arr = ds.pixel_array
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "unknown")
        raise ImageReadError(
            f"cannot decode the pixels of DICOM {shown} (transfer syntax {syntax}): {exc}. "
            "Compressed DICOM may need a decoder plugin such as pylibjpeg"
        ) from exc
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if n_frames > 1:
        warnings.warn(f"DICOM {shown} has {n_frames} frames; reading the first", stacklevel=3)
        arr = arr[0]
    if samples > 1:
        return _from_array(np.asarray(arr), f"DICOM {shown}")
    if arr.size == 0:
        raise ImageReadError(f"DICOM {shown} is empty (shape {arr.shape})")
    try:
        out = apply_modality_lut(arr, ds)
        out = apply_voi_lut(np.asarray(out), ds, index=0)
    except Exception as exc:
        raise ImageReadError(f"cannot apply the LUTs of DICOM {shown}: {exc}") from exc
    out = np.asarray(out, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ImageReadError(f"DICOM {shown} holds non-finite pixel values")
    img = _minmax(out)
    if str(getattr(ds, "PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        # MONOCHROME1: the lowest value is displayed white.
        img = np.float32(1.0) - img
    return img
