"""Fixtures: tiny U-Nets from config dicts and a small generated glyph-world-shaped folder."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)

SHAPES = ("circle", "square")
COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}
BGS = {"white": (240, 240, 240), "black": (20, 20, 20)}
POSITIONS = {"left": (9, 16), "right": (23, 16), "center": (16, 16)}


def _draw(shape: str, color, bg, center, radius: int, pattern: bool = False) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (32, 32), bg)
    d = ImageDraw.Draw(im)
    x, y = center
    box = (x - radius, y - radius, x + radius, y + radius)
    if shape == "circle":
        d.ellipse(box, fill=color)
    else:
        d.rectangle(box, fill=color)
    if pattern:  # a subject: a two-colour instance no base image has
        d.rectangle((x - radius // 2, y - radius // 2, x + radius // 2, y + radius // 2), fill=(250, 220, 0))
    return np.asarray(im)


def make_glyph_world(
    root: Path, n_train: int = 24, n_val: int = 8, n_subjects: int = 1, seed: int = 0
) -> Path:
    """A glyph-world-shaped folder (corpora.md layout) with a closed vocabulary, generated with Pillow."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        folder = root / "base" / split
        folder.mkdir(parents=True)
        rows = []
        for i in range(n):
            shape = SHAPES[rng.integers(len(SHAPES))]
            color = list(COLORS)[rng.integers(len(COLORS))]
            bg = list(BGS)[rng.integers(len(BGS))]
            pos = list(POSITIONS)[rng.integers(len(POSITIONS))]
            size = ("small", "large")[rng.integers(2)]
            img = _draw(shape, COLORS[color], BGS[bg], POSITIONS[pos], 4 if size == "small" else 7)
            name = f"{i:06d}.png"
            Image.fromarray(img).save(folder / name)
            text = f"one {size} {color} {shape} on a {bg} plain background at the {pos}"
            rows.append(
                {
                    "file_name": name,
                    "text": text,
                    "shape": shape,
                    "color": color,
                    "bg": bg,
                    "texture": "plain",
                    "position": pos,
                    "size": size,
                    "count": "one",
                }
            )
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    subjects = root / "subjects"
    subjects.mkdir()
    with open(subjects / "subjects.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject_id", "class_token", "instance_prompt"])
        prompts = []
        for s in range(n_subjects):
            sid = f"subject{s:02d}"
            shape = SHAPES[s % len(SHAPES)]
            w.writerow([sid, shape, f"a sks {shape}"])
            (subjects / sid).mkdir()
            for k in range(5):
                pos = list(POSITIONS)[k % 3]
                img = _draw(shape, (200, 0, 200), list(BGS.values())[k % 2], POSITIONS[pos], 7, pattern=True)
                Image.fromarray(img).save(subjects / sid / f"{k:02d}.png")
            for bg in BGS:
                prompts.append(
                    {
                        "subject_id": sid,
                        "prompt": f"a sks {shape} on a {bg} plain background",
                        "requests": {"shape": shape, "bg": bg},
                    }
                )
    (subjects / "eval_prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    words = sorted(
        {
            w
            for r in (root / "base" / "train" / "metadata.jsonl").read_text().splitlines()
            for w in json.loads(r)["text"].split()
        }
    )
    (root / "vocab.json").write_text(json.dumps({"words": words}))
    return root


@pytest.fixture(scope="session")
def glyph_world(tmp_path_factory) -> Path:
    return make_glyph_world(tmp_path_factory.mktemp("glyph-world"))


@pytest.fixture
def tiny_sd_unet():
    from diffusers import UNet2DConditionModel

    from devicelab.methods.hollowed_net.unet_configs import tiny_sd_unet_config

    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(
        tiny_sd_unet_config(cross_attention_dim=32, sample_size=16)
    ).eval()


@pytest.fixture
def diffusers_test_unet():
    from diffusers import UNet2DConditionModel

    from devicelab.methods.hollowed_net.unet_configs import diffusers_test_unet_config

    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(diffusers_test_unet_config()).eval()
