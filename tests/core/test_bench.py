"""Benchmark plumbing: rows, their table, the report section, the runner's name check; no time is asserted."""

import json

import pytest

from devicelab.core.bench import BENCHMARKS, bench_rows, bench_section, benchmarks_dir, row, rows_table
from devicelab.core.config import ConfigError


def test_every_registered_benchmark_has_its_script():
    for script, _ in BENCHMARKS.values():
        assert (benchmarks_dir() / script).is_file()


def test_rows_reach_the_table_and_the_report_section(tmp_path):
    rows = [
        row("log-mel", "LogMel", "librosa", 0.5, (0.45, 0.55), "≤ 1.00", True, value="10 vs 20 ms"),
        row("latency", "ORT", "eager", 0.1, (0.1, 0.2), "≤ 0.5 ms", False),
    ]
    folder = tmp_path / "quick" / "bench"
    folder.mkdir(parents=True)
    (folder / "logmel_vs_librosa.json").write_text(json.dumps({"rows": rows[:1]}))
    (folder / "onnx_latency.json").write_text(json.dumps({"rows": rows[1:]}))
    found = bench_rows("quick", root=tmp_path)
    assert [r["benchmark"] for r in found] == ["logmel", "onnx-latency"]
    table = rows_table(found)
    assert "0.50 [0.45, 0.55]" in table and "**no**" in table and "yes" in table
    section = bench_section("quick", root=tmp_path)
    assert section[0] == "## Benchmarks" and table in section
    assert bench_section("full", root=tmp_path) == []


def test_unknown_benchmark_is_a_config_error():
    from devicelab.core.bench import run_benchmarks

    with pytest.raises(ConfigError, match="unknown benchmark"):
        run_benchmarks(["no-such-bench"], "quick")


def test_cli_lists_the_benchmarks_and_refuses_an_unknown_one(capsys):
    from devicelab.cli import main

    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in BENCHMARKS)
    assert main(["bench", "no-such-bench"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err
