"""The hollowed-net experiment end to end through the CLI: memory, transfer and fidelity stages (smoke)."""

from __future__ import annotations

import json

from devicelab.cli import main


def test_smoke_run_through_the_cli(glyph_world, tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    rc = main(["run", "hollowed-net", "--profile", "smoke", f"corpus_dir={glyph_world}"])
    assert rc == 0
    (run_dir,) = (tmp_path / "runs" / "hollowed-net").iterdir()
    result = json.loads((run_dir / "metrics.json").read_text())
    metrics = result["metrics"]
    assert metrics["mem_train_bytes_hollowed_m3"] < metrics["mem_train_bytes_hollowed_m0"]
    assert metrics["mem_train_bytes_full_ft"] > metrics["mem_train_bytes_lora_r4"]
    # the live-tensor tracker measures the same step as the account: the two agree closely, and both see
    # hollowing lower the peak
    for variant in ("lora_r4", "hollowed_m0", "hollowed_m3"):
        tracked, accounted = (
            metrics[f"mem_train_tracker_bytes_{variant}"],
            metrics[f"mem_train_bytes_{variant}"],
        )
        assert abs(tracked / accounted - 1) < 0.1, variant
    assert metrics["mem_train_tracker_bytes_hollowed_m3"] < metrics["mem_train_tracker_bytes_hollowed_m0"]
    assert len(metrics["dino_hollowed_m3"]) == 1 and len(metrics["clip_t_lora_r4"]) == 1
    assert len(metrics["dino_base"]) == 1 and "final_loss_base" not in metrics  # no fine-tuning
    stages = {p.stem for p in (run_dir / "stages").iterdir()}
    assert stages == {"memory", "transfer"} | {
        f"{v}-subject00-seed0" for v in ("base", "lora-r4", "hollowed-m3", "lora-kept-m3")
    }
    assert not any((run_dir / "work").iterdir())  # each stage's a_m store is gone with its stage
    adapter = run_dir / "adapters" / "hollowed-m3-subject00-seed0"
    assert (adapter / "pytorch_lora_weights.safetensors").is_file() and (
        adapter / "hollowed_net.json"
    ).is_file()
    claims = {c["id"]: c for c in result["claims"]}
    # deterministic measurements are compared exactly; H5 is the conjunction of its fuse and parameter parts
    assert claims["H1c"]["verdict"] == "held" and claims["H5"]["verdict"] == "held"
    assert {p["id"] for p in claims["H5"]["parts"]} == {"H5-fuse", "H5-params"}  # H5-live: quick, full
    # H5 runs on the adapter trained on the hollowed U-Net, not on a random one: it moved the full model
    assert metrics["h5_adapter_effect"] > 0.0
    transfer = json.loads((run_dir / "stages" / "transfer.json").read_text())
    assert transfer["per_adapter"]["adapters"] == ["hollowed-m3-subject00-seed0"]

    assert {p.name for p in (run_dir / "plots").iterdir()} >= {"mismatch_vs_m.png", "fidelity_vs_m.png"}

    # export: the hollowed adapter in the diffusers LoRA format, with the checksum of its base U-Net
    from devicelab.methods.hollowed_net.transfer import base_checksum

    out = tmp_path / "exported"
    assert main(["export", "hollowed-net", str(run_dir), "--out", str(out)]) == 0
    meta = json.loads((out / "hollowed_net.json").read_text())
    assert (out / "pytorch_lora_weights.safetensors").is_file() and meta["m"] == 3
    assert meta["base_checksum"] == base_checksum(run_dir / "model" / "unet")
    assert main(["export", "hollowed-net", str(run_dir)]) == 2  # neither --out nor --onnx
    assert main(["export", "hollowed-net", str(run_dir), "--out", str(out), "--seed", "7"]) != 0
