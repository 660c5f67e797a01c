"""The tta-lsa experiment end to end through the CLI (spec §7 smoke, §9), its bad inputs and its claims."""

import json

import numpy as np

from devicelab.cli import main
from devicelab.core.paths import data_root, runs_root
from devicelab.data.corpora.glyph_digits_c import load_corrupted
from devicelab.experiments import get_experiment


def _smoke_args(glyph_fixture, *extra):
    """The spec's smoke sizes (§4: n_max 60, 256 samples per domain, batch 64) on the generated fixture."""
    return [
        "run",
        "tta-lsa",
        "--profile",
        "smoke",
        f"glyph_root={glyph_fixture}",
        "source.domains=[serif, sans]",
        "source.n_max=60",
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
    assert {c["id"] for c in result["claims"]} >= {"C0", "C1/tent/uniform", "C2/tent", "C3"}
    verdicts = {c["id"]: c["verdict"] for c in result["claims"]}
    assert verdicts["C1/tent/backward"] in ("held", "not held")
    assert verdicts["C0"] == "not measured"  # smoke has no forward-ρ_s target
    assert any("Online accuracy" in t for t in result["tables"])
    assert sorted(result["plots"]) == ["plots/accuracy_backward.png", "plots/accuracy_uniform.png"]
    meta = json.loads((run_dir / "checkpoints" / "source-seed0.json").read_text())
    assert meta["rho_s"] == 10 and len(meta["class_counts"]) == 10 and meta["arch"] == "cnn-tiny"
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
    assert all(
        claims[f"C1/{m}/{t}"].margin == 2.0
        for m in ("bn-adapt", "tent", "eata")
        for t in ("uniform", "backward")
    )
    assert all(claims[f"C2/{m}"].margin == -1.0 for m in ("bn-adapt", "tent", "eata"))
    assert claims["C3"].margin == 0.5 and claims["C3"].baseline == "acc/logit-mean3/shifted"


def test_smoke_profile_runs_on_the_built_smoke_corpus():
    """The smoke profile as a user types it: builds glyph-digits (smoke) and glyph-digits-c first."""
    assert main(["run", "tta-lsa", "--profile", "smoke"]) == 0
    (run_dir,) = list((runs_root() / "tta-lsa").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert len(metrics["acc/tent+lsa/backward"]) == 1
