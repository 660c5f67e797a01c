"""`devicelab run fed-dg --profile smoke` end to end: metrics.json with every claim evaluated, export."""

import json

import pytest


def test_smoke_run_and_export(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    from devicelab.cli import main

    assert main(["run", "fed-dg", "--profile", "smoke"]) == 0
    [run_dir] = list((tmp_path / "runs" / "fed-dg").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {c["id"] for c in metrics["claims"]} == {"Q1", "Q2", "Q3"}
    # one smoke seed: every claim is inconclusive, and says why
    assert all(c["verdict"] == "inconclusive" and "at least 3" in c["note"] for c in metrics["claims"])
    for key in ("fedavg", "fedfd", "fedfd_a", "fedfd_ttbn", "fedprox", "fedbn_ttbn", "fedbn_avg", "fedsr"):
        assert len(metrics["metrics"][key]) == 1 and 0 <= metrics["metrics"][key][0] <= 100
    assert metrics["tables"] and "FedFD − FedAvg" in metrics["tables"][1]
    assert len(list((run_dir / "stages").glob("*.json"))) == 5 * 3  # (method, held-out, seed) stages
    pytest.importorskip("onnxruntime")
    assert main(["export", "fed-dg", str(run_dir), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_unknown_override_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    from devicelab.cli import main

    assert main(["run", "fed-dg", "--profile", "smoke", "lamda_c=2"]) != 0
