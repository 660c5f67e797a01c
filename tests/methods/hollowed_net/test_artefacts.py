"""The cached tiny-sd and evaluators are keyed by the config that built them; their checks hold on load."""

import json
from dataclasses import replace

import pytest

from devicelab.methods.hollowed_net.artefacts import (
    GateFailedError,
    check_evaluators,
    ensure_evaluators,
    ensure_tiny_sd,
)
from devicelab.methods.hollowed_net.evaluators import EvaluatorConfig
from devicelab.methods.hollowed_net.pretrain import PretrainConfig

EVAL = EvaluatorConfig(steps=1, attribute_steps=2, batch=8, max_images=16, min_val_accuracy=0.0)
PRETRAIN = PretrainConfig(
    vae_steps=1,
    vae_batch=2,
    unet_steps=1,
    unet_batch=2,
    max_images=8,
    gate_samples=2,
    gate_inference_steps=1,
    gate_min_accuracy=0.0,
)


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture(scope="module")
def evaluators(glyph_world, tmp_path_factory):
    return ensure_evaluators(glyph_world, "quick", EVAL, folder=tmp_path_factory.mktemp("cache") / "ev")


def test_evaluators_record_accuracy_against_chance(glyph_world, evaluators):
    validation = _manifest(evaluators)["validation"]
    rows = (glyph_world / "base" / "train" / "metadata.jsonl").read_text().splitlines()
    shapes = {json.loads(r)["shape"] for r in rows}
    assert validation["attribute/shape"]["chance"] == pytest.approx(1 / len(shapes))
    assert {"clip-proxy/image-to-caption", "dino-proxy/view-retrieval"} <= set(validation)
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in validation.values())


def test_evaluators_built_with_another_config_are_rebuilt(glyph_world, evaluators, tmp_path):
    logs = []
    first = _manifest(evaluators)
    same = ensure_evaluators(glyph_world, "quick", EVAL, log=logs.append, folder=evaluators)
    assert _manifest(same)["config_hash"] == first["config_hash"] and not logs  # reused, untouched
    other = tmp_path / "ev"
    ensure_evaluators(glyph_world, "quick", EVAL, folder=other)
    ensure_evaluators(glyph_world, "quick", replace(EVAL, attribute_steps=3), log=logs.append, folder=other)
    assert _manifest(other)["config"]["attribute_steps"] == 3
    assert _manifest(other)["config_hash"] != first["config_hash"]
    assert any("rebuilding" in line for line in logs)


def test_evaluators_near_chance_cannot_back_a_gate(evaluators):
    with pytest.raises(GateFailedError, match=r"shape classifier .* \(chance"):
        check_evaluators(evaluators, min_accuracy=1.01)


def test_tiny_sd_is_rebuilt_for_another_config_and_a_failed_gate_stops_the_build(
    glyph_world, evaluators, tmp_path
):
    out = tmp_path / "tiny-sd"
    ensure_tiny_sd(glyph_world, "quick", PRETRAIN, evaluators, folder=out)
    built = _manifest(out)
    assert built["gate_passed"] is True and built["config_hash"]

    logs = []
    ensure_tiny_sd(glyph_world, "quick", replace(PRETRAIN, unet_steps=2), evaluators, logs.append, folder=out)
    assert _manifest(out)["config"]["unet_steps"] == 2 and any("rebuilding" in m for m in logs)

    impossible = replace(PRETRAIN, gate_min_accuracy=1.01)
    with pytest.raises(GateFailedError, match="gate failed"):
        ensure_tiny_sd(glyph_world, "quick", impossible, evaluators, folder=out)
    assert not (out / "manifest.json").exists()  # nothing left that a later load could take


def test_a_kept_model_that_failed_its_gate_is_refused_on_load(glyph_world, evaluators, tmp_path):
    out = tmp_path / "tiny-sd"
    kept = replace(PRETRAIN, gate_min_accuracy=1.01, gate_action="warn")
    ensure_tiny_sd(glyph_world, "quick", kept, evaluators, folder=out)
    assert _manifest(out)["gate_passed"] is False
    with pytest.raises(GateFailedError, match="failed its quality gate"):
        ensure_tiny_sd(glyph_world, "quick", replace(kept, gate_action="fail"), evaluators, folder=out)


def test_an_interrupted_build_keeps_its_vae_when_only_the_unet_schedule_changes(
    glyph_world, evaluators, tmp_path
):
    out = tmp_path / "tiny-sd"
    failing = replace(PRETRAIN, vae_steps=2, gate_min_accuracy=1.01)
    with pytest.raises(GateFailedError):
        ensure_tiny_sd(glyph_world, "quick", failing, evaluators, folder=out)
    work = out.with_name(".tiny-sd.work")
    vae_bytes = (work / "vae.safetensors").read_bytes()

    logs = []
    with pytest.raises(GateFailedError):
        ensure_tiny_sd(
            glyph_world, "quick", replace(failing, unet_steps=2), evaluators, logs.append, folder=out
        )
    assert (work / "vae.safetensors").read_bytes() == vae_bytes  # resumed, not retrained
    assert any("discarding the unet checkpoint" in m for m in logs)
    assert not any("discarding the vae checkpoint" in m for m in logs)

    logs.clear()
    with pytest.raises(GateFailedError):
        ensure_tiny_sd(
            glyph_world, "quick", replace(failing, vae_lr=1e-3), evaluators, logs.append, folder=out
        )
    assert any("discarding the vae checkpoint" in m for m in logs)
