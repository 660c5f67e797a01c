"""The registered experiment: claims as the spec states them, the smoke profile through the CLI, bad input."""

import json

import pytest

from devicelab import experiments
from devicelab.methods.fed_ua.config import FedUAConfig


def test_registered_claims_equal_the_spec():
    exp = experiments.get_experiment("fed-ua")
    claims = {c.id: c for c in exp.claims}
    assert set(claims) == {"Q1", "Q2", "Q3", "F1", "F2", "F3", "F4"}
    expected = {  # id: (method, baseline, margin as "baseline − method ≥ margin", profiles)
        "Q1": ("fpr_unseen/fedua", "fpr_unseen/naive", 0.30, "quick"),
        "Q2": ("eer_unseen/fedua", "eer_unseen/fedaws", -3.0, "quick"),
        "Q3": ("fpr_unseen_late/fedua", "fpr_unseen_orig/fedua", -0.05, "quick"),
        "F1": ("fpr_unseen/fedua", "fpr_unseen/naive", 0.30, "full"),
        "F2": ("eer_unseen/fedua", "eer_unseen/fedaws", -3.0, "full"),
        "F3": ("eer_unseen/fedua", "eer_unseen/central", -5.0, "full"),
        "F4": ("fpr_unseen_late/fedua", "fpr_unseen_orig/fedua", -0.05, "full"),
    }
    for cid, (method, baseline, margin, profile) in expected.items():
        c = claims[cid]
        assert (c.method, c.baseline, c.margin, c.direction, c.kind) == (
            method, baseline, margin, "less", "difference")  # fmt: skip
        assert profile in c.profiles
        assert {f.id for f in c.floors} == {"F-central", "F-tpr"}
    floors = {f.id: f for f in claims["Q1"].floors}
    assert (floors["F-central"].method, floors["F-central"].margin, floors["F-central"].direction) == (
        "eer_seen/central", 10.0, "less")  # fmt: skip
    assert (floors["F-tpr"].kind, floors["F-tpr"].margin, floors["F-tpr"].baseline) == (
        "equivalence", 0.1, "target_tpr")  # fmt: skip
    assert FedUAConfig().seeds == [0, 1, 2]


def test_q1_verdicts_follow_the_interval_and_the_floors():
    q1 = next(c for c in experiments.get_experiment("fed-ua").claims if c.id == "Q1")
    good = {
        "fpr_unseen/fedua": [0.10, 0.12, 0.11],
        "fpr_unseen/naive": [0.85, 0.86, 0.84],
        "eer_seen/central": [5.0, 5.5, 6.0],
        "tpr/fedua": [0.88, 0.9, 0.91],
        "target_tpr": [0.9, 0.9, 0.9],
    }
    assert q1.evaluate(good, "quick").verdict == "held"
    assert q1.evaluate({**good, "fpr_unseen/fedua": [0.7, 0.7, 0.72]}, "quick").verdict == "not held"
    floor_off = q1.evaluate({**good, "eer_seen/central": [12.0, 13.0, 12.5]}, "quick")
    assert floor_off.verdict == "inconclusive" and "F-central" in floor_off.note
    tpr_off = q1.evaluate({**good, "tpr/fedua": [0.6, 0.62, 0.61]}, "quick")
    assert tpr_off.verdict == "inconclusive" and "F-tpr" in tpr_off.note


def test_smoke_run_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    from devicelab.cli import main

    assert main(["run", "fed-ua", "--profile", "smoke"]) == 0
    [run_dir] = list((tmp_path / "runs" / "fed-ua").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {c["id"] for c in metrics["claims"]} == {"Q1", "Q2", "Q3"}
    assert all(c["verdict"] == "inconclusive" and "at least 3" in c["note"] for c in metrics["claims"])
    m = metrics["metrics"]
    for variant in ("fedua", "naive", "fedaws", "central", "fedua-c8", "feduv-bch15"):
        assert 0.0 <= m[f"tpr/{variant}"][0] <= 1.0 and 0.0 <= m[f"eer_unseen/{variant}"][0] <= 100.0
    assert len(m["fpr_unseen/fedua@items"][0]) == 16  # one FPR per training user
    assert m["recovery_single/fedua"][0] >= 0.75  # the documented limit, measured on the trained model
    assert len(list((run_dir / "stages").glob("*.json"))) == 6
    assert any("fedua_code_length" in p for p in metrics["plots"])
    pytest.importorskip("onnxruntime")
    assert main(["export", "fed-ua", str(run_dir), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0


@pytest.mark.parametrize(
    ("override", "named"),
    [("code_lengths=[1]", "code_lengths"), ("codebook=hamming", "codebook"), ("lamda=2", "lamda"),
     ("bch_n=60", "BCH")],
)  # fmt: skip
def test_bad_config_is_a_one_line_error_and_writes_nothing(tmp_path, monkeypatch, capsys, override, named):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    from devicelab.cli import main

    assert main(["run", "fed-ua", "--profile", "smoke", override]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and named in err[-1]
    assert not list((tmp_path / "runs").glob("fed-ua/*/metrics.json"))


def test_bad_data_path_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    from devicelab.cli import main

    missing = tmp_path / "no-voxceleb"
    missing.mkdir()
    assert main(["run", "fed-ua", "--profile", "smoke", "--data", str(missing)]) != 0
    assert str(missing) in capsys.readouterr().err
    assert not list((tmp_path / "runs").glob("fed-ua/*/metrics.json"))
