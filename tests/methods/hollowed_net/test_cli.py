"""``devicelab personalize`` on a tiny pipeline saved with save_pretrained."""

from __future__ import annotations

import json

import pytest
import torch

from devicelab.methods.hollowed_net.cli import personalize_command
from devicelab.methods.hollowed_net.pipeline import TinySDConfig, build_tiny_pipeline
from devicelab.methods.hollowed_net.transfer import LORA_WEIGHT_NAME, METADATA_NAME

WORDS = "a red green circle square on the left right background".split()


@pytest.fixture
def tiny_model(tmp_path):
    from PIL import Image

    sizes = TinySDConfig(vae_channels=(8, 16, 16), unet_channels=(8, 16, 16, 16))
    build_tiny_pipeline(WORDS, tmp_path / "tok", sizes).save_pretrained(str(tmp_path / "model"))
    (tmp_path / "images").mkdir()
    for k in range(2):
        Image.new("RGB", (48, 40), (200, 20 + 100 * k, 20)).save(tmp_path / "images" / f"{k:02d}.png")
    return tmp_path


def test_personalize_writes_a_pipeline_loadable_adapter_and_prints_both_peaks(tiny_model, capsys):
    from diffusers import StableDiffusionPipeline

    out = tiny_model / "adapter"
    rc = personalize_command(
        [
            "--model",
            str(tiny_model / "model"),
            "--images",
            str(tiny_model / "images"),
            "--prompt",
            "a sks circle",
            "--hollow",
            "3",
            "--steps",
            "3",
            "--lr",
            "1e-2",
            "--out",
            str(out),
            "--fuse",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "training peak (accounted, step 2)" in text and "inference peak (accounted, batch 1)" in text
    assert "training / inference" in text and "pre-computed a_m on disk" in text
    meta = json.loads((out / METADATA_NAME).read_text())
    assert meta["m"] == 3 and meta["rank"] == 4 and len(meta["targets"]) == 120
    assert not (out / ".work").exists() and (out / "unet-fused" / "config.json").is_file()

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_model / "model"), local_files_only=True)
    generator = torch.Generator().manual_seed(0)
    before = pipe("a sks circle", num_inference_steps=2, output_type="np", generator=generator).images
    pipe.load_lora_weights(str(out), weight_name=LORA_WEIGHT_NAME)
    generator = torch.Generator().manual_seed(0)
    after = pipe("a sks circle", num_inference_steps=2, output_type="np", generator=generator).images
    assert after.shape == (1, 32, 32, 3) and abs(after - before).max() > 0  # the adapter changes the output


def test_personalize_names_bad_inputs(tiny_model, capsys):
    rc = personalize_command(
        [
            "--model",
            str(tiny_model / "nowhere"),
            "--images",
            str(tiny_model / "images"),
            "--prompt",
            "a sks circle",
        ]
    )
    assert rc == 2 and "nowhere/model_index.json is missing" in capsys.readouterr().err
    (tiny_model / "empty").mkdir()
    rc = personalize_command(
        [
            "--model",
            str(tiny_model / "model"),
            "--images",
            str(tiny_model / "empty"),
            "--prompt",
            "a sks circle",
        ]
    )
    assert rc == 2 and "empty: no .png/.jpg images" in capsys.readouterr().err
