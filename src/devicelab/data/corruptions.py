"""CIFAR-10-C image corruptions at severities 1-5, in numpy / scipy / Pillow, seeded and applied on the fly.

Follows ``specs/tta-lsa.md`` §6.2 and the parameters of Hendrycks & Dietterich's CIFAR-10-C generator
(``make_cifar_c.py``, ICLR 2019): each image is scaled to [0, 1], corrupted, clipped, multiplied by 255 and
cast with ``np.uint8`` (which truncates, as the reference does). Every image has its own generator, drawn from
``SeedSequence([seed, corruption, severity, index])``, so a result does not depend on batch size or order.

``frost`` needs the reference's frost photographs and is omitted. ``motion_blur`` and ``snow`` use
ImageMagick's motion blur in the reference; here a one-sided Gaussian line kernel stands in for it
(``APPROXIMATE_CORRUPTIONS``).
Spatial parameters are CIFAR's (for 32x32 images); other sizes use the same values in pixels.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

FAITHFUL_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "zoom_blur",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
APPROXIMATE_CORRUPTIONS: tuple[str, ...] = ("motion_blur", "snow")
OMITTED_CORRUPTIONS: tuple[str, ...] = ("frost",)
# Every corruption ``corrupt`` accepts, in CIFAR-10-C order.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# ---------------------------------------------------------------------------------------------------------
# Helpers (float images in [0, 1], shape (H, W, 3))
# ---------------------------------------------------------------------------------------------------------


def _gaussian_spatial(
    x: np.ndarray, sigma: float, mode: str = "nearest", truncate: float = 4.0
) -> np.ndarray:
    """Gaussian filter over the two spatial axes only (as skimage ``gaussian(..., channel_axis=-1)``)."""
    sigmas = (sigma, sigma, 0.0) if x.ndim == 3 else (sigma, sigma)
    return ndimage.gaussian_filter(x, sigma=sigmas, mode=mode, truncate=truncate)


def _gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """OpenCV ``getGaussianKernel(size, sigma)`` for sigma > 0."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    return weights / weights.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The defocus kernel: a normalised disk on L = -8..8, smoothed by a 3x3 Gaussian (sigma ``alias_blur``).

    As ``disk`` in ``make_cifar_c.py`` (OpenCV ``GaussianBlur``, border reflect-101 = scipy ``mirror``).
    """
    grid = np.arange(-8, 8 + 1)
    xs, ys = np.meshgrid(grid, grid)
    aliased = np.asarray(xs**2 + ys**2 <= radius**2, dtype=np.float32)
    aliased /= aliased.sum()
    g = _gaussian_kernel_1d(3, alias_blur).astype(np.float32)
    smoothed = ndimage.correlate1d(aliased, g, axis=0, mode="mirror")
    return ndimage.correlate1d(smoothed, g, axis=1, mode="mirror")  # (17, 17)


def plasma_fractal(rng: np.random.Generator, mapsize: int = 32, wibble_decay: float = 3.0) -> np.ndarray:
    """A diamond-square height map of side ``mapsize`` (a power of two), scaled to [0, 1]."""
    if mapsize & (mapsize - 1):
        raise ValueError(f"plasma_fractal: mapsize must be a power of two, got {mapsize}")
    heights = np.empty((mapsize, mapsize), dtype=np.float64)
    heights[0, 0] = 0.0
    step = mapsize
    wibble = 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        # squares: centre of each square = mean of its corners + noise
        corners = heights[0:mapsize:step, 0:mapsize:step]
        square_sum = corners + np.roll(corners, shift=-1, axis=0)
        square_sum += np.roll(square_sum, shift=-1, axis=1)
        heights[half:mapsize:step, half:mapsize:step] = wibbled_mean(square_sum)
        # diamonds: edge midpoints = mean of the two corners and two centres + noise
        centres = heights[half:mapsize:step, half:mapsize:step]
        corners = heights[0:mapsize:step, 0:mapsize:step]
        left_right = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        heights[0:mapsize:step, half:mapsize:step] = wibbled_mean(left_right)
        top_bottom = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        heights[half:mapsize:step, 0:mapsize:step] = wibbled_mean(top_bottom)
        step //= 2
        wibble /= wibble_decay
    heights -= heights.min()
    return heights / heights.max()


def _clipped_zoom(x: np.ndarray, zoom_factor: float) -> np.ndarray:
    """Zoom into the centre by ``zoom_factor`` (bilinear) and crop back to the input's size."""
    h = x.shape[0]
    crop = int(np.ceil(h / zoom_factor))
    top = (h - crop) // 2
    zoom = (zoom_factor, zoom_factor) + (1,) * (x.ndim - 2)
    zoomed = ndimage.zoom(x[top : top + crop, top : top + crop], zoom, order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim : trim + h, trim : trim + h]


def _motion_blur(x: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """One-sided Gaussian line blur towards ``angle_deg`` (in the spirit of ImageMagick ``-motion-blur``).

    [approximation] Width 2*ceil(radius)+1, weights exp(-i^2 / 2 sigma^2) for i = 0..width-1, sample offsets
    rounded along the angle, edge pixels repeated. ImageMagick quantises differently: close, not equal.
    """
    width = int(2 * np.ceil(radius) + 1)
    weights = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    theta = np.deg2rad(angle_deg)
    h, w = x.shape[:2]
    pad = width
    padded = np.pad(x, ((pad, pad), (pad, pad)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    out = np.zeros_like(x, dtype=np.float64)
    for i, weight in enumerate(weights):
        dx = int(np.ceil(i * np.cos(theta) - 0.5))
        dy = int(np.ceil(i * np.sin(theta) - 0.5))
        out += weight * padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
    return out


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] -> HSV in [0, 1] (the formulas of ``skimage.color.rgb2hsv``)."""
    value = rgb.max(axis=-1)
    delta = np.ptp(rgb, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        saturation = np.where(delta == 0, 0.0, delta / np.where(value == 0, 1, value))
        safe = np.where(delta == 0, 1, delta)
        hue = np.zeros_like(value)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        hue = np.where(r == value, (g - b) / safe, hue)
        hue = np.where(g == value, 2.0 + (b - r) / safe, hue)  # later channels win ties, as in skimage
        hue = np.where(b == value, 4.0 + (r - g) / safe, hue)
    hue = (hue / 6.0) % 1.0
    hue[delta == 0] = 0.0
    return np.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV in [0, 1] -> RGB in [0, 1] (the formulas of ``skimage.color.hsv2rgb``)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6)
    f = h * 6 - sector
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    sector = sector.astype(np.int64) % 6
    choices = np.stack(
        [
            np.stack((v, t, p), axis=-1),
            np.stack((q, v, p), axis=-1),
            np.stack((p, v, t), axis=-1),
            np.stack((p, q, v), axis=-1),
            np.stack((t, p, v), axis=-1),
            np.stack((v, p, q), axis=-1),
        ]
    )  # (6, H, W, 3)
    return np.take_along_axis(choices, sector[None, ..., None].repeat(3, axis=-1), axis=0)[0]


# ---------------------------------------------------------------------------------------------------------
# The corruptions: each maps one uint8 (H, W, 3) image to floats in [0, 255] (or uint8)
# ---------------------------------------------------------------------------------------------------------


def gaussian_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    x = image / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=sigma), 0, 1) * 255


def shot_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    rate = [500, 250, 100, 75, 50][severity - 1]
    x = image / 255.0
    return np.clip(rng.poisson(x * rate) / rate, 0, 1) * 255


def impulse_noise(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper per element, half salt (``skimage.util.random_noise(mode="s&p")`` semantics)."""
    amount = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    x = image / 255.0
    flipped = rng.random(x.shape) <= amount
    salted = rng.random(x.shape) <= 0.5
    x = x.copy()
    x[flipped & salted] = 1.0
    x[flipped & ~salted] = 0.0
    return np.clip(x, 0, 1) * 255


def defocus_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][severity - 1]
    x = (image / 255.0).astype(np.float32)
    kernel = disk_kernel(radius, alias)
    channels = [ndimage.convolve(x[:, :, c], kernel, mode="mirror") for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0, 1) * 255


def glass_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, local pixel copies in the reference's loop order, Gaussian blur again.

    The reference's ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` on numpy views copies ``x[h', w']`` into
    ``x[h, w]`` and leaves ``x[h', w']`` unchanged; that is what is reproduced here (not a true swap).
    """
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][
        severity - 1
    ]
    x = np.uint8(_gaussian_spatial(image / 255.0, sigma) * 255)
    h_size, w_size = x.shape[:2]
    rows = range(h_size - delta, delta, -1)
    cols = range(w_size - delta, delta, -1)
    offsets = rng.integers(-delta, delta, size=(iterations, len(rows), len(cols), 2))  # (dx, dy) per pixel
    for it in range(iterations):
        for i, h in enumerate(rows):
            for j, w in enumerate(cols):
                dx, dy = offsets[it, i, j]
                x[h, w] = x[h + dy, w + dx]
    return np.clip(_gaussian_spatial(x / 255.0, sigma), 0, 1) * 255


def motion_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][severity - 1]
    angle = rng.uniform(-45, 45)
    return np.clip(_motion_blur(image.astype(np.float64), radius, sigma, angle), 0, 255)


def zoom_blur(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    ends = [1.06, 1.11, 1.16, 1.21, 1.26][severity - 1]
    x = (image / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    zooms = np.arange(1, ends, 0.01)
    for zoom_factor in zooms:
        out += _clipped_zoom(x, zoom_factor)
    x = (x + out) / (len(zooms) + 1)
    return np.clip(x, 0, 1) * 255


def snow(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Snow layer (thresholded, zoomed noise) streaked by a motion blur, over a greyish lift of the image."""
    loc, scale, zoom, threshold, radius, sigma, keep = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ][severity - 1]
    x = image.astype(np.float32) / 255.0
    layer = rng.normal(size=x.shape[:2], loc=loc, scale=scale)
    layer = _clipped_zoom(layer[..., None], zoom)[..., 0]
    layer[layer < threshold] = 0
    layer = (np.clip(layer, 0, 1) * 255).astype(np.uint8).astype(np.float64)  # the reference's 8-bit PNG
    angle = rng.uniform(-135, -45)
    layer = np.clip(_motion_blur(layer, radius, sigma, angle), 0, 255).astype(np.uint8) / 255.0
    layer = layer[..., None]
    grey = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
    x = keep * x + (1 - keep) * np.maximum(x, grey * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


def fog(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    amplitude, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][severity - 1]
    x = image / 255.0
    h, w = x.shape[:2]
    mapsize = max(32, 1 << int(np.ceil(np.log2(max(h, w)))))
    max_value = x.max()
    x = x + amplitude * plasma_fractal(rng, mapsize, decay)[:h, :w][..., None]
    return np.clip(x * max_value / (max_value + amplitude), 0, 1) * 255


def brightness(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    lift = [0.05, 0.1, 0.15, 0.2, 0.3][severity - 1]
    hsv = rgb_to_hsv(image / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + lift, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def contrast(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = [0.75, 0.5, 0.4, 0.3, 0.15][severity - 1]
    x = image / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * factor + means, 0, 1) * 255


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix mapping three (x, y) points ``src`` onto ``dst`` (OpenCV ``getAffineTransform``)."""
    a = np.concatenate([src.astype(np.float64), np.ones((3, 1))], axis=1)  # (3, 3)
    return np.linalg.solve(a, dst.astype(np.float64)).T  # (2, 3)


def elastic_transform(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Random affine warp (mirror border) then a smooth random displacement field, bilinear."""
    size = 32
    alpha, sigma, affine = [
        (size * 0, size * 0, size * 0.08),
        (size * 0.05, size * 0.2, size * 0.07),
        (size * 0.08, size * 0.06, size * 0.06),
        (size * 0.1, size * 0.04, size * 0.05),
        (size * 0.1, size * 0.03, size * 0.03),
    ][severity - 1]
    x = np.asarray(image, dtype=np.float32) / 255.0
    h, w = x.shape[:2]
    centre = np.float32([w, h]) // 2
    half_side = min(h, w) // 3
    src = np.float32(
        [centre + half_side, [centre[0] + half_side, centre[1] - half_side], centre - half_side]
    )  # (x, y) points
    dst = src + rng.uniform(-affine, affine, size=src.shape).astype(np.float32)
    forward = np.vstack([_affine_from_points(src, dst), [0, 0, 1]])  # (x, y, 1) -> (x', y', 1)
    inverse = np.linalg.inv(forward)
    # scipy works in (row, col) = (y, x): output[o] = input[matrix @ o + offset]
    matrix = inverse[[1, 0]][:, [1, 0]]
    offset = inverse[[1, 0], 2]
    warped = np.stack(
        [
            ndimage.affine_transform(x[..., c], matrix, offset=offset, order=1, mode="mirror")
            for c in range(x.shape[2])
        ],
        axis=-1,
    )
    dx = (
        _gaussian_spatial(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    ).astype(np.float32)
    dy = (
        _gaussian_spatial(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    ).astype(np.float32)
    ys, xs, zs = np.meshgrid(np.arange(h), np.arange(w), np.arange(x.shape[2]), indexing="ij")
    coords = np.stack([ys + dy[..., None], xs + dx[..., None], zs]).reshape(3, -1)
    out = ndimage.map_coordinates(warped, coords, order=1, mode="reflect").reshape(x.shape)
    return np.clip(out, 0, 1) * 255


def pixelate(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = [0.95, 0.9, 0.85, 0.75, 0.65][severity - 1]
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    small = pil.resize((int(w * factor), int(h * factor)), Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.BOX))


def jpeg_compression(image: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    quality = [80, 65, 58, 50, 40][severity - 1]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"))


_FUNCTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "defocus_blur": defocus_blur,
    "glass_blur": glass_blur,
    "motion_blur": motion_blur,
    "zoom_blur": zoom_blur,
    "snow": snow,
    "fog": fog,
    "brightness": brightness,
    "contrast": contrast,
    "elastic_transform": elastic_transform,
    "pixelate": pixelate,
    "jpeg_compression": jpeg_compression,
}


def image_rng(seed: int, name: str, severity: int, index: int) -> np.random.Generator:
    """The generator of one image: keyed by (seed, corruption, severity, image index)."""
    return np.random.default_rng(
        np.random.SeedSequence([seed % 2**63, CORRUPTIONS.index(name), severity, index])
    )


def corrupt(images: np.ndarray, name: str, severity: int, seed: int, *, first_index: int = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` (1-5) to uint8 RGB images (N, H, W, 3) or (H, W, 3).

    CIFAR-10-C protocol (``specs/tta-lsa.md`` §6.2): one image at a time with its own generator, keyed by
    ``(seed, name, severity, first_index + i)``; so corrupting a batch in chunks (passing each chunk's
    ``first_index``) gives the same result as one call. Returns uint8 of the input's shape.
    """
    if name not in _FUNCTIONS:
        hint = (
            " (it needs the reference's frost photographs, which are not shipped)" if name == "frost" else ""
        )
        raise ValueError(f"unknown corruption {name!r}{hint}; valid choices: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"invalid severity {severity!r} for {name}; valid choices: 1, 2, 3, 4, 5")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"corrupt: images must be uint8, got {images.dtype}")
    single = images.ndim == 3
    batch = images[None] if single else images
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"corrupt: images must have shape (N, H, W, 3) or (H, W, 3), got {images.shape}")
    function = _FUNCTIONS[name]
    out = np.empty_like(batch)
    for i, image in enumerate(batch):
        rng = image_rng(seed, name, severity, first_index + i)
        out[i] = np.uint8(function(np.ascontiguousarray(image), severity, rng))  # truncates, as the reference
    return out[0] if single else out
