"""The newcomer path: progress by default, documented variables, claims that say only what ran."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devicelab import experiments
from devicelab.core.progress import progress

from .conftest import cli

ROOT = Path(__file__).resolve().parents[2]


def test_progress_prints_one_line_per_epoch_when_not_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("DEVICELAB_PROGRESS", raising=False)
    assert list(progress(range(2), desc="ssn-seed0", total=2, unit="epoch")) == [0, 1]
    lines = [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["ssn-seed0: epoch 1/2", "ssn-seed0: epoch 2/2"]


def test_progress_lines_count_from_a_resumed_epoch(capsys, monkeypatch):
    monkeypatch.setenv("DEVICELAB_PROGRESS", "lines")
    list(progress(range(2, 4), desc="bn-seed1", total=4, initial=2, unit="epoch"))
    lines = [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()]
    assert lines == ["bn-seed1: epoch 3/4", "bn-seed1: epoch 4/4"]


def test_progress_can_be_turned_off(capsys, monkeypatch):
    monkeypatch.setenv("DEVICELAB_PROGRESS", "0")
    assert list(progress(range(3), desc="x", total=3)) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_readme_documents_every_environment_variable():
    used = set()
    for path in (ROOT / "src" / "devicelab").rglob("*.py"):
        used |= set(re.findall(r"DEVICELAB_[A-Z_]+[A-Z]", path.read_text()))
    readme = (ROOT / "README.md").read_text()
    assert used and not [name for name in sorted(used) if name not in readme]


def test_run_help_lists_skip_bad_and_resume():
    result = cli("run", "--help")
    assert result.returncode == 0 and "--skip-bad" in result.stdout and "--resume" in result.stdout


@pytest.mark.parametrize("name", [n for n in experiments.names() if experiments.is_implemented(n)])
def test_claims_do_not_name_seeds_that_may_not_have_run(name):
    """The smoke profile runs one seed; a statement like "seeds 0,1,2" would be false there."""
    for claim in experiments.get_experiment(name).claims:
        assert not re.search(r"seeds? \d+\s*,\s*\d+", claim.statement), (claim.id, claim.statement)
