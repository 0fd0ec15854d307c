"""The built-in model presets and what goes with each: sizes, default learning rates, flags.

One table per side, so adding a preset is one entry here rather than a string compared in
several modules. Names that are not presets are local checkpoint directories.
"""

from __future__ import annotations

__all__ = [
    "ENCODER_PRESETS",
    "TEXT_PRESETS",
    "TINY_SWIN",
    "TINY_SWIN_NORMALIZATION",
    "TINY_T5",
    "default_classification_weight",
    "default_learning_rates",
    "uses_channels_last",
]

ENCODER_PRESETS = ("efficientnet-lite0", "tiny-swin")
TEXT_PRESETS = ("tiny",)

# Random-weight presets for fast tests. Patch 4 and two merges give the tiny Swin stride 16,
# the same grid as the CNN preset; its window is chosen from the image size when built.
TINY_SWIN = dict(patch_size=4, num_channels=1, embed_dim=24, depths=[1, 1, 2],
                 num_heads=[2, 2, 4], mlp_ratio=2.0, drop_path_rate=0.0)
TINY_SWIN_NORMALIZATION = ((0.5,), (0.25,))
TINY_T5 = dict(d_model=128, d_kv=32, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4,
               dropout_rate=0.1, feed_forward_proj="relu", tie_word_embeddings=True)

# Encoder rates: the ImageNet CNN's last stage fine-tunes at 3e-4, the random tiny Swin learns
# from scratch at 1e-3, a local (pretrained) checkpoint gets the paper's 2e-6.
_ENCODER_LEARNING_RATES = {"efficientnet-lite0": 3e-4, "tiny-swin": 1e-3}
_LOCAL_ENCODER_LEARNING_RATE = 2e-6
# Everything else (projection, decoder, head): 1e-3 next to a from-scratch tiny decoder or no
# decoder, the paper's 2e-5 next to a pretrained local one.
_TINY_TEXT_LEARNING_RATE = 1e-3
_LOCAL_TEXT_LEARNING_RATE = 2e-5

# Convolutional presets run faster with channels-last tensors on CPU and GPU alike.
_CHANNELS_LAST = frozenset({"efficientnet-lite0"})


def default_learning_rates(vision_model: str, text_model: str | None,
                           learning_rate: float | str = "auto",
                           encoder_learning_rate: float | str = "auto") -> tuple[float, float]:
    """Resolve ``"auto"`` learning rates for a pair of models.

    The rate of everything but the encoder is 1e-3 with the tiny decoder (or none) and 2e-5
    (the paper's) with a local one; the encoder's is 3e-4 for EfficientNet-Lite0, 1e-3 for
    the tiny Swin and 2e-6 (the paper's) for a local checkpoint.

    Parameters
    ----------
    vision_model : str
        An encoder preset or a local directory.
    text_model : str or None
        A text preset, a local directory, or None (no decoder).
    learning_rate, encoder_learning_rate : float or "auto"
        A float is returned as given.

    Returns
    -------
    (learning_rate, encoder_learning_rate) : tuple of float

    Examples
    --------
    >>> default_learning_rates("efficientnet-lite0", "tiny")
    (0.001, 0.0003)
    """
    lr = learning_rate
    if lr == "auto":
        lr = _TINY_TEXT_LEARNING_RATE if text_model in (*TEXT_PRESETS, None) else _LOCAL_TEXT_LEARNING_RATE
    enc_lr = encoder_learning_rate
    if enc_lr == "auto":
        enc_lr = _ENCODER_LEARNING_RATES.get(vision_model, _LOCAL_ENCODER_LEARNING_RATE)
    return float(lr), float(enc_lr)


# Classification-loss weight: the paper's 0.5 beside a pretrained report decoder (and with no
# decoder, where it only scales the one loss). The tiny decoder trained from scratch has a
# larger report loss whose gradients drown the head's in the shared encoder stage: at 160
# synthetic studies (600 steps, four seeds) 2.0 lifted held-out AUC from 0.78-0.87 to
# 0.80-0.90 and the top patch on the lesion from 0.51-0.61 to 0.59-0.71 of positives
# (benchmarks/results/bench_few_studies.json).
_TINY_TEXT_CLASSIFICATION_WEIGHT = 2.0
_CLASSIFICATION_WEIGHT = 0.5


def default_classification_weight(text_model: str | None,
                                  classification_weight: float | str = "auto") -> float:
    """Resolve an ``"auto"`` classification-loss weight for a text model.

    Examples
    --------
    >>> default_classification_weight("tiny"), default_classification_weight("/models/t5")
    (2.0, 0.5)
    >>> default_classification_weight("tiny", 1.0)
    1.0
    """
    if classification_weight != "auto":
        return float(classification_weight)
    if text_model in TEXT_PRESETS:
        return _TINY_TEXT_CLASSIFICATION_WEIGHT
    return _CLASSIFICATION_WEIGHT


def uses_channels_last(encoder_name: str) -> bool:
    """True for encoders whose weights and inputs are kept in channels-last memory format."""
    return encoder_name in _CHANNELS_LAST
