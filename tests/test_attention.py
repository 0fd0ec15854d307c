import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from neural_sk import AttentionScorer, StudySet
from neural_sk.attention import reduce_cross_attention
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.text import observation_text

TINY = dict(vision_model="tiny-swin", image_size=64, epochs=2, batch_size=8, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_synthetic_cxr(16, image_size=64, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return AttentionScorer(**TINY).fit(X, y)


def test_transform_shapes_and_sums(fitted, data):
    X, _ = data
    out = fitted.transform(X)
    assert isinstance(out, StudySet) and len(out) == len(X)
    assert out.grid_shape == fitted.grid_shape_ == (4, 4)
    assert out.attention.shape == (16, 16) and out.attention.dtype == np.float32
    np.testing.assert_allclose(out.attention.sum(1), 1.0, rtol=1e-5)
    assert out.patch_features.shape == (16, 16, fitted.feature_dim_)
    assert out.reports == [observation_text(r) for r in X["report"]]
    assert not any("INDICATION" in r for r in out.reports)
    assert out.info["grid_shape"] == [4, 4] and len(out.info["model_hash"]) == 16
    assert [h["loss"] for h in fitted.history_] and len(fitted.history_) == 2


def test_grid_shape_follows_encoder_and_image_size(data):
    X, y = data
    scorer = AttentionScorer(**{**TINY, "image_size": 128, "epochs": 0}).fit(X[:4], y[:4])
    assert scorer.grid_shape_ == (8, 8)
    assert scorer.transform(X[:2]).attention.shape == (2, 64)


def test_reduce_cross_attention_ranks_patches_not_token_positions():
    # 3 report tokens + 2 padding positions over 16 patches; every real token looks at
    # patches 9 and 14, the padding looks elsewhere. The public code's bug would rank token
    # positions 0..2; the padding must not count either.
    cross = torch.full((1, 2, 5, 16), 0.01)
    cross[0, :, :3, 9] = 0.5
    cross[0, :, :3, 14] = 0.3
    cross[0, :, 3:, 0] = 5.0
    mask = torch.tensor([[True, True, True, False, False]])
    for token_reduce in ("mean", "max"):
        scores = reduce_cross_attention(cross, mask, token_reduce=token_reduce)
        assert scores.shape == (1, 16)
        assert torch.allclose(scores.sum(-1), torch.tensor(1.0))
        assert set(scores[0].topk(2).indices.tolist()) == {9, 14}


def test_planted_decoder_attention_gives_exactly_those_patches(data):
    X, y = data
    scorer = AttentionScorer(**{**TINY, "method": "cross_attention", "epochs": 1}).fit(X, y)
    planted = [11, 13, 15]  # beyond any token position the public code would rank

    def plant(module, inputs, output):
        out, bias, weights = output
        forced = torch.full_like(weights, 1e-4)
        forced[..., planted] = 1.0
        return out, bias, forced / forced.sum(-1, keepdim=True)

    last = scorer.model_.decoder.decoder.block[-1].layer[1].EncDecAttention
    handle = last.register_forward_hook(plant)
    try:
        out = scorer.transform(X)
    finally:
        handle.remove()
    top = np.argsort(-out.attention, axis=1)[:, :3]
    assert all(set(row) == set(planted) for row in top.tolist())


def test_same_seed_same_attention_across_two_fits(data, fitted):
    X, y = data
    again = AttentionScorer(**TINY).fit(X, y)
    np.testing.assert_array_equal(fitted.transform(X).attention, again.transform(X).attention)
    assert fitted.tokenizer_.get_vocab() == again.tokenizer_.get_vocab()
    other = AttentionScorer(**{**TINY, "random_state": 1}).fit(X, y)
    assert not np.array_equal(fitted.transform(X).attention, other.transform(X).attention)


def test_clone_params_and_pickle_round_trip(fitted, data):
    X, _ = data
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")
    copy.set_params(epochs=3)
    assert copy.epochs == 3 and fitted.epochs == 2
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.transform(X).attention, fitted.transform(X).attention)


def test_generated_reports_for_studies_without_one(fitted, data):
    X, _ = data
    blank = X.iloc[:3].copy()
    blank["report"] = ["", None, "   "]
    out = fitted.set_params(report_source="auto").transform(blank)
    assert len(out.reports) == 3 and all(isinstance(r, str) for r in out.reports)
    gen = fitted  # the same fitted model, with generated reports for every study
    gen.set_params(report_source="generated")
    try:
        out2 = gen.transform(X.drop(columns="report").iloc[:3])
    finally:
        gen.set_params(report_source="auto")
    assert out2.reports == out.reports  # greedy decoding is deterministic
    assert fitted.generate_reports(X.iloc[:3]) == out.reports


def test_token_attention_offsets_point_into_the_report(data):
    X, y = data
    scorer = AttentionScorer(**{**TINY, "keep_token_attention": True, "epochs": 1}).fit(X, y)
    out = scorer.transform(X.iloc[:2])
    for report, att, offsets in zip(out.reports, out.token_attention, out.token_offsets):
        assert att.shape == (len(offsets), 16)
        np.testing.assert_allclose(att.sum(1), 1.0, rtol=1e-5)
        words = [report[s:e].lower() for s, e in offsets]
        assert all(w.strip() for w in words)
        assert "findings" in words


def test_method_needs_labels_and_bad_params_fail_at_fit(data):
    X, y = data
    with pytest.raises(ValueError, match="needs labels"):
        AttentionScorer(**TINY).fit(X)
    with pytest.raises(ValueError, match="method"):
        AttentionScorer(**{**TINY, "method": "gradcam"}).fit(X, y)
    with pytest.raises(ValueError, match="never downloads"):
        AttentionScorer(**{**TINY, "vision_model": "microsoft/swin-base-patch4-window12-384"}).fit(X, y)


def test_unreadable_image_names_the_row(fitted, data, tmp_path):
    X, _ = data
    bad = X.iloc[:3].copy()
    missing = str(tmp_path / "nope.png")
    bad["image"] = [bad["image"].iloc[0], missing, bad["image"].iloc[2]]
    with pytest.raises(Exception, match="nope.png") as info:
        fitted.transform(bad)
    assert repr(bad.index[1]) in str(info.value)
    fitted.set_params(on_error="skip")
    try:
        out = fitted.transform(bad)
    finally:
        fitted.set_params(on_error="raise")
    assert len(out) == 3 and out.errors[0] is None and "nope.png" in out.errors[1]
    np.testing.assert_allclose(out.attention[1], 1.0 / 16)


def test_local_directory_round_trip(tmp_path, data):
    from transformers import SwinConfig, SwinModel, T5Config, T5ForConditionalGeneration

    from neural_sk.text.tokenizer import train_report_tokenizer

    X, y = data
    swin = SwinModel(SwinConfig(image_size=64, patch_size=4, num_channels=3, embed_dim=16,
                                depths=[1, 1, 1], num_heads=[1, 2, 2], window_size=4))
    swin.save_pretrained(tmp_path / "swin")
    tok = train_report_tokenizer(X["report"])
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64,
                                             num_layers=1, num_decoder_layers=1, num_heads=2,
                                             decoder_start_token_id=0))
    t5.save_pretrained(tmp_path / "t5")
    tok.save_pretrained(tmp_path / "t5")
    scorer = AttentionScorer(vision_model=str(tmp_path / "swin"), text_model=str(tmp_path / "t5"),
                             image_size=64, epochs=1, method="cross_attention", random_state=0)
    out = scorer.fit(X, y).transform(X.iloc[:2])
    assert out.grid_shape == (4, 4) and out.patch_features.shape[-1] == 64
    np.testing.assert_allclose(out.attention.sum(1), 1.0, rtol=1e-5)


def test_pretrained_preset_loads_strictly_and_recognises_a_photo():
    from sklearn.datasets import load_sample_image

    from neural_sk.models.encoders import build_encoder

    encoder = build_encoder("efficientnet-lite0", image_size=224)  # strict load inside
    assert encoder.grid_shape == (14, 14) and encoder.feature_dim == 112
    photo = torch.tensor(load_sample_image("china.jpg") / 255.0, dtype=torch.float32)
    x = torch.nn.functional.interpolate(photo.permute(2, 0, 1)[None], size=(224, 224),
                                        mode="bilinear", antialias=True)
    mean = torch.tensor(encoder.mean).view(1, 3, 1, 1)
    std = torch.tensor(encoder.std).view(1, 3, 1, 1)
    encoder.eval()
    with torch.no_grad():
        probs = encoder.imagenet_logits((x - mean) / std).softmax(-1)[0]
    # china.jpg is a Chinese temple: expect building classes (bell cote 442, boathouse 449,
    # palace 698, castle 483, monastery 663, pagoda 832...) and a confident top class.
    buildings = {442, 449, 483, 498, 663, 698, 832, 975}
    assert int(probs.argmax()) in buildings
    assert float(probs.max()) > 0.15


def test_image_only_scorer_and_full_image_baseline(data):
    from neural_sk.baselines import ImageClassifier

    X, y = data
    images_only = X.drop(columns="report")
    scorer = AttentionScorer(**{**TINY, "text_model": None}).fit(images_only, y)
    out = scorer.transform(images_only)
    assert out.reports == [""] * len(X) and out.attention.shape == (16, 16)
    with pytest.raises(ValueError, match="no decoder"):
        scorer.generate_reports(X)
    with pytest.raises(ValueError, match="need a decoder"):
        AttentionScorer(**{**TINY, "text_model": None, "method": "cross_attention"}).fit(X, y)
    clf = ImageClassifier(vision_model="tiny-swin", image_size=64, epochs=2, batch_size=8,
                          random_state=0)
    proba = clf.fit(images_only, y).predict_proba(images_only)
    assert proba.shape == (16, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(proba, scorer.predict_proba(images_only))  # same loop, same seed
    assert set(clf.predict(images_only)) <= set(y)


def test_grounding_pulls_scores_toward_given_lesions():
    from neural_sk.metrics import patch_lesion_masks

    X, y, masks = make_synthetic_cxr(16, image_size=64, random_state=0, return_masks=True)
    X = X.copy()
    X["lesion"] = list(masks)
    lesion = patch_lesion_masks(np.asarray(masks), (4, 4))
    mass = {}
    for weight in (0.0, 5.0):
        scorer = AttentionScorer(**{**TINY, "epochs": 5, "grounding_weight": weight}).fit(X, y)
        attention = scorer.transform(X).attention
        mass[weight] = float((attention * lesion).sum(1)[y == 1].mean())
    assert mass[5.0] > mass[0.0]


@pytest.mark.parametrize("random_state", [0, None])
def test_fit_and_transform_leave_the_global_generators_alone(data, random_state):
    import random

    X, y = data
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    scorer = AttentionScorer(**{**TINY, "epochs": 1, "random_state": random_state}).fit(X, y)
    scorer.transform(X)
    assert random.getstate() == before[0]
    np.testing.assert_array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(torch.get_rng_state(), before[2])


@pytest.fixture(scope="module")
def weighted(data):
    X, y = data
    w = np.where(y == 1, 3.0, 1.0)
    scorer = AttentionScorer(**{**TINY, "epochs": 1}).fit(X, y, sample_weight=w)
    return w, scorer.transform(X).attention


def test_sample_weight_and_class_weight_weigh_the_studies(data, weighted):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = data
    params = {**TINY, "epochs": 1}
    plain = AttentionScorer(**params).fit(X, y).transform(X).attention
    assert np.abs(weighted[1] - plain).max() > 1e-3
    ones = AttentionScorer(**params).fit(X, y, sample_weight=np.ones(len(y))).transform(X)
    np.testing.assert_allclose(ones.attention, plain, atol=2e-3)
    balanced = AttentionScorer(**{**params, "class_weight": "balanced"}).fit(X, y)
    as_weights = AttentionScorer(**params).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_array_equal(balanced.transform(X).attention, as_weights.transform(X).attention)
    with pytest.raises(ValueError, match="sample_weight"):
        AttentionScorer(**params).fit(X, y, sample_weight=-np.ones(len(y)))


def test_sample_weight_routes_through_the_pipeline(data, weighted):
    from sklearn import config_context
    from sklearn.pipeline import Pipeline

    from neural_sk import PatchPruner

    X, y = data
    w, expected = weighted
    params = {**TINY, "epochs": 1}
    pipe = Pipeline([("scorer", AttentionScorer(**params)), ("pruner", PatchPruner())])
    pipe.fit(X, y, scorer__sample_weight=w)
    np.testing.assert_array_equal(pipe["scorer"].transform(X).attention, expected)
    with config_context(enable_metadata_routing=True):
        scorer = AttentionScorer(**params).set_fit_request(sample_weight=True)
        pipe = Pipeline([("scorer", scorer), ("pruner", PatchPruner())])
        pipe.fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(pipe["scorer"].transform(X).attention, expected)


def test_a_missing_device_is_named(data):
    from neural_sk.utils.device import resolve_device

    X, y = data
    for device in ("cuda", "mps"):
        if resolve_device("auto").type != device:
            with pytest.raises(ValueError, match=f"(?i)device='{device}' was asked for but .*{device}"):
                AttentionScorer(**{**TINY, "device": device}).fit(X, y)


def test_a_head_that_learns_nothing_is_reported(data):
    X, y = data
    frozen = {**TINY, "epochs": 1, "learning_rate": 1e-12, "encoder_learning_rate": 0.0}
    with pytest.warns(UserWarning, match="classification head learned .*nothing"):
        AttentionScorer(**frozen).fit(X, y)
