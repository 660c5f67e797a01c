"""Helpers of the bad-input suite: run ``devicelab`` as a user does and read its one-line error."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]


def devicelab(*args: str, toy: bool = False, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """``python -m devicelab ARGS`` with the test's folders (and the toy experiment when ``toy``)."""
    environ = {**os.environ, **env}
    if toy:
        environ["DEVICELAB_PLUGINS"] = "core.toy_experiment"
        environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "devicelab", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli(*args: str, toy: bool = False, **env: str) -> subprocess.CompletedProcess:
    """``devicelab ARGS`` in this process (the same code path as the command, without the start-up time)."""
    from devicelab.cli import main

    if toy:
        env["DEVICELAB_PLUGINS"] = "tests.core.toy_experiment"
    saved = {k: os.environ.get(k) for k in env}
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as e:  # argparse
                code = e.code if isinstance(e.code, int) else 2
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(["devicelab", *args], code, out.getvalue(), err.getvalue())


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The single error line of a failed command (exit status 2, no traceback), checked for ``fragments``."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [
        line for line in result.stderr.splitlines() if ": error" in line or line.startswith("devicelab")
    ]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def run_folders(name: str) -> list[Path]:
    """The run folders of experiment ``name`` under ``$DEVICELAB_RUNS``."""
    base = Path(os.environ["DEVICELAB_RUNS"]) / name
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


@pytest.fixture(scope="session")
def toy_gsc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Speech Commands v2 tree (tones, not speech): 2 train, 1 validation, 1 test speaker."""
    from devicelab.data.datasets.speech_commands import make_toy_speech_commands

    return make_toy_speech_commands(
        tmp_path_factory.mktemp("gsc") / "speech_commands", speakers={"train": 2, "validation": 1, "test": 1}
    )


@pytest.fixture
def gsc_copy(toy_gsc: Path, tmp_path: Path) -> Path:
    """A copy of :func:`toy_gsc` that a test may damage."""
    import shutil

    return Path(shutil.copytree(toy_gsc, tmp_path / "speech_commands"))


@pytest.fixture
def pacs(tmp_path: Path) -> Path:
    """A PACS-layout folder (4 domains x 7 classes x 3 images of 16 x 16 px)."""
    from PIL import Image

    from devicelab.data.datasets.domains import KNOWN_LAYOUTS

    layout = next(x for x in KNOWN_LAYOUTS if x.name == "PACS")
    rng = np.random.default_rng(0)
    root = tmp_path / "PACS"
    for domain in layout.domains:
        for name in layout.classes or ():
            (root / domain / name).mkdir(parents=True)
            for k in range(3):
                pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / domain / name / f"{k}.png")
    return root
