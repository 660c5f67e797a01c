"""The stage runner through the CLI: workers die with a killed parent, resume completes the run, and Ray
gives the local executor's metrics."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
TOY = ["run", "toy", "--profile", "smoke", "epochs=6"]


def _env(runs: Path) -> dict:
    env = dict(os.environ)
    env["DEVICELAB_PLUGINS"] = "core.toy_experiment"
    env["DEVICELAB_RUNS"] = str(runs)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def _devicelab(runs: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devicelab", *args],
        env=_env(runs),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _metrics(runs: Path) -> dict:
    done = sorted(runs.glob("toy/*/metrics.json"))
    assert done, "no finished run"
    return json.loads(done[-1].read_text())["metrics"]


def _children(pid: int) -> set[int]:
    """Live (non-zombie) processes whose parent is ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_sigkilled_parent_takes_its_workers_and_resume_matches(tmp_path):
    reference = _devicelab(tmp_path / "ref", *TOY, "workers=1")
    assert reference.returncode == 0, reference.stderr

    runs = tmp_path / "killed"
    parent = subprocess.Popen(
        [sys.executable, "-m", "devicelab", *TOY, "workers=2", "sleep_per_epoch_s=0.3"],
        env=_env(runs),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, workers = time.monotonic() + 90, set()
        while time.monotonic() < deadline:
            workers |= _children(parent.pid)
            if len(workers) == 2 and list(runs.glob("toy/*/checkpoints/*")):
                break
            time.sleep(0.05)
        assert len(workers) == 2, f"expected two workers, saw {workers}"
        parent.send_signal(signal.SIGKILL)
    finally:
        parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [p for p in workers if _alive(p)]
    for p in survivors:  # leave nothing behind, then fail
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"workers outlived their parent: {survivors}"
    run_dir = next(runs.glob("toy/*"))
    assert not (run_dir / "metrics.json").exists()

    resumed = _devicelab(runs, "run", "toy", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(runs) == _metrics(tmp_path / "ref")


@pytest.mark.slow
def test_ray_local_gives_the_local_metrics(tmp_path):
    pytest.importorskip("ray")
    local = _devicelab(tmp_path / "local", *TOY, "workers=2")
    assert local.returncode == 0, local.stderr
    on_ray = _devicelab(tmp_path / "ray", *TOY, "workers=2", "--ray", "local", timeout=300)
    assert on_ray.returncode == 0, on_ray.stderr
    assert _metrics(tmp_path / "ray") == _metrics(tmp_path / "local")
    stages = sorted(p.name for p in (tmp_path / "ray").glob("toy/*/stages/*.json"))
    assert stages == ["w16-seed0.json", "w16-seed1.json", "w4-seed0.json", "w4-seed1.json"]
