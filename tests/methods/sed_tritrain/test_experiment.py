"""sed-tritrain end to end through the CLI (smoke profile): metrics and claim keys, DCASE tsv, plots, resume,
``--data`` on a miniature DESED tree, ONNX export, and bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from devicelab.cli import main
from devicelab.experiments import get_experiment
from tests.methods.sed_tritrain.fixture import make_desed_tree


def _newest_run() -> Path:
    return sorted((Path(os.environ["DEVICELAB_RUNS"]) / "sed-tritrain").iterdir())[-1]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke profile as a user runs it: builds the procedural smoke corpus, trains M, B1, B0."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEVICELAB_RUNS", str(tmp_path_factory.mktemp("sed-runs")))
        assert main(["run", "sed-tritrain", "--profile", "smoke"]) == 0
        return _newest_run()


def test_smoke_run_writes_every_metric_and_claim_key(smoke_run):
    result = json.loads((smoke_run / "metrics.json").read_text())
    metrics = result["metrics"]
    experiment = get_experiment("sed-tritrain")
    keys = {k for c in experiment.claims for k in c.keys()} | {k for c in experiment.claims for f in c.floors
                                                               for k in f.keys()}  # fmt: skip
    quick_keys = {k for k in keys if not k.startswith("val_")} - {"event_f1/tritrain-no-dann"}
    assert quick_keys <= set(metrics), quick_keys - set(metrics)
    assert {f"val_event_f1/{v}" for v in ("tritrain", "mean-teacher", "supervised")} <= set(metrics)
    for v in ("tritrain", "mean-teacher", "supervised"):
        assert len(metrics[f"event_f1/{v}"]) == 1 and 0.0 <= metrics[f"event_f1/{v}"][0] <= 100.0
        assert 0.0 <= metrics[f"psds1/{v}"][0] <= 1.0
    assert "domain_gap" in metrics and "domain_acc/tritrain" in metrics
    assert "pool_size/tritrain" in metrics  # the pseudo-label pool was formed after warm-up
    assert result["claims"] == []  # C1-C3 are registered for quick and full only
    assert any("sed_eval 0.2.1" in n for n in result["notes"])
    assert (smoke_run / "plots" / "detections.png").stat().st_size > 0
    assert (smoke_run / "plots" / "pseudo_labels.png").stat().st_size > 0
    tsv = (smoke_run / "detections" / "tritrain-seed0.tsv").read_text().splitlines()
    assert tsv[0] == "filename\tonset\toffset\tevent_label"
    assert {p.name for p in (smoke_run / "stages").iterdir()} == {
        "tritrain-seed0.json",
        "mean-teacher-seed0.json",
        "supervised-seed0.json",
    }
    log = [json.loads(line) for line in (smoke_run / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("event") == "pseudo-labels") == 2  # refreshes at steps 2 and 3


def test_resumed_run_matches_the_uninterrupted_one(smoke_run, tmp_path):
    """Kill after chunk 3 of 4 (after the first refresh): the resumed stage equals the original."""
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    original = json.loads((run / "stages" / "tritrain-seed0.json").read_text())
    checkpoints = run / "checkpoints"
    os.replace(checkpoints / "tritrain-seed0.prev.safetensors", checkpoints / "tritrain-seed0.safetensors")
    (run / "stages" / "tritrain-seed0.json").unlink()
    assert main(["run", "sed-tritrain", "--resume", str(run)]) == 0
    resumed = json.loads((run / "stages" / "tritrain-seed0.json").read_text())
    assert resumed["history"] == original["history"]
    assert resumed["plot_scores"] == original["plot_scores"]
    assert resumed["event_f1"] == original["event_f1"]


def test_export_matches_pytorch(smoke_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from devicelab.core.onnx import onnx_parity
    from devicelab.methods.sed_tritrain.export import example_waveforms, load_trained

    out = tmp_path / "sed.onnx"
    assert main(["export", "sed-tritrain", str(smoke_run), "--onnx", str(out)]) == 0
    model = load_trained(smoke_run, "tritrain-seed0")
    clips = example_waveforms(model.frontend, 2, seed=5)
    assert onnx_parity(model, out, clips) <= 1e-4
    with torch.no_grad():
        posteriors = model(clips)
    assert posteriors.shape == (2, 125, 3)


def test_export_names_a_missing_model(smoke_run, tmp_path):
    from devicelab.methods.sed_tritrain.export import export_run

    with pytest.raises(FileNotFoundError, match="tritrain-seed7.*available: mean-teacher-seed0"):
        export_run(smoke_run, {"onnx": tmp_path / "x.onnx", "model": "tritrain-seed7"})
    assert not (tmp_path / "x.onnx").exists()


def test_data_flag_reads_a_desed_tree(tmp_path):
    root = make_desed_tree(tmp_path / "DESED")
    args = ["run", "sed-tritrain", "--profile", "smoke", "--data", str(root), "variants=[supervised]"]
    assert main([*args, "desed.max_missing_fraction=0.5"]) == 0
    run = _newest_run()
    result = json.loads((run / "metrics.json").read_text())
    assert result["data_path"] == str(root)
    assert "event_f1/supervised" in result["metrics"]
    assert (run / "missing_files.tsv").read_text() == "subset\tfilename\nweak\tw3.wav\n"
    assert any("1 listed clips have no audio" in n for n in result["notes"])


def test_bad_data_folder_is_named_and_leaves_no_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", "sed-tritrain", "--profile", "smoke", "--data", str(tmp_path / "empty")]) == 2
    assert "empty" in capsys.readouterr().err
    runs = Path(os.environ["DEVICELAB_RUNS"]) / "sed-tritrain"
    assert not runs.exists() or not any(runs.iterdir())


def test_unknown_label_in_data_is_one_line_naming_the_file(tmp_path, capsys):
    root = make_desed_tree(tmp_path / "DESED")
    (root / "metadata/eval/public.tsv").write_text(
        "filename\tonset\toffset\tevent_label\np1.wav\t0\t1\tParrot\n"
    )
    args = [
        "run",
        "sed-tritrain",
        "--profile",
        "smoke",
        "--data",
        str(root),
        "desed.max_missing_fraction=0.5",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "public.tsv:2: unknown label 'Parrot'" in err[0]


def test_bad_variant_choice_and_key_are_named(capsys):
    assert main(["run", "sed-tritrain", "--profile", "smoke", "variants=[tritrain, cotrain]"]) == 2
    assert "cotrain" in capsys.readouterr().err
    assert main(["run", "sed-tritrain", "--profile", "smoke", "schedule=sometimes"]) == 2
    assert "'joint', 'alternating'" in capsys.readouterr().err
    assert main(["run", "sed-tritrain", "--profile", "smoke", "tau_hii=0.8"]) == 2
    assert "tau_hii" in capsys.readouterr().err
