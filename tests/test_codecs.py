"""CodecCompressor: the codec baseline re-encodes every study and reports honest byte counts."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from neural_sk.baselines import CodecCompressor

CODECS = ["jpeg", "jpeg2000", "webp"]
# Settings from high to low fidelity (for JPEG 2000 the quality is a compression ratio).
LADDERS = {"jpeg": [90, 50, 10], "webp": [90, 50, 10], "jpeg2000": [4.0, 15.0, 60.0]}


@pytest.fixture(scope="module")
def X():
    """Six 64 x 64 chest-like images (smooth body, ribs, noise) with an index that is not 0..n-1."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64] / 63.0
    images = []
    for i in range(6):
        body = 0.6 * np.exp(-((xx - 0.5) ** 2) / 0.08) + 0.15 * np.sin(yy * (18 + i))
        noisy = body + 0.05 * rng.standard_normal((64, 64))
        images.append(np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8))
    return pd.DataFrame(
        {"image": images, "report": [f"report {i}" for i in range(6)],
         "patient_id": [f"p{i // 2}" for i in range(6)]},
        index=[10, 11, 12, 13, 14, 15],
    )


@pytest.mark.parametrize("codec", CODECS)
def test_output_keeps_studies_columns_and_shapes(codec, X):
    before = [im.copy() for im in X["image"]]
    out = CodecCompressor(codec=codec).fit_transform(X)
    assert len(out) == len(X)
    assert out.index.equals(X.index)
    assert list(out.columns) == ["image", "report", "patient_id", "nbytes", "codec_quality"]
    pd.testing.assert_series_equal(out["report"], X["report"])
    for src, dec in zip(X["image"], out["image"]):
        assert dec.shape == src.shape and dec.dtype == np.uint8
        assert np.abs(dec.astype(int) - src.astype(int)).mean() < 40  # still the same picture
    assert (out["nbytes"] > 0).all()
    assert (out["nbytes"] < 64 * 64).all()  # lossy at the default setting beats raw pixels
    # the input frame is untouched
    for a, b in zip(before, X["image"]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("codec", CODECS)
def test_bytes_fall_as_fidelity_falls(codec, X):
    sizes = [
        CodecCompressor(codec=codec, quality=q).fit_transform(X)["nbytes"].to_numpy()
        for q in LADDERS[codec]
    ]
    for hi, lo in zip(sizes, sizes[1:]):
        assert np.all(lo < hi), f"{codec}: {sizes}"


@pytest.mark.parametrize("codec", CODECS)
def test_nbytes_is_the_encoded_size(codec, X):
    """Re-encoding a study at the reported setting gives the reported size and image."""
    out = CodecCompressor(codec=codec, quality=LADDERS[codec][1]).fit_transform(X.iloc[:1])
    pixels = X["image"].iloc[0]
    buf = io.BytesIO()
    kwargs = ({"quality_mode": "rates", "quality_layers": [LADDERS[codec][1]],
               "irreversible": True, "no_jp2": True} if codec == "jpeg2000"
              else {"quality": LADDERS[codec][1]})
    Image.fromarray(pixels).save(buf, format={"jpeg": "JPEG", "webp": "WEBP",
                                              "jpeg2000": "JPEG2000"}[codec], **kwargs)
    assert out["nbytes"].iloc[0] == buf.tell()
    buf.seek(0)
    np.testing.assert_array_equal(out["image"].iloc[0], np.asarray(Image.open(buf).convert("L")))


@pytest.mark.parametrize("codec", CODECS)
def test_target_bytes_is_respected(codec, X):
    raw = 64 * 64
    for target in (raw // 6, raw // 3):
        out = CodecCompressor(codec=codec, target_bytes=target).fit_transform(X)
        assert (out["nbytes"] <= target).all(), f"{codec} at {target}: {out['nbytes'].tolist()}"
        assert len(out) == len(X)
    # a bigger budget never buys fewer bytes overall
    small = CodecCompressor(codec=codec, target_bytes=raw // 6).fit_transform(X)["nbytes"]
    large = CodecCompressor(codec=codec, target_bytes=raw // 3).fit_transform(X)["nbytes"]
    assert large.sum() > small.sum()


def test_target_bytes_picks_the_largest_fitting_jpeg_quality(X):
    target = 900
    out = CodecCompressor(codec="jpeg", target_bytes=target).fit_transform(X)
    for pixels, q, n in zip(X["image"], out["codec_quality"], out["nbytes"]):
        q = int(q)
        assert n <= target
        sizes = {}
        for quality in (q, q + 1):
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
            sizes[quality] = buf.tell()
        assert sizes[q] == n
        assert sizes[q + 1] > target, "a higher quality also fits: the search stopped early"


def test_unreachable_target_warns_and_keeps_every_study(X):
    with pytest.warns(UserWarning, match="rows 10"):
        out = CodecCompressor(codec="jpeg", target_bytes=50).fit_transform(X)
    assert len(out) == len(X)
    assert (out["codec_quality"] == 1).all()


def test_image_size_resizes_before_encoding(X):
    out = CodecCompressor(codec="webp", quality=50, image_size=32).fit_transform(X)
    assert all(im.shape == (32, 32) for im in out["image"])
    full = CodecCompressor(codec="webp", quality=50).fit_transform(X)
    assert out["nbytes"].sum() < full["nbytes"].sum()


def test_reads_paths_and_float_arrays(tmp_path, X):
    paths = []
    for i, pixels in enumerate(X["image"].iloc[:2]):
        path = tmp_path / f"study{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    from_paths = CodecCompressor(quality=30).fit_transform(pd.DataFrame({"image": paths}))
    from_floats = CodecCompressor(quality=30).fit_transform(
        pd.DataFrame({"image": [p / 255.0 for p in X["image"].iloc[:2]]}))
    from_arrays = CodecCompressor(quality=30).fit_transform(X.iloc[:2])
    for out in (from_paths, from_floats):
        np.testing.assert_array_equal(out["nbytes"].to_numpy(), from_arrays["nbytes"].to_numpy())


def test_unreadable_image_names_the_row(tmp_path, X):
    frame = pd.DataFrame({"image": [X["image"].iloc[0], str(tmp_path / "missing.png")]},
                         index=["ok", "bad"])
    with pytest.raises(ValueError, match="row 'bad'.*missing.png"):
        CodecCompressor().fit_transform(frame)


def test_parameters_are_checked_at_fit(X):
    est = CodecCompressor(codec="gif")  # __init__ does not validate
    with pytest.raises(InvalidParameterError, match="codec"):
        est.fit(X)
    with pytest.raises(ValueError, match="not both"):
        CodecCompressor(quality=10, target_bytes=500).fit(X)
    with pytest.raises(ValueError, match="quality for codec='jpeg'"):
        CodecCompressor(codec="jpeg", quality=0).fit(X)
    with pytest.raises(ValueError, match="integer"):
        CodecCompressor(codec="webp", quality=10.5).fit(X)
    with pytest.raises(ValueError, match="compression ratio"):
        CodecCompressor(codec="jpeg2000", quality=0.5).fit(X)
    with pytest.raises(InvalidParameterError, match="target_bytes"):
        CodecCompressor(target_bytes=0).fit(X)
    with pytest.raises(ValueError, match="image"):
        CodecCompressor().fit(pd.DataFrame({"report": ["a"]}))


def test_sklearn_plumbing(X):
    est = CodecCompressor(codec="jpeg2000", quality=25.0)
    with pytest.raises(NotFittedError):
        est.transform(X)
    assert est.fit(X) is est
    assert est.quality_ == 25.0
    assert CodecCompressor(codec="jpeg").fit(X).quality_ == 10  # the paper's setting
    cloned = clone(est)
    assert cloned.get_params() == est.get_params()
    assert not hasattr(cloned, "quality_")
    assert est.__sklearn_tags__().input_tags.two_d_array is False
    pipe = Pipeline([("codec", CodecCompressor(codec="webp"))])
    pipe.set_params(codec__quality=40)
    out = pipe.fit_transform(X)
    assert (out["codec_quality"] == 40).all()
