"""CIFAR-10-C corruptions: shapes, dtype, determinism, severity ordering and the reference's details."""

import io

import numpy as np
import pytest
from PIL import Image

from devicelab.data import corruptions
from devicelab.data.corruptions import CORRUPTIONS, FAITHFUL_CORRUPTIONS, corrupt


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Four smooth 32x32 test images with edges (a disc and a gradient): (4, 32, 32, 3) uint8."""
    ys, xs = np.mgrid[0:32, 0:32]
    out = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    for i in range(4):
        disc = (xs - 10 - 3 * i) ** 2 + (ys - 16) ** 2 < (6 + i) ** 2
        out[i, ..., 0] = np.where(disc, 220, 40 + 4 * xs)
        out[i, ..., 1] = np.where(disc, 60, 30 + 5 * ys)
        out[i, ..., 2] = 90 + 30 * i
    return out


def _mean_abs_change(images: np.ndarray, name: str, severity: int) -> float:
    return float(np.abs(corrupt(images, name, severity, seed=0).astype(np.float64) - images).mean())


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_dtype_and_seed(images, name):
    out = corrupt(images, name, 3, seed=7)
    assert out.shape == images.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, corrupt(images, name, 3, seed=7))
    single = corrupt(images[2], name, 3, seed=7, first_index=2)  # (H, W, 3) in, (H, W, 3) out
    assert single.shape == (32, 32, 3)
    np.testing.assert_array_equal(single, out[2])
    assert not np.array_equal(out, images) or name == "pixelate"


@pytest.mark.parametrize(
    "name",
    [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "glass_blur",
        "motion_blur",
        "snow",
        "fog",
        "elastic_transform",
    ],
)
def test_random_corruptions_depend_on_the_seed(images, name):
    assert not np.array_equal(corrupt(images, name, 4, seed=0), corrupt(images, name, 4, seed=1))


@pytest.mark.parametrize(
    "name",
    [
        "gaussian_noise",
        "shot_noise",
        "impulse_noise",
        "defocus_blur",
        "glass_blur",
        "motion_blur",
        "zoom_blur",
        "contrast",
        "brightness",
        "pixelate",
        "fog",
    ],
)
def test_severity_5_changes_more_than_severity_1(images, name):
    assert _mean_abs_change(images, name, 5) > _mean_abs_change(images, name, 1)


@pytest.mark.parametrize("name", ["gaussian_noise", "impulse_noise", "defocus_blur", "zoom_blur", "contrast"])
def test_severity_is_monotone(images, name):
    changes = [_mean_abs_change(images, name, s) for s in range(1, 6)]
    assert changes == sorted(changes), changes


def test_unknown_name_and_severity_are_refused(images):
    with pytest.raises(ValueError, match="gaussian_noise"):
        corrupt(images, "gaussian", 1, seed=0)
    with pytest.raises(ValueError, match="frost photographs"):
        corrupt(images, "frost", 1, seed=0)
    with pytest.raises(ValueError, match="1, 2, 3, 4, 5"):
        corrupt(images, "contrast", 6, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        corrupt(images.astype(np.float32), "contrast", 1, seed=0)


def test_the_default_set_is_the_twelve_faithful_ones():
    assert len(FAITHFUL_CORRUPTIONS) == 12 and set(FAITHFUL_CORRUPTIONS) < set(CORRUPTIONS)
    assert "frost" not in CORRUPTIONS


def test_output_truncates_like_np_uint8():
    # contrast at severity 1: (x - mean) * 0.75 + mean; the reference casts with np.uint8, which truncates
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:16] = 101
    image[16:] = 200
    x = image / 255.0
    expected = np.uint8(np.clip((x - x.mean(axis=(0, 1))) * 0.75 + x.mean(axis=(0, 1)), 0, 1) * 255)
    np.testing.assert_array_equal(corrupt(image, "contrast", 1, seed=0), expected)
    rounded = np.rint(np.clip((x - x.mean(axis=(0, 1))) * 0.75 + x.mean(axis=(0, 1)), 0, 1) * 255)
    assert not np.array_equal(expected, rounded.astype(np.uint8))


def test_defocus_kernel_sums_to_one():
    for radius, alias in [(0.3, 0.4), (1, 0.2), (1.5, 0.1)]:
        kernel = corruptions.disk_kernel(radius, alias)
        assert kernel.shape == (17, 17)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)


def test_plasma_is_in_unit_range_and_seeded():
    a = corruptions.plasma_fractal(np.random.default_rng(0), 32, 2.0)
    b = corruptions.plasma_fractal(np.random.default_rng(0), 32, 2.0)
    assert a.shape == (32, 32) and a.min() == 0.0 and a.max() == 1.0
    np.testing.assert_array_equal(a, b)


def test_jpeg_and_pixelate_equal_pillow_round_trips(images):
    buffer = io.BytesIO()
    Image.fromarray(images[1]).save(buffer, format="JPEG", quality=40)
    expected = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    np.testing.assert_array_equal(corrupt(images[1], "jpeg_compression", 5, seed=0), expected)
    small = Image.fromarray(images[1]).resize((20, 20), Image.Resampling.BOX)
    expected = np.asarray(small.resize((32, 32), Image.Resampling.BOX))
    np.testing.assert_array_equal(corrupt(images[1], "pixelate", 5, seed=0), expected)


def test_hsv_round_trip_matches_the_input():
    rgb = np.random.default_rng(0).random((16, 16, 3))
    np.testing.assert_allclose(corruptions.hsv_to_rgb(corruptions.rgb_to_hsv(rgb)), rgb, atol=1e-12)


def test_glass_blur_copies_pixels_instead_of_swapping():
    # every pixel distinct; a true swap keeps all of them, the reference's view "swap" duplicates some
    index = np.arange(32 * 32)
    image = np.stack([index // 32 * 8, index % 32 * 8, np.full_like(index, 128)], axis=-1)
    image = image.reshape(32, 32, 3).astype(np.uint8)
    out = corrupt(image, "glass_blur", 1, seed=3)  # sigma 0.05: the blur leaves distinct values distinct
    distinct_in = len(np.unique(image.reshape(-1, 3), axis=0))
    distinct_out = len(np.unique(out.reshape(-1, 3), axis=0))
    assert distinct_in == 1024 and distinct_out < distinct_in - 50
