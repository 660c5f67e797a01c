"""Corpus builds: a killed build leaves no worker; its lock is taken over; a changed corpus is noticed."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devicelab.data.cache import BuildLockError, atomic_build

from .conftest import cli, one_line_error

BUILD = ("data", "build", "synth-commands", "--profile", "smoke")


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux ``/proc``)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _manifest(data: Path) -> dict:
    return json.loads((data / "synth-commands" / "smoke" / "manifest.json").read_text())


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_kill_9_mid_build_leaves_no_worker_and_the_rebuild_matches(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert cli(*BUILD, "--workers", "2", DEVICELAB_DATA=str(reference)).returncode == 0

    env = {**os.environ, "DEVICELAB_DATA": str(killed)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devicelab", *BUILD, "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, workers = time.monotonic() + 120, []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.02)
        assert len(workers) >= 2, "the build never started its two workers"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _running(pid)], "a build worker outlived its parent"
    assert not (killed / "synth-commands" / "smoke" / "manifest.json").exists()

    result = cli(*BUILD, "--workers", "2", DEVICELAB_DATA=str(killed))
    assert result.returncode == 0, result.stderr
    assert f"from build PID {proc.pid}, which is gone" in result.stdout  # the stale lock, taken over
    assert not list((killed / "synth-commands").glob(".smoke.partial-*"))
    assert _manifest(killed)["content_sha256"] == _manifest(reference)["content_sha256"]


def test_a_live_build_holds_the_lock(tmp_path):
    lock_path = tmp_path / "synth-commands" / ".smoke.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        with pytest.raises(BuildLockError, match=rf"another build .* is running \(PID {os.getpid()}"):
            with atomic_build("synth-commands", "smoke", root=tmp_path):
                pass
    assert not list(lock_path.parent.glob(".smoke.partial-*"))


def _fake_built(data: Path) -> Path:
    """A small built corpus folder as a build leaves it (files, checksums, manifest)."""
    from devicelab.data.cache import finish_manifest

    folder = data / "synth-commands" / "smoke"
    (folder / "gsc" / "yes").mkdir(parents=True)
    for k in range(3):
        (folder / "gsc" / "yes" / f"{k}.wav").write_bytes(bytes(100 + k))
    finish_manifest(folder, {"corpus": "synth-commands", "profile": "smoke"})
    return folder


def test_build_of_a_changed_corpus_says_so(tmp_path):
    folder = _fake_built(tmp_path)
    assert "already built" in cli(*BUILD, DEVICELAB_DATA=str(tmp_path)).stdout
    (folder / "gsc" / "yes" / "1.wav").write_bytes(b"x")
    one_line_error(
        cli(*BUILD, DEVICELAB_DATA=str(tmp_path)), "changed after it was built", "--force", "data verify"
    )


def test_build_notices_a_removed_file(tmp_path):
    folder = _fake_built(tmp_path)
    (folder / "gsc" / "yes" / "0.wav").unlink()
    one_line_error(cli(*BUILD, DEVICELAB_DATA=str(tmp_path)), "2 files", "3 files")


def test_verify_lists_the_changed_file(tmp_path):
    folder = _fake_built(tmp_path)
    (folder / "gsc" / "yes" / "2.wav").write_bytes(b"y" * 102)  # same size, other content
    result = cli("data", "verify", "synth-commands", DEVICELAB_DATA=str(tmp_path))
    assert result.returncode == 1 and "gsc/yes/2.wav: checksum mismatch" in result.stdout


def test_info_uses_the_profile_that_is_built(tmp_path):
    _fake_built(tmp_path)
    result = cli("data", "info", "synth-commands", DEVICELAB_DATA=str(tmp_path))
    assert result.returncode == 0 and '"profile": "smoke"' in result.stdout


def test_info_of_a_corpus_not_built_says_how(tmp_path):
    result = cli("data", "info", "synth-commands", DEVICELAB_DATA=str(tmp_path))
    one_line_error(result, "not built", "devicelab data build synth-commands")


def test_unknown_corpus_lists_the_names(tmp_path):
    one_line_error(
        cli("data", "info", "synth-cmds", DEVICELAB_DATA=str(tmp_path)), "unknown corpus", "synth-commands"
    )


def _interrupt_build(data: Path, *extra: str) -> tuple[int, str, list[int]]:
    """Start a 2-worker build in its own process group, send it Ctrl-C once both workers run."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "devicelab", *BUILD, "--workers", "2", *extra],
        env={**os.environ, "DEVICELAB_DATA": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # a foreground job takes Ctrl-C even where the tests run as a background job (which ignores SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline, workers = time.monotonic() + 120, []
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.02)
        assert len(workers) >= 2, "the build never started its two workers"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, workers


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_ctrl_c_stops_the_build_and_its_workers(tmp_path):
    # a smoke build can finish in the instant between seeing its workers and the signal (an idle machine):
    # then it must have finished properly, and the next attempt rebuilds with --force
    for attempt in range(4):
        code, err, workers = _interrupt_build(tmp_path, *(("--force",) if attempt else ()))
        assert not [pid for pid in workers if _running(pid)]
        assert "Traceback" not in err
        assert not list((tmp_path / "synth-commands").glob(".smoke.partial-*"))
        if code != 0:
            break
        assert (tmp_path / "synth-commands" / "smoke" / "manifest.json").exists()
    assert code == 130 and err.strip().splitlines()[-1] == "devicelab: interrupted"
    assert not (tmp_path / "synth-commands" / "smoke" / "manifest.json").exists() or attempt > 0
