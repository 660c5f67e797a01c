"""A run killed with SIGKILL part-way and resumed ends with exactly the metrics of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from devicelab.core.checkpoint import CheckpointError, TrainingCheckpoint

TESTS = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    env["DEVICELAB_PLUGINS"] = "core.toy_experiment"
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _devicelab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devicelab", *args], env=_env(), capture_output=True, text=True, timeout=120
    )


def _metrics(runs: Path) -> dict:
    done = sorted(runs.glob("toy/*/metrics.json"))
    assert done, "no finished run"
    return json.loads(done[-1].read_text())


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, monkeypatch):
    reference_runs, killed_runs = tmp_path / "ref", tmp_path / "killed"
    monkeypatch.setenv("DEVICELAB_RUNS", str(reference_runs))
    r = _devicelab("run", "toy", "--profile", "smoke", "epochs=6")
    assert r.returncode == 0, r.stderr
    reference = _metrics(reference_runs)

    monkeypatch.setenv("DEVICELAB_RUNS", str(killed_runs))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devicelab",
            "run",
            "toy",
            "--profile",
            "smoke",
            "epochs=6",
            "sleep_per_epoch_s=0.3",
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # kill in the middle of the second sub-run, after it has checkpointed two epochs
        deadline = time.monotonic() + 90
        ckpt = None
        while ckpt is None and time.monotonic() < deadline:
            found = list(killed_runs.glob("toy/*/checkpoints/w4-seed1.safetensors"))
            if found and _loop_epoch(found[0]) >= 1:
                ckpt = found[0]
            time.sleep(0.05)
        assert ckpt is not None, "the run never checkpointed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    run_dir = ckpt.parents[1]
    assert not (run_dir / "metrics.json").exists()
    assert (run_dir / "stages" / "w4-seed0.json").exists()  # the first sub-run had finished

    r = _devicelab("run", "toy", "--resume")
    assert r.returncode == 0, r.stderr
    resumed = _metrics(killed_runs)
    assert resumed["metrics"] == reference["metrics"]
    events = [
        json.loads(line)["event"]
        for line in (run_dir / "log.jsonl").read_text().splitlines()
        if '"event"' in line
    ]
    assert events[:2] == ["start", "resume"] and events[-1] == "finish"


def _loop_epoch(path: Path) -> int:
    """The epoch stored in a training checkpoint file (-1 while it is being replaced)."""
    try:
        loop = TrainingCheckpoint(path.with_suffix("")).loop_state()
    except (FileNotFoundError, CheckpointError):
        return -1
    return -1 if loop is None else int(loop["epoch"])


def test_resume_without_unfinished_run_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path))
    r = _devicelab("run", "toy", "--resume")
    assert r.returncode == 2
    assert "no unfinished run of toy" in r.stderr
