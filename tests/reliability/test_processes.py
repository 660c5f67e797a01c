"""Processes devicelab starts for Flower die with the process that started them (unless detached)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SPAWN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from devicelab.federated import deploy
    pid = deploy._spawn(Path(sys.argv[1]), "sleeper", ["sleep", "60"], detach=False)
    print(pid, flush=True)
    time.sleep(60)
    """
)


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_flower_child_dies_with_its_parent(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", SPAWN, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child, within_s=0.2)  # running while its parent runs
        parent.send_signal(signal.SIGKILL)
    finally:
        parent.wait(timeout=30)
    assert _gone(child), f"process {child} outlived the process that started it"
    assert (tmp_path / "pids" / "sleeper.pid").read_text().split()[0] == str(child)  # recorded by PID
