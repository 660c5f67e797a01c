"""The report: re-evaluated claims with intervals, unreadable runs skipped and named, the README block."""

import json
from pathlib import Path

import pytest

from devicelab.core.config import ConfigError
from devicelab.core.report import README_END, README_START, render


def _fake_run(root: Path, name: str, run_id: str, metrics: dict, profile: str = "quick") -> Path:
    run_dir = root / name / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("seed: 0\n")
    (run_dir / "run.json").write_text(json.dumps({"experiment": name, "profile": profile}))
    result = {"experiment": name, "profile": profile, "metrics": metrics, "claims": [], "wall_time_s": 60.0}
    (run_dir / "metrics.json").write_text(json.dumps(result))
    return run_dir


def test_old_runs_get_todays_verdicts_with_floors(tmp_path):
    # the numbers of the earlier kws-ssn quick run: K1 was printed "held" at +13.8 with BN at 28.6 %
    runs = tmp_path / "runs"
    metrics = {
        "test_acc_ssn": [34.3, 49.8, 43.1],
        "test_acc_bn": [26.8, 28.0, 31.1],
        "test_acc_bn_wide": [45.0, 61.2, 51.5],
    }
    _fake_run(runs, "kws-ssn", "20261128-015624", metrics)
    report = render("quick", out_dir=tmp_path / "out", runs=runs).read_text()
    k1 = next(line for line in report.splitlines() if "**K1**" in line)
    assert "**inconclusive**" in k1 and "floor F-bn: measured" in k1 and "needs method ≥ 80" in k1
    assert "**held**" not in report.split("## Claims")[1].split("## ")[0]


def test_unreadable_runs_are_skipped_and_named(tmp_path, capsys):
    runs = tmp_path / "runs"
    good = _fake_run(runs, "kws-ssn", "20261101-000000", {"test_acc_bn": [90.0, 91.0, 92.0]})
    bad = runs / "kws-ssn" / "20261201-000000"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text("{not json")
    report = render("quick", out_dir=tmp_path / "out", runs=runs).read_text()
    assert str(bad / "metrics.json") in report and "Unreadable runs" in report
    assert str(good) in report  # the older readable run is shown instead
    assert str(bad / "metrics.json") in capsys.readouterr().out


def test_readme_block_is_regenerated_from_the_report(tmp_path):
    runs = tmp_path / "runs"
    _fake_run(runs, "kws-ssn", "20261101-000000", {"test_acc_bn": [90.0, 91.0, 92.0]})
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{README_START}\nold hand-written table: K1 held\n{README_END}\n\nrest\n")
    render("quick", out_dir=tmp_path / "reports" / "quick", runs=runs, readme=readme)
    text = readme.read_text()
    assert "old hand-written" not in text and "**K1**" in text and text.endswith("rest\n")
    assert "(reports/quick/REPORT.md)" in text
    readme.write_text("no markers\n")
    with pytest.raises(ConfigError, match="no results block"):
        render("quick", out_dir=tmp_path / "out", runs=runs, readme=readme)
