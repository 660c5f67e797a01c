"""``devicelab personalize`` and ``devicelab export``: checked options, nothing half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from devicelab.core.checkpoint import save_model
from devicelab.core.config import resolve_config, to_dict

from .conftest import cli, one_line_error


@pytest.fixture
def sd_folder(tmp_path: Path) -> Path:
    """What --hollow is checked against: a pipeline folder's unet/config.json (SD-1.x topology)."""
    unet = tmp_path / "sd" / "unet"
    unet.mkdir(parents=True)
    blocks = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    (unet / "config.json").write_text(
        json.dumps({"down_block_types": blocks, "up_block_types": blocks, "layers_per_block": 2})
    )
    (tmp_path / "images").mkdir()
    return tmp_path / "sd"


def test_hollow_depth_out_of_range_names_the_range(sd_folder, tmp_path):
    out = tmp_path / "adapter"
    result = cli(
        "personalize", "--model", str(sd_folder), "--images", str(tmp_path / "images"),
        "--prompt", "a sks dog", "--hollow", "40", "--out", str(out),
    )  # fmt: skip
    one_line_error(result, "--hollow 40", "0 .. 11", "-1 for plain LoRA")
    assert not out.exists() and not (tmp_path / "hollowed-lora").exists()


def test_personalize_zero_steps_is_rejected(sd_folder, tmp_path):
    result = cli(
        "personalize", "--model", str(sd_folder), "--images", str(tmp_path / "images"),
        "--prompt", "a sks dog", "--steps", "0",
    )  # fmt: skip
    one_line_error(result, "--steps 0", "at least 1")


def test_personalize_help_gives_help_and_defaults():
    result = cli("personalize", "--help")
    assert result.returncode == 0
    assert "LoRA rank r (default: 4)" in result.stdout and "(default: 500)" in result.stdout


def _kws_run(tmp_path: Path, weights_fn=None) -> Path:
    """A finished-looking kws-ssn run folder holding one trained model, ssn-seed0."""
    from devicelab.methods.kws_ssn.config import KwsSsnConfig
    from devicelab.methods.kws_ssn.recipe import build_bcresnet

    config = resolve_config(KwsSsnConfig, "smoke")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    import yaml

    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(config)))
    model = build_bcresnet(config, "ssn")
    if weights_fn:
        weights_fn(model)
    save_model(run_dir / "models" / "ssn-seed0", model, {"family": "bcresnet", "variant": "ssn"})
    return run_dir


def test_export_of_a_model_that_is_not_there_lists_the_ones_that_are(tmp_path):
    run_dir = _kws_run(tmp_path)
    out = tmp_path / "kws.onnx"
    result = cli("export", "kws-ssn", str(run_dir), "--onnx", str(out), "--variant", "bn", "--seed", "3")
    one_line_error(result, "bn-seed3.safetensors: no such trained model", "available: ssn-seed0")
    assert not out.exists()


def test_export_refuses_non_finite_weights(tmp_path):
    def poison(model):
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))

    run_dir = _kws_run(tmp_path, poison)
    out = tmp_path / "kws.onnx"
    one_line_error(cli("export", "kws-ssn", str(run_dir), "--onnx", str(out)), "non-finite")
    assert not out.exists() and not list(tmp_path.glob(".kws*"))


def test_export_of_a_truncated_model_file_names_it(tmp_path):
    run_dir = _kws_run(tmp_path)
    weights = run_dir / "models" / "ssn-seed0.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])
    one_line_error(cli("export", "kws-ssn", str(run_dir), "--onnx", str(tmp_path / "k.onnx")), str(weights))
