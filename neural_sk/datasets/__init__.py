"""Data sets: the embedded synthetic chest X-rays, image reading and loaders for public archives.

The archive loaders are imported on first use, so ``import neural_sk.datasets`` stays light.
:class:`~neural_sk.datasets.images.ImageReadError` and
:func:`~neural_sk.datasets.images.read_images` are importable from here too.
"""

from importlib import import_module
from typing import Any

from .images import ImageReadError, read_image, read_images  # noqa: F401
from .synthetic import make_synthetic_cxr

_LAZY = {
    "load_mimic_cxr": "neural_sk.datasets.mimic",
    "load_chexpert_plus": "neural_sk.datasets.chexpert",
    "load_iu_xray": "neural_sk.datasets.iu",
    "load_image_folder": "neural_sk.datasets.folder",
}

__all__ = ["make_synthetic_cxr", "read_image", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'neural_sk.datasets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
