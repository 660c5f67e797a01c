"""The command line: listing, errors that name the bad input, a report from a reproduce run."""

import json
import os
import sys
from pathlib import Path

import pytest

from devicelab import experiments
from devicelab.cli import main

TESTS = Path(__file__).resolve().parent
NINE = [
    "kws-ssn",
    "asc-factorized",
    "sed-tritrain",
    "sv-kan",
    "phoneme-vgpds",
    "fed-ua",
    "fed-dg",
    "tta-lsa",
    "hollowed-net",
]


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.setenv("DEVICELAB_PLUGINS", "core.toy_experiment")


def test_list_shows_the_nine_experiments(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in NINE:
        assert name in out
    assert experiments.names()[:9] == NINE


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "kws"], "unknown experiment 'kws'; valid names: kws-ssn, asc-factorized"),
        (["run", "toy", "epoch=3"], "unknown key epoch; valid keys: seed, seeds, epochs"),
        (["run", "toy", "epochs=three"], "epochs='three': expected an integer"),
        (["run", "toy", "--data", "/no/such/folder"], "--data /no/such/folder: no such folder"),
        (["data", "build", "nope"], "unknown corpus 'nope'; valid names: synth-commands"),
        (["data", "info", "glyph-world", "--profile", "full"], "is not built"),
        (["export", "toy", "/no/run"], "has no export"),
        (["reproduce", "--only", "nope"], "unknown experiment 'nope'"),
    ],
)
def test_errors_name_the_bad_input(toy, capsys, argv, message):
    if argv[0] == "export":
        argv = [*argv, "--onnx", "x.onnx"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unknown_profile_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "toy", "--profile", "tiny"])
    assert e.value.code == 2
    assert "invalid choice: 'tiny'" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys):
    for argv in (
        ["--help"],
        ["run", "--help"],
        ["data", "build", "--help"],
        ["reproduce", "--help"],
        ["report", "--help"],
        ["export", "--help"],
        ["list", "--help"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_run_writes_the_run_folder(toy, capsys):
    assert main(["run", "toy", "--profile", "smoke", "--seed", "5", "seeds=1", "epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "T1" in out and "inconclusive" in out and "an interval needs at least 3" in out  # one seed
    run_dir = sorted((Path(os.environ["DEVICELAB_RUNS"]) / "toy").iterdir())[-1]
    for f in ("config.yaml", "metrics.json", "log.jsonl", "run.json"):
        assert (run_dir / f).exists(), f
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["seed"] == 5 and metrics["profile"] == "smoke"
    assert len(metrics["metrics"]["accuracy/w16"]) == 1
    assert "seed: 5" in (run_dir / "config.yaml").read_text()


def test_reproduce_writes_an_honest_report(toy, capsys):
    assert main(["reproduce", "--profile", "smoke", "--only", "toy"]) == 0
    out = capsys.readouterr().out
    assert "wall time: toy" in out and "total:" in out
    path = Path(os.environ["DEVICELAB_REPORTS"]) / "smoke" / "REPORT.md"
    report = path.read_text()
    papers, claims = report.split("## Claims", 1)
    rows = [line for line in papers.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) == 10  # nine papers and the toy
    for r in rows:
        if "`toy`" not in r:
            assert "not implemented" in r or "not run" in r or "held" in r or "inconclusive" in r
    toy_claim = next(line for line in claims.splitlines() if "`toy`" in line and "**T1**" in line)
    assert "inconclusive" in toy_claim and "95 % interval" in claims
    # the archive beside the report re-renders it without the runs
    archived = Path(os.environ["DEVICELAB_REPORTS"]) / "smoke" / "runs"
    assert list(archived.glob("toy/*/metrics.json"))
    # `devicelab report` writes beside the runs, never over the reproduced report
    before = path.read_text()
    assert main(["report", "--profile", "smoke"]) == 0
    assert path.read_text() == before
    assert (Path(os.environ["DEVICELAB_RUNS"]) / "_report" / "smoke" / "REPORT.md").exists()
    out_dir = path.parent.parent / "rerendered"
    assert (
        main(["report", "--profile", "smoke", "--runs", str(archived), "--out", str(out_dir), "--archive"])
        == 0
    )
    assert "**T1**" in (out_dir / "REPORT.md").read_text()
    assert list((out_dir / "runs").glob("toy/*/metrics.json"))


def test_module_entry_point():
    import subprocess

    r = subprocess.run([sys.executable, "-m", "devicelab", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("devicelab ")
