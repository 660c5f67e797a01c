"""Render one glyph onto a background: 4x supersampled, affine-jittered, stroked, box-downsampled to RGB.

``specs/corpora.md`` (glyph-digits, Build): digit height 60-85 % of the image, rotation +-15 deg, shear
+-0.2, stroke 0-1 px, jitter +-2 px, ink with a luminance contrast of at least 0.35 to the background under
the glyph.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

SUPERSAMPLE = 4
MASK_FONT_SIZE = 160
MIN_INK_CONTRAST = 0.35


class GlyphError(ValueError):
    """A face renders an empty or unusable glyph."""


@dataclass(frozen=True)
class GlyphStyle:
    """The random draw of one render (recorded in ``labels.csv``)."""

    height_frac: float  # glyph height / image height
    angle_deg: float
    shear: float
    stroke_px: float  # at output resolution
    dx_px: float
    dy_px: float

    @staticmethod
    def draw(rng: np.random.Generator) -> GlyphStyle:
        return GlyphStyle(
            height_frac=float(rng.uniform(0.60, 0.85)),
            angle_deg=float(rng.uniform(-15, 15)),
            shear=float(rng.uniform(-0.2, 0.2)),
            stroke_px=float(rng.uniform(0, 1)),
            dx_px=float(rng.uniform(-2, 2)),
            dy_px=float(rng.uniform(-2, 2)),
        )


CANONICAL = GlyphStyle(height_frac=0.75, angle_deg=0.0, shear=0.0, stroke_px=0.0, dx_px=0.0, dy_px=0.0)


def glyph_mask(font: ImageFont.FreeTypeFont, char: str) -> np.ndarray:
    """The ink coverage of ``char`` cropped to its ink box, uint8 (h, w)."""
    left, top, right, bottom = font.getbbox(char)
    pad = 4
    width, height = max(1, right - left) + 2 * pad, max(1, bottom - top) + 2 * pad
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).text((pad - left, pad - top), char, font=font, fill=255)
    mask = np.asarray(canvas)
    rows, cols = np.flatnonzero(mask.max(axis=1) > 0), np.flatnonzero(mask.max(axis=0) > 0)
    if rows.size == 0 or rows[-1] - rows[0] < 4 or cols[-1] - cols[0] < 1:
        raise GlyphError(f"glyph {char!r} is empty or degenerate")
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


class FaceGlyphs:
    """Cached glyph masks of one font file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._font = ImageFont.truetype(str(path), MASK_FONT_SIZE)
        self._masks: dict[str, np.ndarray] = {}

    def mask(self, char: str) -> np.ndarray:
        if char not in self._masks:
            self._masks[char] = glyph_mask(self._font, char)
        return self._masks[char]


@functools.lru_cache(maxsize=64)
def face_glyphs(path: Path) -> FaceGlyphs:
    """A process-wide cache of :class:`FaceGlyphs` (a face is used by several build stages)."""
    return FaceGlyphs(path)


def place_glyph(mask: np.ndarray, style: GlyphStyle, size: int) -> np.ndarray:
    """Coverage (float32, (size*4, size*4), in [0, 1]) of the glyph scaled, sheared, rotated and shifted."""
    canvas = size * SUPERSAMPLE
    h, w = mask.shape
    scale = style.height_frac * canvas / h
    scale = min(scale, 0.92 * canvas / w)  # wide glyphs: keep them inside
    theta = np.deg2rad(style.angle_deg)
    rotate = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    shear = np.array([[1.0, style.shear], [0.0, 1.0]])
    linear = rotate @ shear * scale  # mask (x, y) -> canvas (x, y), about the centres
    centre_out = np.array([canvas / 2 + style.dx_px * SUPERSAMPLE, canvas / 2 + style.dy_px * SUPERSAMPLE])
    centre_in = np.array([w / 2, h / 2])
    inverse = np.linalg.inv(linear)
    offset = centre_in - inverse @ centre_out
    coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    placed = Image.fromarray(mask).transform(
        (canvas, canvas), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC, fillcolor=0
    )
    coverage = np.asarray(placed, dtype=np.float32) / 255.0
    radius = int(round(style.stroke_px * SUPERSAMPLE))
    if radius > 0:  # thicken the stroke by `radius` supersampled pixels
        coverage = ndimage.maximum_filter(coverage, size=2 * radius + 1, mode="constant")
    return coverage


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Relative luminance in [0, 1] of RGB values in [0, 255] (Rec. 709 weights)."""
    return (rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722) / 255.0


def choose_ink(
    background: np.ndarray, coverage: np.ndarray, rng: np.random.Generator, tries: int = 24
) -> np.ndarray:
    """A random ink colour whose luminance differs by >= 0.35 from the background under the glyph."""
    weights = coverage / max(float(coverage.sum()), 1e-6)
    local = float((luminance(background) * weights).sum())
    for _ in range(tries):
        ink = rng.integers(0, 256, size=3).astype(np.float32)
        if abs(float(luminance(ink)) - local) >= MIN_INK_CONTRAST:
            return ink
    return np.zeros(3, np.float32) if local >= 0.5 else np.full(3, 255, np.float32)


def box_downsample(image: np.ndarray, factor: int = SUPERSAMPLE) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks: (H*f, W*f, ...) -> (H, W, ...)."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    return image.reshape(h, factor, w, factor, *image.shape[2:]).mean(axis=(1, 3))


def compose(background: np.ndarray, coverage: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """Ink over background at supersampled size, box-downsampled: uint8 RGB (size, size, 3)."""
    alpha = coverage[..., None]
    blended = background * (1 - alpha) + ink * alpha
    return np.clip(np.rint(box_downsample(blended)), 0, 255).astype(np.uint8)


def canonical_coverage(glyphs: FaceGlyphs, char: str, size: int = 32) -> np.ndarray:
    """Black-on-white reading view of a glyph: coverage (size, size) in [0, 1], centred, 75 % high."""
    return box_downsample(place_glyph(glyphs.mask(char), CANONICAL, size))
