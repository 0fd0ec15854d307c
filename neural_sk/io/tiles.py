"""Pixel tiles: the image under each study's kept patches, stored so a person can view it.

Each study's kept tiles are stored side by side as one PNG or JPEG strip at source
resolution; :func:`load_sparse_images` puts them back in place.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..datasets.images import read_image_uint8
from ..patches import extract_tiles, rebuild_sparse_image
from ..studies import StudySet
from .columns import Writer, read_ptr
from .format import compact_int
from .manifest import read_shards
from .shards import decode_studies

__all__ = ["add_pixels", "load_tiles", "load_sparse_images"]


def _encode_tiles(image: Any, patch_index: np.ndarray, grid_shape: tuple[int, int],
                  fmt: str, quality: int) -> tuple[bytes, tuple[int, int], tuple[int, int]]:
    """One study's kept tiles side by side in one PNG/JPEG strip."""
    from PIL import Image

    arr = read_image_uint8(image, keep_uint16=fmt == "png")
    tiles, _ = extract_tiles(arr, patch_index, grid_shape)
    k, th, tw = tiles.shape
    if k == 0:
        return b"", (int(th), int(tw)), arr.shape
    strip = np.ascontiguousarray(tiles.transpose(1, 0, 2).reshape(th, k * tw))
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(strip).save(buf, format="PNG")
    else:
        Image.fromarray(strip).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue(), (int(th), int(tw)), arr.shape


def add_pixels(w: Writer, studies: StudySet, images: Sequence[Any] | None, fmt: str,
               quality: int) -> dict:
    """Store each study's kept tiles through ``w``; returns the ``pixels`` metadata."""
    if images is None:
        raise ValueError(f"pixels={fmt!r} needs the studies' source images (images=...)")
    if studies.keep_mask is None or studies.grid_shape is None:
        raise ValueError(f"pixels={fmt!r} needs a pruned StudySet (keep_mask and grid_shape)")
    if len(images) != len(studies):
        raise ValueError(f"images has {len(images)} entries for {len(studies)} studies")
    blobs, tile_shapes, image_shapes = [], [], []
    for i, (image, keep) in enumerate(zip(images, studies.keep_mask)):
        try:
            blob, tile, shape = _encode_tiles(image, np.flatnonzero(keep), studies.grid_shape,
                                              fmt, quality)
        except Exception as exc:
            where = f" ({image})" if isinstance(image, (str, os.PathLike)) else ""
            raise type(exc)(f"pixels of study {studies.ids[i]!r}{where}: {exc}") from exc
        blobs.append(blob)
        tile_shapes.append(tile)
        image_shapes.append(shape)
    lengths = np.array([len(b) for b in blobs], dtype=np.int64)
    w.add("pixels", np.frombuffer(b"".join(blobs), dtype=np.uint8), "pixels",
          lengths.astype(np.float64))
    return {
        "format": fmt,
        "quality": int(quality) if fmt == "jpeg" else None,
        "data": "pixels",
        "ptr": w.add_ptr("pixels.ptr", lengths, "pixels"),
        "tile_shape": w.add_rows("pixels.tile_shape",
                                 compact_int(np.array(tile_shapes, np.int64).reshape(-1, 2)),
                                 "pixels"),
        "image_shape": w.add_rows("pixels.image_shape",
                                  compact_int(np.array(image_shapes, np.int64).reshape(-1, 2)),
                                  "pixels"),
    }


def load_tiles(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
    """The kept pixel tiles of every study of an archive written with ``pixels=``.

    Parameters
    ----------
    path : path, folder or list of paths
        As in :func:`load_studies`.

    Returns
    -------
    list of dict
        Per study: ``tiles`` (ndarray ``[k, th, tw]``, uint8 or uint16), ``patch_index``
        (int64 ``[k]``), ``image_shape`` (source ``(H, W)``), ``grid_shape``; pass them to
        :func:`neural_sk.plotting.rebuild_sparse_image` or ``show_pruned(None, None, grid,
        tiles=..., patch_index=..., image_shape=...)``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> img = np.arange(16, dtype=np.uint8).reshape(4, 4)
    >>> keep = np.array([[False, False, False, True]])
    >>> s = StudySet(keep_mask=keep, grid_shape=(2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, s, images=[img], pixels="png")
    >>> load_tiles(path)[0]["tiles"][0]
    array([[10, 11],
           [14, 15]], dtype=uint8)
    """
    from PIL import Image

    out = []
    for file, meta, arrays in read_shards(path):
        spec = meta.get("pixels")
        if spec is None:
            raise ValueError(f"archive {str(file)!r} holds no pixels (saved without pixels=)")
        keep = decode_studies(meta, arrays, ["keep_mask"]).keep_mask
        blob = arrays[spec["data"]].tobytes()
        ptr = read_ptr(arrays, spec["ptr"], len(blob), len(keep)).tolist()
        tile_shapes = arrays[spec["tile_shape"]].astype(np.int64)
        image_shapes = arrays[spec["image_shape"]].astype(np.int64)
        for i in range(int(meta["n_studies"])):
            index = np.flatnonzero(keep[i]).astype(np.int64)
            th, tw = (int(v) for v in tile_shapes[i])
            if ptr[i + 1] > ptr[i]:
                with Image.open(io.BytesIO(blob[ptr[i]:ptr[i + 1]])) as im:
                    strip = np.asarray(im)
                if strip.dtype == np.int32:  # 16-bit PNGs may open in mode "I"
                    strip = strip.astype(np.uint16)
                tiles = strip.reshape(th, index.size, tw).transpose(1, 0, 2)
            else:
                tiles = np.zeros((0, th, tw), dtype=np.uint8)
            out.append({"tiles": np.ascontiguousarray(tiles), "patch_index": index,
                        "image_shape": tuple(int(v) for v in image_shapes[i]),
                        "grid_shape": tuple(meta["grid_shape"])})
    return out


def load_sparse_images(path: str | os.PathLike | Sequence[str | os.PathLike], *,
                       fill: float = 0) -> list[np.ndarray]:
    """Rebuild each study's sparse image (kept tiles, the rest ``fill``) from an archive.

    Parameters
    ----------
    path : path, folder or list of paths
        An archive written with ``pixels=`` (as in :func:`load_studies`).
    fill : scalar, default=0
        Value of the pixels outside the kept patches.

    Returns
    -------
    list of ndarray
        One image per study at source resolution (uint8, or uint16 for 16-bit PNG tiles).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from neural_sk import StudySet
    >>> img = np.full((4, 4), 7, dtype=np.uint8)
    >>> s = StudySet(keep_mask=np.array([[True, False, False, False]]), grid_shape=(2, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "s.npz")
    >>> _ = save_studies(path, s, images=[img], pixels="png")
    >>> load_sparse_images(path)[0]
    array([[7, 7, 0, 0],
           [7, 7, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]], dtype=uint8)
    """
    return [rebuild_sparse_image(t["tiles"], t["patch_index"], t["grid_shape"],
                                 t["image_shape"], fill=fill) for t in load_tiles(path)]
