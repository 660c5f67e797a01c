"""The tta-lsa experiment end to end through the CLI (spec §7 smoke, §9), its bad inputs and its claims."""

import json

import numpy as np

from devicelab.cli import main
from devicelab.core.paths import data_root, runs_root
from devicelab.data.corpora.glyph_digits_c import load_corrupted
from devicelab.experiments import get_experiment
from devicelab.methods.tta_lsa.config import PAIRED_METHODS


def _smoke_args(glyph_fixture, *extra):
    """The spec's smoke sizes (§4: 256 samples per domain, batch 64) on the generated fixture; n_max 30, half
    of a class's 60 images, so the adapter's held-out draw fits beside the source set."""
    return [
        "run",
        "tta-lsa",
        "--profile",
        "smoke",
        f"glyph_root={glyph_fixture}",
        "source.domains=[serif, sans]",
        "source.n_max=30",
        "stream.size=256",
        "stream.per_class=64",
        "stream.batch_size=64",
        *extra,
    ]


def test_smoke_run_writes_metrics_claims_tables_and_plots(glyph_fixture, capsys):
    assert main(_smoke_args(glyph_fixture)) == 0
    (run_dir,) = list((runs_root() / "tta-lsa").iterdir())
    result = json.loads((run_dir / "metrics.json").read_text())
    metrics = result["metrics"]
    for variant in ("tent", "tent+lsa", "tent+logit"):
        for target in ("uniform", "backward"):
            (value,) = metrics[f"acc/{variant}/{target}"]
            assert 0.0 <= value <= 100.0
    claims = {c["id"]: c for c in result["claims"]}
    assert set(claims) == {"C0", "C1", "C2", "C3"}
    smoke_targets = ("uniform", "backward")
    expected_parts = {f"C1/{m}/{t}" for m in PAIRED_METHODS for t in smoke_targets}
    assert {p["id"] for p in claims["C1"]["parts"]} == expected_parts
    # one smoke seed: no interval, so no claim can be held or not held
    assert all(c["verdict"] == "inconclusive" for c in claims.values())
    assert "missing metric gain/tent-source/forward" in claims["C0"]["note"]  # smoke has no forward target
    assert any("Online accuracy" in t for t in result["tables"])
    assert sorted(result["plots"]) == ["plots/accuracy_backward.png", "plots/accuracy_uniform.png"]
    meta = json.loads((run_dir / "checkpoints" / "source-seed0.json").read_text())
    assert meta["rho_s"] == 10 and len(meta["class_counts"]) == 10 and meta["arch"] == "glyphnet"
    assert "tent+lsa" in capsys.readouterr().out

    # glyph-digits-c was written in the CIFAR-10-C layout: 5 severities × N stacked, uint8
    c_root = data_root() / "glyph-digits-c" / "smoke"
    images = np.load(c_root / "contrast.npy")
    labels = np.load(c_root / "labels.npy")
    assert images.dtype == np.uint8 and images.shape == (5 * 640, 32, 32, 3) and labels.shape == (5 * 640,)
    sev5, lab5 = load_corrupted(c_root, "contrast", 5)
    assert sev5.shape == (640, 32, 32, 3) and np.bincount(lab5).tolist() == [64] * 10

    # an interrupted run resumes: finished stages are read back, a lost one is redone with the same result
    (run_dir / "metrics.json").unlink()
    (run_dir / "stages" / "tent+lsa-seed0.json").unlink()
    meta = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**meta, "state": "started"}))  # as a killed run leaves it
    assert main(_smoke_args(glyph_fixture, "--resume")) == 0
    again = json.loads((run_dir / "metrics.json").read_text())
    assert again["metrics"] == metrics


def test_cli_reports_a_missing_domain_and_a_missing_corpus(glyph_fixture, tmp_path, capsys):
    assert main(_smoke_args(glyph_fixture, "source.domains=[serif, gothic]")) == 2
    assert "source.domains" in capsys.readouterr().err
    assert main(["run", "tta-lsa", "--profile", "smoke", f"glyph_root={tmp_path / 'nowhere'}"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_claims_follow_the_spec():
    claims = {c.id: c for c in get_experiment("tta-lsa").claims}
    assert claims["C0"].margin == 2.0 and claims["C0"].method == "gain/tent-source/forward"
    c1 = {p.id: p for p in claims["C1"].parts}  # one claim over methods × shifted targets
    assert all(
        c1[f"C1/{m}/{t}"].margin == 2.0 and "quick" in c1[f"C1/{m}/{t}"].profiles
        for m in ("bn-adapt", "tent", "eata")
        for t in ("uniform", "backward")
    )
    assert all(c1[f"C1/{m}/backward-10"].profiles == ("full",) for m in ("bn-adapt", "tent", "eata"))
    assert all(p.margin == -1.0 for p in claims["C2"].parts) and len(claims["C2"].parts) == 3
    assert claims["C3"].margin == 0.5 and claims["C3"].baseline == "acc/logit-mean3/shifted"
    # floors: the source model learned (C0–C3); the frozen-prior control within a point (C1, C3)
    assert {f.id for f in claims["C1"].floors} == {"F-source", "F-control"}
    assert {f.id for f in claims["C2"].floors} == {"F-source"}


def test_the_control_gate_fails_when_the_frozen_adapter_moves_accuracy():
    claims = {c.id: c for c in get_experiment("tta-lsa").claims}
    metrics = {"acc/source/clean": [95.0, 95.2, 94.8], "acc/lsa-mean3/shifted": [60.0, 61.0, 60.5]}
    metrics["acc/logit-mean3/shifted"] = [50.0, 50.5, 50.2]
    for target in ("forward", "uniform", "backward"):
        metrics[f"acc/tent/{target}"] = [50.0, 51.0, 50.5]
        metrics[f"acc/tent+lsa-frozen/{target}"] = [50.1, 51.0, 50.6]
    assert claims["C3"].evaluate(metrics, "quick").verdict == "held"
    # the frozen-prior adapter moves accuracy by itself (−3.4 points, as the earlier under-trained source did)
    metrics["acc/tent+lsa-frozen/uniform"] = [46.6, 47.6, 47.1]
    result = claims["C3"].evaluate(metrics, "quick")
    assert result.verdict == "inconclusive" and result.note.startswith("floor F-control")


def test_smoke_profile_runs_on_the_built_smoke_corpus():
    """The smoke profile as a user types it: builds glyph-digits (smoke) and glyph-digits-c first."""
    assert main(["run", "tta-lsa", "--profile", "smoke"]) == 0
    (run_dir,) = list((runs_root() / "tta-lsa").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert len(metrics["acc/tent+lsa/backward"]) == 1
