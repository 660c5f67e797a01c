"""phoneme-vgpds end to end through the CLI (smoke profile), --data on a TIMIT tree, resume, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devicelab import experiments
from devicelab.cli import main
from devicelab.core.config import ConfigError, resolve_config
from devicelab.methods.phoneme_vgpds.config import PhonemeVgpdsConfig
from devicelab.methods.phoneme_vgpds.experiment import CLAIMS
from devicelab.methods.phoneme_vgpds.recipe import gp_config

from .fake_timit import make_fake_timit

SYSTEMS = ("gmm", "gmm-hmm", "bgplvm", "vgpds", "cvgpds")


def _runs() -> list[Path]:
    folder = Path(os.environ["DEVICELAB_RUNS"]) / "phoneme-vgpds"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEVICELAB_RUNS", str(tmp_path_factory.mktemp("vgpds-runs")))
        yield


@pytest.fixture(scope="module")
def smoke_run(runs_root):
    """The smoke profile as a user runs it: builds the synth-phones smoke corpus, trains every system."""
    assert main(["run", "phoneme-vgpds", "--profile", "smoke"]) == 0
    return _runs()[-1]


def test_smoke_run_writes_every_system_and_claim_key(smoke_run):
    result = json.loads((smoke_run / "metrics.json").read_text())
    metrics = result["metrics"]
    claim_keys = {k for claim in CLAIMS for k in claim.keys()} | {"accuracy/gmm-hmm/phones"}
    assert claim_keys <= set(metrics)
    for system in SYSTEMS:
        for condition in ("phones", "synthetic"):
            (acc,) = metrics[f"accuracy/{system}/{condition}"]
            assert 0.0 <= acc <= 100.0
            assert len(metrics[f"accuracy/{system}/{condition}@items"][0]) == 15  # 3 classes x 5 tokens
    for system in ("bgplvm", "vgpds", "cvgpds"):
        (r,) = metrics[f"nystrom_ratio/{system}/phones"]
        assert 0.0 <= r <= 1.0 and metrics[f"snr/{system}/phones"][0] > 0
    assert result["claims"] == []  # P1–P4 are registered for quick and full only
    assert any("offline corpus synth-phones" in n for n in result["notes"])
    assert (smoke_run / "plots" / "accuracy.png").stat().st_size > 0
    assert len(list((smoke_run / "stages").iterdir())) == 12  # 5 systems x 2 data sets + 2 estimation fits
    for system in ("vgpds", "cvgpds"):  # parameter estimation (spec §7): ℓ_t and β against the truth
        (lengthscale,) = metrics[f"time_lengthscale_s/{system}/estimation"]
        (error,) = metrics[f"lengthscale_rel_error/{system}/estimation"]
        assert lengthscale > 0 and error == pytest.approx(abs(lengthscale - 0.05) / 0.05)
        assert metrics[f"noise_precision/{system}/estimation"][0] > 0
        assert len(metrics[f"heldout_bound_per_frame/{system}/estimation"]) == 1
    assert any(t.startswith("Parameter estimation") for t in result["tables"])
    stage = json.loads((smoke_run / "stages" / "cvgpds-phones-seed0.json").read_text())
    assert len(stage["history_bound_per_frame"]) == 4 and len(stage["time_lengthscale_s_per_class"]) == 3
    assert sum(sum(row) for row in stage["confusion"]) == 15
    log = [json.loads(line) for line in (smoke_run / "log.jsonl").read_text().splitlines()]
    assert sum(1 for r in log if r.get("stage") == "cvgpds-phones-seed0") == 4  # one per 5 iterations


def test_resume_reproduces_the_uninterrupted_result(smoke_run):
    """Drop a finished GP stage and its checkpoint's last state: the resumed run trains it again to the same
    numbers."""
    stage_file = smoke_run / "stages" / "vgpds-phones-seed0.json"
    before = json.loads(stage_file.read_text())
    stage_file.unlink()
    (smoke_run / "checkpoints" / "vgpds-phones-seed0.safetensors").unlink()  # restart from the previous epoch
    assert main(["run", "phoneme-vgpds", "--resume", str(smoke_run)]) == 0
    after = json.loads(stage_file.read_text())
    for key in ("accuracy", "correct", "nystrom_ratio", "snr", "bound_per_frame", "history_bound_per_frame"):
        assert after[key] == before[key], key


def test_data_flag_reads_a_timit_tree(runs_root, tmp_path):
    tree = make_fake_timit(tmp_path / "TIMIT")
    args = ["run", "phoneme-vgpds", "--profile", "smoke", "--data", str(tree), "synthetic_set=false"]
    args.append("estimation_set=false")
    assert main([*args, "variants=[gmm-hmm, cvgpds]", "test_subset=core_test"]) == 0
    result = json.loads((_runs()[-1] / "metrics.json").read_text())
    assert result["data_path"] == str(tree)
    assert result["metrics"]["test_tokens"] == 15 and "accuracy/cvgpds/synthetic" not in result["metrics"]
    assert not any(key.endswith("/estimation") for key in result["metrics"])
    # the classes are different sounds: the HMM separates them
    assert result["metrics"]["accuracy/gmm-hmm/phones"] == [100.0]


def test_bad_input_is_named_and_leaves_no_run_folder(runs_root, tmp_path, capsys):
    before = _runs()
    (tmp_path / "empty").mkdir()
    assert main(["run", "phoneme-vgpds", "--profile", "smoke", "--data", str(tmp_path / "empty")]) == 2
    assert "TRAIN/ and TEST/" in capsys.readouterr().err
    assert main(["run", "phoneme-vgpds", "--profile", "smoke", "variants=[gmm, hmmm]"]) == 2
    assert "hmmm" in capsys.readouterr().err
    assert main(["run", "phoneme-vgpds", "--profile", "smoke", "classes=[aa, xx]"]) == 2
    assert "xx" in capsys.readouterr().err
    assert main(["run", "phoneme-vgpds", "--profile", "smoke", "vgpds.constraint.name=tight"]) == 2
    assert "tight" in capsys.readouterr().err
    assert main(["run", "phoneme-vgpds", "--profile", "smoke", "train_iterz=3"]) == 2
    assert "train_iterz" in capsys.readouterr().err
    assert _runs() == before


def test_profiles_follow_the_spec_defaults():
    quick = resolve_config(PhonemeVgpdsConfig, "quick")
    assert quick.classes == ["iy", "ae", "aa", "uw", "er", "s", "sh", "f", "m", "n"]
    assert (
        quick.train_tokens_per_class,
        quick.test_tokens_per_class,
        quick.min_frames,
        quick.max_frames,
    ) == (
        40,
        25,
        4,
        16,
    )
    v = quick.vgpds
    assert (v.latent_dim, v.num_inducing, v.train_iters, v.fixed_beta_iters, v.test_iters) == (
        2,
        10,
        300,
        100,
        100,
    )
    assert (v.constraint.name, v.constraint.epsilon, v.constraint.weight) == ("nystrom", 0.05, 10.0)
    assert (quick.hmm.states, quick.hmm.mixtures, quick.gmm.components, quick.seeds) == (3, 2, 4, 3)
    full = resolve_config(PhonemeVgpdsConfig, "full")
    assert (full.classes, full.train_tokens_per_class, full.test_tokens_per_class, full.test_subset) == (
        [],
        500,
        0,
        "core_test",
    )
    assert (full.vgpds.latent_dim, full.vgpds.num_inducing, full.vgpds.train_iters) == (4, 20, 1500)
    assert (full.hmm.mixtures, full.gmm.components, full.min_frames, full.max_frames) == (8, 16, 3, 30)
    smoke = resolve_config(PhonemeVgpdsConfig, "smoke")
    assert (smoke.vgpds.num_inducing, smoke.vgpds.train_iters, smoke.hmm.mixtures) == (4, 20, 1)


def test_gp_systems_differ_only_where_the_spec_says():
    config = resolve_config(PhonemeVgpdsConfig, "quick")
    c, v, b = (gp_config(config, s, 3) for s in ("cvgpds", "vgpds", "bgplvm"))
    assert (c.constraint.name, v.constraint.name, b.constraint.name) == ("nystrom", "none", "none")
    assert (c.latent_prior, v.latent_prior, b.latent_prior) == ("gp_time", "gp_time", "isotropic")
    assert c.seed == v.seed == b.seed == 3 and c.lr == v.lr == b.lr and c.num_inducing == b.num_inducing
    with pytest.raises(ConfigError, match="cvgpds needs a constraint"):
        gp_config(resolve_config(PhonemeVgpdsConfig, "quick", {"vgpds.constraint.name": "none"}), "cvgpds", 0)


def test_claims_are_registered_as_the_spec_states():
    claims = {c.id: c for c in CLAIMS}
    p1, p2, p3, p4 = (claims[k] for k in ("P1", "P2", "P3", "P4"))
    assert (p1.method, p1.baseline, p1.margin, p1.strict) == (
        "accuracy/cvgpds/phones",
        "accuracy/gmm-hmm/phones",
        2.0,
        False,
    )
    acc, r = p2.parts
    assert (acc.method, acc.baseline, acc.margin) == ("accuracy/cvgpds/phones", "accuracy/vgpds/phones", 0.5)
    assert (r.method, r.baseline, r.direction, r.margin, r.strict) == (
        "nystrom_ratio/cvgpds/phones",
        "nystrom_ratio/vgpds/phones",
        "less",
        0.0,
        True,
    )
    assert (p3.method, p3.baseline, p3.margin, p3.strict) == (
        "accuracy/vgpds/phones",
        "accuracy/bgplvm/phones",
        0.0,
        True,
    )
    assert (p4.method, p4.baseline, p4.margin) == (
        "accuracy/cvgpds/synthetic",
        "accuracy/gmm-hmm/synthetic",
        5.0,
    )
    for claim in CLAIMS:
        assert claim.profiles == ("quick", "full")
    (hmm_floor,) = p1.floors
    assert p2.floors == p3.floors == (hmm_floor,)
    assert (hmm_floor.method, hmm_floor.margin, hmm_floor.kind) == (
        "accuracy/gmm-hmm/phones",
        50.0,
        "threshold",
    )
    (chance,) = p4.floors
    assert (chance.method, chance.margin, chance.direction) == ("accuracy/gmm/synthetic", 50.0, "less")


def test_floor_blocks_a_verdict_and_verdicts_follow_the_interval():
    p1 = {c.id: c for c in CLAIMS}["P1"]
    good = {"accuracy/cvgpds/phones": [80.0, 82.0, 81.0], "accuracy/gmm-hmm/phones": [70.0, 71.0, 69.5]}
    assert p1.evaluate(good, "quick").verdict == "held"
    low_hmm = {"accuracy/cvgpds/phones": [40.0, 42.0, 41.0], "accuracy/gmm-hmm/phones": [30.0, 31.0, 29.5]}
    result = p1.evaluate(low_hmm, "quick")
    assert result.verdict == "inconclusive" and "F-hmm" in result.note
    worse = {"accuracy/cvgpds/phones": [60.0, 61.0, 59.0], "accuracy/gmm-hmm/phones": [70.0, 71.0, 69.5]}
    assert p1.evaluate(worse, "quick").verdict == "not held"


def test_registry_lists_the_experiment():
    info = experiments.overview("phoneme-vgpds")
    assert info.corpora == ("synth-phones",) and info.docs == "docs/methods/phoneme-vgpds.md"
    assert "accuracy/cvgpds/phones" in info.headline
