"""kws-ssn end to end through the CLI (smoke profile), export to ONNX, and bad input."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from devicelab.cli import main
from devicelab.data.datasets.speech_commands import make_toy_speech_commands


def _newest_run() -> Path:
    return sorted((Path(os.environ["DEVICELAB_RUNS"]) / "kws-ssn").iterdir())[-1]


@pytest.fixture(scope="module")
def toy_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    return make_toy_speech_commands(root, speakers={"train": 4, "validation": 1, "test": 1}, takes=2)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke profile as a user runs it: builds the synth-commands smoke corpus, trains three models."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEVICELAB_RUNS", str(tmp_path_factory.mktemp("kws-runs")))
        assert main(["run", "kws-ssn", "--profile", "smoke"]) == 0
        return _newest_run()


def test_smoke_run_writes_metrics_for_three_models(smoke_run):
    result = json.loads((smoke_run / "metrics.json").read_text())
    metrics = result["metrics"]
    for key in ("ssn", "bn", "bn_wide"):
        assert len(metrics[f"test_acc_{key}"]) == 1 and 0.0 <= metrics[f"test_acc_{key}"][0] <= 100.0
        assert f"channel_acc_{key}" in metrics
    assert (metrics["params_ssn"], metrics["params_bn"], metrics["params_bn_wide"]) == (9232, 7760, 9149)
    assert result["claims"] == []  # K1-K3 are registered for quick and full only
    assert any("offline corpus" in n for n in result["notes"])
    assert len(result["tables"]) == 4 and "_unknown_" in result["tables"][1]
    assert "per held-out voice" in result["tables"][2]  # smoke has no real/ digits: no confusion row
    assert "per held-out voice and class, BC-ResNet-1, BatchNorm" in result["tables"][3]
    assert (smoke_run / "plots" / "accuracy.png").stat().st_size > 0
    assert {p.name for p in (smoke_run / "stages").iterdir()} == {
        "ssn-seed0.json",
        "bn-seed0.json",
        "bn-wide-seed0.json",
    }
    log = [json.loads(line) for line in (smoke_run / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("stage") == "ssn-seed0") == 2  # one record per epoch


def test_export_matches_pytorch_and_has_no_ssn_reshape(smoke_run, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from devicelab.audio.features import LogMel
    from devicelab.core.onnx import onnx_parity
    from devicelab.methods.kws_ssn.export import deployable, load_trained

    out = tmp_path / "kws.onnx"
    assert main(["export", "kws-ssn", str(smoke_run), "--onnx", str(out)]) == 0
    trained = load_trained(smoke_run, "ssn-seed0")
    folded = deployable(trained)
    clips = 0.1 * torch.randn(3, 16000, generator=torch.Generator().manual_seed(1))
    assert onnx_parity(folded, out, clips) <= 1e-4
    with torch.no_grad():  # the folded model computes the trained model's eval-mode function
        torch.testing.assert_close(folded(clips), trained(LogMel()(clips).unsqueeze(1)), atol=1e-4, rtol=1e-4)
    nodes = onnx.load(str(out)).graph.node
    scopes = {n.name: dict((p.key, p.value) for p in n.metadata_props).get("namespace", "") for n in nodes}
    reshapes = [scopes[n.name] for n in nodes if n.op_type == "Reshape"]
    # reshapes come from the front end and the final flatten only, none from a block, where the SSNs sit:
    # each folded SSN is one Mul + Add
    assert reshapes and not any("BCResBlock" in s for s in reshapes), reshapes
    folded_ops = [n.op_type for n in nodes if "FoldedSubSpectralNorm" in scopes[n.name]]
    assert folded_ops.count("Mul") == 12 and set(folded_ops) <= {"Mul", "Add"}


def test_export_names_a_missing_model(smoke_run, tmp_path, capsys):
    from devicelab.methods.kws_ssn.export import export_run

    with pytest.raises(FileNotFoundError, match="ssn-seed7.*available: bn-seed0"):
        export_run(smoke_run, {"onnx": tmp_path / "x.onnx", "model": "ssn-seed7"})
    assert not (tmp_path / "x.onnx").exists()


def test_data_flag_reads_a_speech_commands_root(toy_tree):
    assert (
        main(
            [
                "run",
                "kws-ssn",
                "--profile",
                "smoke",
                "--data",
                str(toy_tree),
                "variants=[ssn]",
                "max_train_clips=60",
            ]
        )
        == 0
    )
    result = json.loads((_newest_run() / "metrics.json").read_text())
    assert result["data_path"] == str(toy_tree)
    assert result["metrics"]["gsc_version"] == 2 and result["metrics"]["train_clips"] == 60
    assert any("list test split" in n for n in result["notes"])


def test_bad_data_folder_is_named(tmp_path, capsys):
    (tmp_path / "not_gsc").mkdir()
    assert main(["run", "kws-ssn", "--profile", "smoke", "--data", str(tmp_path / "not_gsc")]) == 2
    assert "validation_list.txt" in capsys.readouterr().err


def test_bad_variant_and_key_are_named(capsys):
    assert main(["run", "kws-ssn", "--profile", "smoke", "variants=[ssn, groupnorm]"]) == 2
    assert "groupnorm" in capsys.readouterr().err
    assert main(["run", "kws-ssn", "--profile", "smoke", "epochz=3"]) == 2
    assert "epochz" in capsys.readouterr().err


def test_resume_skips_finished_stages(smoke_run):
    stage = json.loads((smoke_run / "stages" / "ssn-seed0.json").read_text())
    assert main(["run", "kws-ssn", "--resume", str(smoke_run)]) == 0
    assert json.loads((smoke_run / "stages" / "ssn-seed0.json").read_text()) == stage
    assert np.isfinite(stage["test_acc"]) and Path(smoke_run / "models" / "ssn-seed0.safetensors").exists()
