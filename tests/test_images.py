"""Reading images: PNG/JPEG (8/16-bit, grey/RGB/RGBA), DICOM, arrays, and clear errors."""

import importlib.util
import sys

import numpy as np
import pytest
from PIL import Image

from neural_sk.datasets import read_image
from neural_sk.datasets.images import ImageReadError, read_image_uint8, read_images

needs_pydicom = pytest.mark.skipif(importlib.util.find_spec("pydicom") is None,
                                   reason="pydicom (the dicom extra) is not installed")


def _write_dicom(path, pixels, photometric="MONOCHROME2", slope=None, intercept=None,
                 center=None, width=None):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    try:
        ds.save_as(path, enforce_file_format=True)
    except TypeError:  # pydicom < 3
        ds.save_as(path, write_like_original=False)
    return path


GRADIENT = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))  # 16 x 64, smooth


def test_png_8bit(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(GRADIENT).save(path)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == GRADIENT.shape
    np.testing.assert_allclose(img, GRADIENT / 255.0, atol=1e-6)
    assert np.array_equal(read_image(str(path)), img)  # str and Path alike


def test_png_16bit_keeps_precision(tmp_path):
    pixels = np.array([[0, 1, 1000], [30000, 65534, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    img = read_image(path)
    np.testing.assert_allclose(img, pixels / 65535.0, rtol=1e-6, atol=1e-7)
    assert img[0, 1] > 0  # one step of 65535 is not lost to 8 bits


def test_jpeg(tmp_path):
    path = tmp_path / "grey.jpg"
    Image.fromarray(GRADIENT).save(path, quality=95)
    img = read_image(path)
    assert img.shape == GRADIENT.shape and img.dtype == np.float32
    assert np.abs(img - GRADIENT / 255.0).max() < 0.05


def test_rgb_and_rgba_become_luminance(tmp_path):
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[1] = 200
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    img = read_image(tmp_path / "rgb.png")
    np.testing.assert_allclose(img[0], [0.299, 0.587, 0.114], atol=1e-6)
    np.testing.assert_allclose(img[1], 200 / 255.0, atol=1e-6)

    rgba = np.dstack([rgb, np.array([[0, 128, 255], [0, 0, 0]], dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), img, atol=1e-6)


@needs_pydicom
def test_dicom_monochrome2_with_rescale_and_window(tmp_path):
    # Stored 500 -> 0 after rescale (2 * 500 - 1000); the window (0 +- 100) is in rescaled units.
    stored = np.array([[0, 450, 500], [525, 550, 4000]], dtype=np.uint16)
    path = _write_dicom(tmp_path / "mono2.dcm", stored, slope=2, intercept=-1000,
                        center=0, width=200)
    img = read_image(path)
    assert img.dtype == np.float32 and img.shape == stored.shape
    assert img.min() == 0.0 and img.max() == 1.0
    assert img[0, 0] == 0.0 and img[0, 1] == pytest.approx(0.0, abs=0.01)  # below the window
    assert img[0, 2] == pytest.approx(0.5, abs=0.01)  # the window's centre
    assert img[1, 0] == pytest.approx(0.75, abs=0.01)
    assert img[1, 1] == 1.0 and img[1, 2] == 1.0  # above the window
    # Without the window, 525 would sit near the bottom of the 0..4000 range.
    plain = read_image(_write_dicom(tmp_path / "plain.dcm", stored))
    assert plain[1, 0] == pytest.approx(525 / 4000, abs=1e-3)


@needs_pydicom
def test_dicom_monochrome1_is_inverted(tmp_path):
    stored = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    mono1 = read_image(_write_dicom(tmp_path / "mono1.dcm", stored, "MONOCHROME1"))
    mono2 = read_image(_write_dicom(tmp_path / "mono2.dcm", stored, "MONOCHROME2"))
    # MONOCHROME1: the highest stored value is displayed black.
    assert mono1[1, 1] == 0.0 and mono1[0, 0] == 1.0
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)


@needs_pydicom
def test_dicom_found_by_magic_bytes_without_suffix(tmp_path):
    stored = np.array([[0, 10], [20, 40]], dtype=np.uint16)
    path = _write_dicom(tmp_path / "study.dcm", stored)
    renamed = path.rename(tmp_path / "study_without_suffix")
    np.testing.assert_allclose(read_image(renamed), stored / 40.0, atol=1e-6)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "missing.png"
    with pytest.raises(ImageReadError, match="missing.png") as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)


@pytest.mark.parametrize("name, payload", [
    ("corrupt.png", b"this is not an image at all"),
    pytest.param("corrupt.dcm", b"\x00" * 10 + b"garbage", marks=needs_pydicom),
])
def test_corrupt_files_name_the_path(tmp_path, name, payload):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ImageReadError, match=name):
        read_image(path)


def test_truncated_png_names_the_path(tmp_path):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.png"
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        read_image(cut)


def test_dicom_without_pydicom_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "x.dcm"
    path.write_bytes(b"\x00" * 128 + b"DICM")
    monkeypatch.setitem(sys.modules, "pydicom", None)  # makes `import pydicom` fail
    with pytest.raises(ImportError, match=r"neural-sk\[dicom\]"):
        read_image(path)


def test_arrays():
    u8 = np.array([[0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(read_image(u8), [[0.0, 1.0]])
    u16 = np.array([[0, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(read_image(u16), [[0.0, 1.0]])
    unit = np.array([[0.25, 0.5]], dtype=np.float64)
    out = read_image(unit)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, unit)
    wide = np.array([[-100.0, 0.0, 300.0]])
    np.testing.assert_allclose(read_image(wide), [[0.0, 0.25, 1.0]])
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    np.testing.assert_allclose(read_image(rgb), 0.587, atol=1e-6)
    assert read_image(np.full((3, 3), 7, dtype=np.int32)).max() == 0.0  # constant -> zeros


def test_bad_arrays_raise():
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(np.array([[0.1, np.nan]]))
    with pytest.raises(ImageReadError, match="empty"):
        read_image(np.zeros((0, 5), dtype=np.uint8))
    with pytest.raises(ImageReadError, match="shape"):
        read_image(np.zeros((2, 2, 2, 2)))
    with pytest.raises(TypeError, match="path"):
        read_image(42)


def test_read_images_names_the_failing_row(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(GRADIENT).save(good)
    images = read_images([good, GRADIENT])
    assert len(images) == 2 and np.array_equal(images[0], images[1])
    with pytest.raises(ImageReadError, match=r"row 'b'.*bad\.png"):
        read_images([good, tmp_path / "bad.png"], index=["a", "b"])
    with pytest.raises(ImageReadError, match=r"row 1\b.*NaN"):
        read_images([GRADIENT, np.array([[np.nan]])])


def test_read_image_uint8_keeps_8bit_grey_and_quantises_the_rest(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert read_image_uint8(grey) is grey  # already 8-bit grey: never re-quantised
    assert np.shares_memory(read_image_uint8(grey[:, :, None]), grey)
    rgb = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    deep = (np.arange(20, dtype=np.uint16) * 3000).reshape(4, 5)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    for source in (rgb, tmp_path / "rgb.png", tmp_path / "deep.png", np.linspace(0, 1, 9)[None]):
        got = read_image_uint8(source)
        assert got.dtype == np.uint8 and got.ndim == 2
        # the pipeline's float image, at 8 bits
        np.testing.assert_array_equal(got, np.round(read_image(source) * 255.0))
    assert read_image_uint8(deep, keep_uint16=True) is deep
    assert read_image_uint8(deep).max() == 222  # 57000 / 65535 * 255 = 221.8
    with pytest.raises(ImageReadError, match="missing.png"):
        read_image_uint8(tmp_path / "missing.png")
