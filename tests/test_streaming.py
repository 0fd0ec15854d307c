"""Streaming data and mixed precision: images decoded in DataLoader workers give the same
model whatever the number of workers, bad images are recorded per study, the global random
streams are left alone, and bfloat16 stays within tolerance of float32."""

import random
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from neural_sk import AttentionScorer
from neural_sk.baselines import ImageClassifier
from neural_sk.datasets import make_synthetic_cxr
from neural_sk.models.loading import StudyImages, resolve_num_workers

TINY = dict(vision_model="tiny-swin", image_size=64, epochs=1, batch_size=8,
            max_report_tokens=32, random_state=0)
N = 24


@pytest.fixture(scope="module")
def on_disk(tmp_path_factory):
    """24 synthetic studies with their images as PNG files, rows labelled 100..123."""
    folder = tmp_path_factory.mktemp("pngs")
    X, y = make_synthetic_cxr(N, image_size=64, random_state=0)
    paths = []
    for i, image in enumerate(X["image"]):
        paths.append(str(folder / f"s{i}.png"))
        Image.fromarray(image).save(paths[-1])
    frame = pd.DataFrame({"image": paths, "report": X["report"].tolist()},
                         index=range(100, 100 + N))
    return frame, y, folder


def _fit(X, y, **params):
    with warnings.catch_warnings():  # one epoch on 24 studies: the chance warning is expected
        warnings.simplefilter("ignore")
        return AttentionScorer(**{**TINY, **params}).fit(X, y)


@pytest.fixture(scope="module")
def no_workers(on_disk):
    X, y, _ = on_disk
    return _fit(X, y, num_workers=0)


def test_same_seed_same_model_whatever_the_number_of_workers(on_disk, no_workers):
    # Pixel augmentation runs in the workers: each study draws from its own generator.
    X, y, _ = on_disk
    two = _fit(X, y, num_workers=2)
    assert two.history_ == no_workers.history_
    assert two.info_["model_hash"] == no_workers.info_["model_hash"]
    np.testing.assert_array_equal(two.transform(X).attention,
                                  no_workers.set_params(num_workers=0).transform(X).attention)


def test_cached_prefix_path_is_the_same_whatever_the_number_of_workers(on_disk):
    # EfficientNet's frozen prefix is cached on disk; the feature-map shift runs per study.
    X, y, _ = on_disk
    params = dict(vision_model="efficientnet-lite0", text_model=None, epochs=2)
    zero, one = _fit(X, y, num_workers=0, **params), _fit(X, y, num_workers=1, **params)
    assert zero.history_ == one.history_ and len(zero.history_) == 2
    assert zero.info_["model_hash"] == one.info_["model_hash"]


def test_paths_and_arrays_train_the_same_model(on_disk, no_workers):
    X, y, _ = on_disk
    arrays = X.assign(image=[np.asarray(Image.open(p)) for p in X["image"]])
    assert _fit(arrays, y).info_["model_hash"] == no_workers.info_["model_hash"]


def test_bad_images_in_workers_are_recorded_per_study(on_disk, no_workers):
    X, _, folder = on_disk
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG not really")
    bad = X.copy()
    bad.loc[103, "image"] = str(folder / "missing.png")
    bad.loc[117, "image"] = str(corrupt)
    scorer = no_workers.set_params(on_error="skip", num_workers=2)
    try:
        out = scorer.transform(bad)
    finally:
        scorer.set_params(on_error="raise", num_workers=0)
    assert len(out) == N
    failed = [i for i, e in enumerate(out.errors) if e is not None]
    assert failed == [3, 17]
    assert "row 103" in out.errors[3] and "missing.png" in out.errors[3]
    assert "row 117" in out.errors[17] and "corrupt" in out.errors[17]
    np.testing.assert_allclose(out.attention[3], 1.0 / 16)
    good = no_workers.transform(X.iloc[:2])
    np.testing.assert_allclose(out.attention[:2], good.attention, rtol=1e-5)


def test_a_bad_image_in_fit_names_its_row(on_disk):
    X, y, folder = on_disk
    bad = X.copy()
    bad.loc[109, "image"] = str(folder / "missing.png")
    with pytest.raises(ValueError, match=r"row 109.*missing\.png"):
        _fit(bad, y, num_workers=2)


def test_fit_and_transform_leave_the_global_random_streams_alone(on_disk):
    X, y, _ = on_disk
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    before = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    scorer = _fit(X.iloc[:12], y[:12], num_workers=1, epochs=1)
    scorer.transform(X.iloc[:12])
    after = (random.getstate(), np.random.get_state()[1], torch.get_rng_state())
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert torch.equal(before[2], after[2])


def test_progress_bars_for_reading_epochs_and_scoring(on_disk, capsys):
    X, y, _ = on_disk
    params = dict(vision_model="efficientnet-lite0", text_model=None, verbose=1)
    _fit(X.iloc[:12], y[:12], **params).transform(X.iloc[:12])
    err = capsys.readouterr().err
    for title in ("read images", "fit scorer: epoch 1/1", "loss=", "score patches"):
        assert title in err


def test_num_workers_auto_uses_workers_for_paths_only():
    arrays = [np.zeros((8, 8), np.uint8)] * 40
    assert resolve_num_workers("auto", arrays, 8) == 0
    assert resolve_num_workers("auto", ["a.png"] * 24, 8) == 0  # too few batches to repay
    assert resolve_num_workers("auto", ["a.png"] * 40, 8) <= 4
    # On the CPU the model uses every core: workers would only compete with it.
    assert resolve_num_workers("auto", ["a.png"] * 40, 8, torch.device("cpu")) == 0
    assert resolve_num_workers(2, arrays, 8) == 2


def test_augmentation_depends_on_seed_and_study_only():
    images = StudyImages([np.random.default_rng(0).random((64, 64))] * 3, 64, max_shift=4)
    a, b = images[(1, 7)][1], images[(1, 7)][1]
    assert torch.equal(a, b) and not torch.equal(a, images[(1, 8)][1])
    assert not torch.equal(a, images[(1, None)][1])


def test_bf16_on_cpu_is_within_tolerance_of_float32(on_disk, no_workers):
    X, y, _ = on_disk
    full = no_workers.transform(X.iloc[:8])
    half = no_workers.set_params(precision="bf16")
    try:
        low = half.transform(X.iloc[:8])
    finally:
        half.set_params(precision="auto")
    assert low.patch_features.dtype == np.float32
    assert not np.array_equal(low.patch_features, full.patch_features)  # bf16 did run
    np.testing.assert_allclose(low.attention, full.attention, atol=0.02)
    np.testing.assert_allclose(low.patch_features, full.patch_features, atol=0.1)
    trained = _fit(X, y, num_workers=0, precision="bf16")
    for a, b in zip(trained.history_, no_workers.history_):
        assert a["loss"] == pytest.approx(b["loss"], rel=0.05)


def test_float16_mixed_needs_cuda(on_disk):
    X, y, _ = on_disk
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="16-mixed.*CUDA"):
        AttentionScorer(**{**TINY, "precision": "16-mixed", "device": "cpu"}).fit(X, y)


def test_image_classifier_streams_from_paths(on_disk):
    X, y, _ = on_disk
    clf = ImageClassifier(vision_model="tiny-swin", image_size=64, epochs=1, batch_size=8,
                          num_workers=1, precision="32", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (N, 2) and clf.scorer_.num_workers == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "16-mixed"])
def test_mixed_precision_on_cuda_is_within_tolerance(on_disk, precision):
    X, y, _ = on_disk
    base = _fit(X, y, device="cuda", precision="32", num_workers=2, epochs=2)
    mixed = _fit(X, y, device="cuda", precision=precision, num_workers=2, epochs=2)
    for a, b in zip(mixed.history_, base.history_):
        assert np.isfinite(a["loss"]) and a["loss"] == pytest.approx(b["loss"], rel=0.05)
    assert np.isfinite(mixed.transform(X).patch_features).all()
    ref = base.transform(X)
    out = base.set_params(precision=precision).transform(X)  # the same weights, scored lower
    np.testing.assert_allclose(out.attention, ref.attention, atol=0.02)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_precision_is_bf16_on_cuda():
    from neural_sk.models.precision import resolve_precision

    expected = "bf16" if torch.cuda.is_bf16_supported() else "32"
    assert resolve_precision("auto", torch.device("cuda")) == expected


def test_report_labels_in_chunks_equal_one_pass_and_warn_once():
    from neural_sk.models.data import read_reports, report_labels
    from neural_sk.models.vlm import encode_reports
    from neural_sk.text.tokenizer import train_report_tokenizer

    X, _ = make_synthetic_cxr(40, image_size=32, random_state=0)
    reports = read_reports(X["report"].tolist())
    reports[5] = "consolidation " * 50
    tokenizer = train_report_tokenizer(reports)
    with pytest.warns(UserWarning, match=r"exceed max_report_tokens=24.*rows \[") as caught:
        chunked = report_labels(tokenizer, reports, 24, warn_rows=list(range(40)), chunk=7)
    assert len([w for w in caught if "max_report_tokens" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(chunked, encode_reports(tokenizer, reports, 24)[0])
