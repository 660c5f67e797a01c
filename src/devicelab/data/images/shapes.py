"""Flat shapes, fills and textured backgrounds of the ``glyph-world`` toy scenes (numpy + Pillow only).

``specs/corpora.md`` (glyph-world): 8 shapes, 8 colours, backgrounds = colour x texture {plain, striped,
dotted, checkered}; base shapes are flat single colours, subjects carry a fill that no base image has.
Everything is drawn 4x supersampled and box-downsampled.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 4
SHAPES = ("circle", "square", "triangle", "ring", "cross", "diamond", "star", "hexagon")
PLURALS = {shape: shape + ("es" if shape.endswith(("s", "x")) else "s") for shape in SHAPES}
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 190),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
TEXTURES = ("plain", "striped", "dotted", "checkered")
POSITIONS = ("center", "left", "right", "top", "bottom")
SIZES = ("small", "large")
COUNTS = ("one", "two")
SUBJECT_FILLS = ("radial", "checkered", "striped", "split", "outlined", "dotted")
# shape radius in output pixels, and the anchor of each position (x, y) in a 32x32 image
RADIUS = {"small": 4.5, "large": 7.5}
ANCHORS = {
    "center": (0.5, 0.5),
    "left": (0.28, 0.5),
    "right": (0.72, 0.5),
    "top": (0.5, 0.28),
    "bottom": (0.5, 0.72),
}


def _regular_polygon(cx: float, cy: float, r: float, n: int, phase: float) -> list[tuple[float, float]]:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]


def shape_mask(shape: str, canvas: int, centres: list[tuple[float, float]], radius: float) -> np.ndarray:
    """Coverage (canvas, canvas) uint8 of ``shape`` drawn at each centre (canvas pixels) with ``radius``."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPES)}")
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    r = radius
    for cx, cy in centres:
        if shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        elif shape == "ring":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
            inner = 0.55 * r
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
        elif shape == "square":
            s = 0.85 * r
            draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=255)
        elif shape == "triangle":
            draw.polygon(_regular_polygon(cx, cy + 0.2 * r, 1.1 * r, 3, -np.pi / 2), fill=255)
        elif shape == "cross":
            w = 0.3 * r
            draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=255)
            draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=255)
        elif shape == "diamond":
            draw.polygon(_regular_polygon(cx, cy, r, 4, -np.pi / 2), fill=255)
        elif shape == "star":
            outer = _regular_polygon(cx, cy, 1.1 * r, 5, -np.pi / 2)
            inner = _regular_polygon(cx, cy, 0.45 * r, 5, -np.pi / 2 + np.pi / 5)
            draw.polygon([p for pair in zip(outer, inner) for p in pair], fill=255)
        elif shape == "hexagon":
            draw.polygon(_regular_polygon(cx, cy, r, 6, 0.0), fill=255)
    return np.asarray(image)


def texture_tint(colour: tuple[int, int, int]) -> np.ndarray:
    """The second colour of a textured background: darker for light colours, lighter otherwise."""
    c = np.array(colour, dtype=np.float32)
    luminance = (c @ np.array([0.2126, 0.7152, 0.0722])) / 255
    return c * 0.6 if luminance > 0.6 else c + 0.45 * (255 - c)


@functools.lru_cache(maxsize=4)
def _grid(canvas: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:canvas, 0:canvas].astype(np.float32)
    return ys, xs


def pattern_mask(texture: str, canvas: int, period_px: float, phase: tuple[float, float]) -> np.ndarray:
    """Where the second colour of ``texture`` goes: bool (canvas, canvas); ``period_px`` in canvas pixels."""
    if texture == "plain":
        return np.zeros((canvas, canvas), dtype=bool)
    ys, xs = _grid(canvas)
    xs, ys = xs + np.float32(phase[0]), ys + np.float32(phase[1])
    if texture == "plain":
        return np.zeros((canvas, canvas), dtype=bool)
    if texture == "striped":
        return ((xs + ys) // (period_px / 2)) % 2 == 1
    if texture == "checkered":
        return ((xs // (period_px / 2)) + (ys // (period_px / 2))) % 2 == 1
    if texture == "dotted":
        dx = (xs % period_px) - period_px / 2
        dy = (ys % period_px) - period_px / 2
        return dx**2 + dy**2 <= (0.22 * period_px) ** 2
    raise ValueError(f"unknown texture {texture!r}; valid: {', '.join(TEXTURES)}")


def background(colour: str, texture: str, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """A background colour with its texture, float32 (canvas, canvas, 3)."""
    base = np.array(COLOURS[colour], dtype=np.float32)
    out = np.empty((canvas, canvas, 3), dtype=np.float32)
    out[:] = base
    period = 6 * SUPERSAMPLE
    if texture != "plain":
        dx, dy = (int(v) for v in rng.integers(0, period, size=2))  # random phase, in canvas pixels
        mask = _texture_tile(texture, canvas + period, period)[dy : dy + canvas, dx : dx + canvas]
        out[mask] = texture_tint(COLOURS[colour])
    return out


@functools.lru_cache(maxsize=16)
def _texture_tile(texture: str, canvas: int, period: int) -> np.ndarray:
    return pattern_mask(texture, canvas, period, (0.0, 0.0))


def subject_fill(fill: str, colours: tuple[str, ...], canvas: int, centres, radius: float) -> np.ndarray:
    """The multi-colour fill of a subject, float32 (canvas, canvas, 3), aligned to its shape's centre(s)."""
    palette = [np.array(COLOURS[c], dtype=np.float32) for c in colours]
    ys, xs = _grid(canvas)
    # distance to the nearest centre and coordinates relative to it
    rel = np.stack([np.stack([xs - cx, ys - cy]) for cx, cy in centres])  # (k, 2, H, W)
    nearest = np.argmin((rel**2).sum(axis=1), axis=0)
    dx = np.take_along_axis(rel[:, 0], nearest[None], 0)[0]
    dy = np.take_along_axis(rel[:, 1], nearest[None], 0)[0]
    distance = np.sqrt(dx**2 + dy**2) / radius
    if fill == "radial":  # three concentric bands
        index = np.clip((distance * 3 / 1.1).astype(int), 0, 2)
    elif fill == "checkered":
        cell = radius / 2.2
        index = ((np.floor(dx / cell) + np.floor(dy / cell)) % 2).astype(int)
    elif fill == "striped":
        index = (np.floor(dy / (radius / 2.5)) % 2).astype(int)
    elif fill == "split":
        index = (dx > 0).astype(int)
    elif fill == "outlined":
        index = (distance < 0.62).astype(int)
    elif fill == "dotted":
        cell = radius / 2
        index = (((dx % cell) - cell / 2) ** 2 + ((dy % cell) - cell / 2) ** 2 <= (0.3 * cell) ** 2).astype(
            int
        )
    else:
        raise ValueError(f"unknown subject fill {fill!r}; valid: {', '.join(SUBJECT_FILLS)}")
    index = np.minimum(index, len(palette) - 1)
    return np.stack(palette)[index]


def centres_for(position: str, size: str, count: str, size_px: int, rng: np.random.Generator) -> list:
    """Shape centres (output pixels) for a position, size and count, with +-1 px jitter."""
    ax, ay = ANCHORS[position]
    cx, cy = ax * size_px + rng.uniform(-1, 1), ay * size_px + rng.uniform(-1, 1)
    if count == "one":
        return [(cx, cy)]
    gap = RADIUS[size] + 1.0
    if position in ("top", "bottom"):  # side by side across the image
        return [(cx - gap, cy), (cx + gap, cy)]
    return [(cx, cy - gap), (cx, cy + gap)]


def render_scene(
    shape: str,
    fill_rgb_or_subject,
    bg_colour: str,
    texture: str,
    position: str,
    size: str,
    count: str,
    rng: np.random.Generator,
    size_px: int = 32,
) -> np.ndarray:
    """One scene: uint8 RGB (size_px, size_px, 3).

    ``fill_rgb_or_subject`` is a colour name (flat base shape) or ``(fill, colours)`` of a subject.
    """
    canvas = size_px * SUPERSAMPLE
    centres = [
        (x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in centres_for(position, size, count, size_px, rng)
    ]
    radius = RADIUS[size] * SUPERSAMPLE
    alpha = shape_mask(shape, canvas, centres, radius).astype(np.float32)[..., None] / 255
    back = background(bg_colour, texture, canvas, rng)
    if isinstance(fill_rgb_or_subject, str):
        ink = np.array(COLOURS[fill_rgb_or_subject], dtype=np.float32)
    else:
        fill, colours = fill_rgb_or_subject
        ink = subject_fill(fill, tuple(colours), canvas, centres, radius)
    blended = back * (1 - alpha) + ink * alpha
    small = blended.reshape(size_px, SUPERSAMPLE, size_px, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)
