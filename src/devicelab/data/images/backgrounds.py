"""Backgrounds for the glyph corpora: plain colours, gradients, value noise and GIMP ``.pat`` textures.

``specs/corpora.md`` (glyph-digits): GIMP's tileable patterns
(``usr/share/gimp/2.0/patterns/<Folder>/*.pat``) are read here because Pillow cannot open them. A ``.pat``
file is five big-endian uint32 (header size, version, width, height, bytes per pixel), the magic ``GPAT``, a
NUL-terminated name, then the pixels (1-4 bytes each: grey, grey+alpha, RGB, RGBA).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


class PatternError(ValueError):
    """A ``.pat`` file is not a valid GIMP pattern; the message names the file."""


@dataclass(frozen=True)
class Pattern:
    """A tileable texture: RGB uint8 pixels (H, W, 3), its name, category folder, source file and package."""

    name: str
    category: str
    pixels: np.ndarray
    member: str
    package: str = ""


def read_pat(path: Path) -> tuple[str, np.ndarray]:
    """Read a GIMP pattern file: (name, RGB uint8 array (H, W, 3))."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise PatternError(f"{path}: too short for a GIMP pattern header ({len(data)} bytes)")
    header_size, version, width, height, depth = struct.unpack(">5I", data[:20])
    if data[20:24] != b"GPAT":
        raise PatternError(f"{path}: bad magic {data[20:24]!r} (expected b'GPAT')")
    if version != 1 or depth not in (1, 2, 3, 4) or header_size < 24 or width == 0 or height == 0:
        raise PatternError(f"{path}: unsupported pattern (version {version}, {width}x{height}, {depth} B/px)")
    name = data[24:header_size].split(b"\0", 1)[0].decode("utf-8", errors="replace")
    need = width * height * depth
    pixels = (
        np.frombuffer(data, dtype=np.uint8, count=need, offset=header_size)
        if len(data) >= (header_size + need)
        else None
    )
    if pixels is None:
        raise PatternError(f"{path}: truncated pixel data ({len(data) - header_size} of {need} bytes)")
    pixels = pixels.reshape(height, width, depth)
    if depth in (1, 2):
        rgb = np.repeat(pixels[..., :1], 3, axis=-1)
    else:
        rgb = pixels[..., :3]
    if depth in (2, 4):  # composite alpha over mid grey
        alpha = pixels[..., -1:].astype(np.float32) / 255
        rgb = (rgb * alpha + 128 * (1 - alpha)).astype(np.uint8)
    return name, np.ascontiguousarray(rgb)


def load_patterns(folder: Path, package_root: Path | None = None, package: str = "") -> list[Pattern]:
    """Every ``<Category>/*.pat`` under ``folder`` (sorted), with members relative to ``package_root``."""
    patterns = []
    for path in sorted(Path(folder).rglob("*.pat")):
        name, pixels = read_pat(path)
        member = "./" + path.relative_to(package_root).as_posix() if package_root else path.as_posix()
        patterns.append(Pattern(name, path.parent.name, pixels, member, package))
    return patterns


def load_photos(
    folder: Path, package_root: Path, category: str, short_side: int = 192, package: str = ""
) -> list[Pattern]:
    """Photographs (.jpg/.png, sorted) downscaled to ``short_side`` pixels, as crop sources like patterns."""
    photos = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except OSError as e:
            raise PatternError(f"{path}: cannot decode image ({e})") from e
        scale = short_side / min(rgb.size)
        rgb = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BOX
        )
        member = "./" + path.relative_to(package_root).as_posix()
        photos.append(Pattern(path.stem, category, np.asarray(rgb), member, package))
    return photos


def random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=3).astype(np.float32)


def plain(size: int, rng: np.random.Generator) -> np.ndarray:
    """A flat random colour, float32 (size, size, 3) in [0, 255]."""
    return np.broadcast_to(random_colour(rng), (size, size, 3)).astype(np.float32)


def gradient(size: int, rng: np.random.Generator) -> np.ndarray:
    """A linear gradient between two random colours along a random direction."""
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1) - 0.5
    t = np.clip(xs * np.cos(angle) + ys * np.sin(angle) + 0.5, 0, 1)[..., None]
    return (1 - t) * random_colour(rng) + t * random_colour(rng)


def value_noise(size: int, rng: np.random.Generator, cells: int | None = None) -> np.ndarray:
    """Smooth coloured value noise: a random grid of colours, bicubically upsampled, between two colours."""
    cells = cells or int(rng.integers(3, 9))
    grid = rng.random((cells, cells)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC))
    t = np.clip(smooth, 0, 1)[..., None]
    return (1 - t) * random_colour(rng) + t * random_colour(rng)


def paper_like(size: int, rng: np.random.Generator) -> np.ndarray:
    """A light, fine-grained procedural paper (used where no GIMP patterns are available)."""
    tone = np.array([rng.uniform(200, 250), rng.uniform(190, 240), rng.uniform(160, 225)], dtype=np.float32)
    grain = value_noise(size, rng, cells=int(rng.integers(12, 24))).mean(axis=-1, keepdims=True) / 255 - 0.5
    fibres = rng.normal(0, 6, size=(size, size, 1)).astype(np.float32)
    return np.clip(tone + 30 * grain + fibres, 0, 255)


def texture(pattern: Pattern, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of a tiled pattern, scaled by 0.5-1.5, randomly flipped/rotated, brightness jittered."""
    pixels = pattern.pixels
    scale = rng.uniform(0.5, 1.5)
    h, w = pixels.shape[:2]
    new_h, new_w = max(4, round(h * scale)), max(4, round(w * scale))
    tile = np.asarray(Image.fromarray(pixels).resize((new_w, new_h), Image.Resampling.BILINEAR))
    reps = (size // new_h + 2, size // new_w + 2, 1)
    tiled = np.tile(tile, reps)
    top, left = int(rng.integers(0, new_h)), int(rng.integers(0, new_w))
    crop = tiled[top : top + size, left : left + size].astype(np.float32)
    crop = np.rot90(crop, k=int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.clip(crop * rng.uniform(0.85, 1.15), 0, 255)


PROCEDURAL = {"plain": plain, "gradient": gradient, "noise": value_noise, "paper": paper_like}
