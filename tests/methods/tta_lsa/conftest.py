"""Fixtures for tta-lsa: a tiny split model and a tiny glyph-digits-layout folder drawn with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from devicelab.nn.tiny_cnn import TinyCNN, TinyCNNConfig

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors run fastest (and least disturbed by other load) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_model() -> TinyCNN:
    torch.manual_seed(0)
    model = TinyCNN(TinyCNNConfig(num_classes=10, widths=(8, 16, 16)))
    model.eval()
    return model


@pytest.fixture
def image_batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 3, 32, 32, generator=g)


def _font(name: str, size: int) -> ImageFont.ImageFont:
    path = FONT_DIR / name
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def write_glyph_fixture(
    root: Path, train_per_class: int = 30, test_per_class: int = 35, seed: int = 0
) -> Path:
    """Digits 0–9 in two font domains on coloured backgrounds, in the glyph-digits layout
    (``<domain>/<digit>/<id>.png`` and ``splits/<domain>_{train,test}.txt``)."""
    rng = np.random.default_rng(seed)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    domains = {"serif": "DejaVuSerif.ttf", "sans": "DejaVuSans.ttf"}
    for domain, font_file in domains.items():
        lines = {"train": [], "test": []}
        for digit in range(10):
            folder = root / domain / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(train_per_class + test_per_class):
                bg = tuple(int(v) for v in rng.integers(0, 120, 3))
                ink = tuple(int(v) for v in rng.integers(150, 256, 3))
                img = Image.new("RGB", (32, 32), bg)
                draw = ImageDraw.Draw(img)
                font = _font(font_file, int(rng.integers(18, 26)))
                draw.text(
                    (int(rng.integers(4, 12)), int(rng.integers(0, 6))), str(digit), fill=ink, font=font
                )
                img = img.rotate(float(rng.uniform(-12, 12)), fillcolor=bg)
                rel = f"{domain}/{digit}/{i:04d}.png"
                img.save(root / rel)
                lines["train" if i < train_per_class else "test"].append(f"{rel} {digit}")
        for split, items in lines.items():
            (root / "splits" / f"{domain}_{split}.txt").write_text("\n".join(items) + "\n")
    return root


@pytest.fixture(scope="session")
def glyph_fixture(tmp_path_factory) -> Path:
    return write_glyph_fixture(tmp_path_factory.mktemp("glyph-fixture"))
