"""Run folders and checkpoints: --resume takes the right run and says so; a bad checkpoint names a way out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from devicelab.core.checkpoint import CheckpointError, TrainingCheckpoint, load_state, save_state

from .conftest import cli, one_line_error, run_folders


@pytest.fixture
def finished_toy() -> Path:
    """A finished toy run (smoke: 2 widths x 2 seeds, 4 epochs each)."""
    result = cli("run", "toy", "--profile", "smoke", toy=True)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_folders("toy")
    return run_dir


def _as_killed(finished: Path, name: str, redo: str = "w16-seed1") -> Path:
    """A finished run copied as a kill leaves it: no metrics.json, state started, one stage to redo."""
    run_dir = Path(shutil.copytree(finished, finished.parent / name))
    (run_dir / "metrics.json").unlink()
    (run_dir / "stages" / f"{redo}.json").unlink()
    meta = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**meta, "state": "started"}))
    return run_dir


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["metrics"]


def test_run_json_records_the_state(finished_toy):
    meta = json.loads((finished_toy / "run.json").read_text())
    assert meta["state"] == "finished" and meta["experiment"] == "toy"


def test_resume_takes_the_newest_resumable_run_and_says_which(finished_toy):
    resumable = _as_killed(finished_toy, "20990101-000001")
    done = Path(shutil.copytree(finished_toy, finished_toy.parent / "20990101-000002"))  # newer, finished
    broken = finished_toy.parent / "20990101-000003"  # a folder that never started properly
    broken.mkdir()
    (broken / "config.yaml").write_text((finished_toy / "config.yaml").read_text())
    for stamp, state in (
        ("20990101-000004", None),
        ("20990101-000005", "failed"),
    ):  # failed starts, kept nothing
        failed = finished_toy.parent / stamp
        (failed / "stages").mkdir(parents=True)
        (failed / "config.yaml").write_text((finished_toy / "config.yaml").read_text())
        meta = {"experiment": "toy", "profile": "smoke", **({"state": state} if state else {})}
        (failed / "run.json").write_text(json.dumps(meta))
    result = cli("run", "toy", "--resume", toy=True)
    assert result.returncode == 0, result.stderr
    assert f"resuming {resumable}" in result.stdout
    assert _metrics(resumable) == _metrics(finished_toy)  # same numbers as the uninterrupted run
    assert json.loads((resumable / "run.json").read_text())["state"] == "finished"
    assert not (broken / "metrics.json").exists() and _metrics(done) == _metrics(finished_toy)


def test_resume_with_nothing_to_resume_names_the_runs_folder(finished_toy):
    one_line_error(cli("run", "toy", "--resume", toy=True), "no unfinished run of toy", "DEVICELAB_RUNS")


def test_resume_of_a_named_finished_run_reads_its_stages_back(finished_toy):
    before = _metrics(finished_toy)
    result = cli("run", "toy", "--resume", str(finished_toy), toy=True)
    assert result.returncode == 0 and "state finished" in result.stdout
    assert _metrics(finished_toy) == before and "epoch" not in result.stderr  # nothing trained again


def test_resume_of_a_folder_without_run_json(finished_toy):
    (finished_toy / "run.json").unlink()
    one_line_error(cli("run", "toy", "--resume", str(finished_toy), toy=True), "run.json", "not a run folder")


def test_resume_of_another_experiments_folder_is_refused(finished_toy):
    result = cli("run", "kws-ssn", "--resume", str(finished_toy), toy=True)
    one_line_error(result, "is a run of toy, not kws-ssn", f"devicelab run toy --resume {finished_toy}")


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    one_line_error(cli("run", "toy", "--resume", str(tmp_path), toy=True), "not a run folder")


def test_resume_of_a_run_with_unreadable_config(finished_toy):
    run_dir = _as_killed(finished_toy, "20990101-000001")
    (run_dir / "config.yaml").write_text("epochs: [1,\n")
    one_line_error(cli("run", "toy", "--resume", str(run_dir), toy=True), "config.yaml", "not valid YAML")


def test_truncated_checkpoint_names_the_file_and_the_way_out(finished_toy):
    run_dir = _as_killed(finished_toy, "20990101-000001")
    ckpt = run_dir / "checkpoints" / "w16-seed1.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    line = one_line_error(cli("run", "toy", "--resume", toy=True), str(ckpt), "truncated", "way out: delete")
    assert "SafetensorError" not in line
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    # the way out works: without the damaged file the stage continues from the previous checkpoint
    ckpt.unlink()
    assert cli("run", "toy", "--resume", toy=True).returncode == 0
    assert _metrics(run_dir) == _metrics(finished_toy)


def test_checkpoint_is_one_file_and_the_previous_one_is_kept(finished_toy):
    files = sorted(p.name for p in (finished_toy / "checkpoints").iterdir())
    assert "w4-seed0.safetensors" in files and "w4-seed0.prev.safetensors" in files
    assert not [f for f in files if f.endswith(".json") or ".tmp" in f]
    loop = TrainingCheckpoint(finished_toy / "checkpoints" / "w4-seed0").loop_state()
    assert loop["epoch"] == 3  # smoke: 4 epochs


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    import devicelab.core.checkpoint as checkpoint

    save_state(tmp_path / "state", {"w": torch.ones(3), "epoch": 1})

    def dies_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt  # as a kill in the middle of the write

    monkeypatch.setattr(checkpoint, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        save_state(tmp_path / "state", {"w": torch.zeros(3), "epoch": 2})
    assert load_state(tmp_path / "state")["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.safetensors"]


def test_foreign_safetensors_is_a_checkpoint_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.ones(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a devicelab checkpoint"):
        load_state(tmp_path / "other")
