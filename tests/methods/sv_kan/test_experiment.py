"""sv-kan end to end through the CLI (smoke profile), ONNX export with parity, --data, resume, bad input."""

import json
import os
from pathlib import Path

import pytest
import torch

from devicelab.cli import main

from .test_data import make_librispeech


def _newest_run() -> Path:
    return sorted((Path(os.environ["DEVICELAB_RUNS"]) / "sv-kan").iterdir())[-1]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke profile as a user runs it: builds the smoke corpus, trains Base, KAN and GMM-UBM."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEVICELAB_RUNS", str(tmp_path_factory.mktemp("sv-runs")))
        assert main(["run", "sv-kan", "--profile", "smoke"]) == 0
        return _newest_run()


def test_smoke_run_scores_every_model_on_tk_and_ntk_trials(smoke_run):
    result = json.loads((smoke_run / "metrics.json").read_text())
    metrics = result["metrics"]
    for variant in ("base", "kan", "gmm-ubm"):
        for kind in ("tk", "ntk", "avg"):
            (value,) = metrics[f"eer_{kind}/{variant}"]
            assert 0.0 <= value <= 100.0
        assert metrics[f"eer_gap/{variant}"][0] == pytest.approx(
            metrics[f"eer_ntk/{variant}"][0] - metrics[f"eer_tk/{variant}"][0]
        )
    assert 0.0 <= metrics["probe_acc/kan"][0] <= 100.0 and metrics["probe_chance/kan"][0] == 5.0
    assert metrics["corpus_confound"] == 0.75 and 0.5 < metrics["train_preferred_fraction"] <= 1.0
    assert result["claims"] == []  # S1-S4 are registered for quick and full only
    assert {p.name for p in (smoke_run / "stages").iterdir()} == {
        "base-seed0.json",
        "kan-seed0.json",
        "gmm-ubm-seed0.json",
    }
    assert (smoke_run / "plots" / "det.png").stat().st_size > 0
    assert (smoke_run / "plots" / "tsne.png").stat().st_size > 0
    kan = json.loads((smoke_run / "stages" / "kan-seed0.json").read_text())
    assert [h["epoch"] for h in kan["history"]] == [0, 1] and kan["history"][-1]["lambda"] > 0.4
    assert "Avg EER %" in result["tables"][0]


def test_export_matches_pytorch(smoke_run, tmp_path):
    pytest.importorskip("onnxruntime")
    from devicelab.core.onnx import onnx_parity
    from devicelab.methods.sv_kan.export import SpeakerEmbedder, load_trained

    out = tmp_path / "sv.onnx"
    assert main(["export", "sv-kan", str(smoke_run), "--onnx", str(out), "--variant", "kan"]) == 0
    embedder = SpeakerEmbedder(load_trained(smoke_run, "kan-seed0"))
    clips = 0.1 * torch.randn(2, 32000, generator=torch.Generator().manual_seed(5))
    assert onnx_parity(embedder, out, clips) <= 1e-4
    with torch.no_grad():
        torch.testing.assert_close(embedder(clips).norm(dim=1), torch.ones(2))


def test_export_names_a_missing_model_and_writes_nothing(smoke_run, tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export", "sv-kan", str(smoke_run), "--onnx", str(out), "--variant", "ge2e"]) == 2
    assert "ge2e-seed0.safetensors: no such trained model; available: base-seed0, kan-seed0" in (
        capsys.readouterr().err
    )
    assert not out.exists()


def test_resume_skips_finished_stages(smoke_run):
    stage = (smoke_run / "stages" / "kan-seed0.json").read_text()
    assert main(["run", "sv-kan", "--resume", str(smoke_run)]) == 0
    assert (smoke_run / "stages" / "kan-seed0.json").read_text() == stage


def test_data_flag_reads_a_librispeech_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    root = make_librispeech(tmp_path / "LibriSpeech")
    args = [
        "run",
        "sv-kan",
        "--profile",
        "smoke",
        "--data",
        str(root),
        "variants=[ge2e, kan]",
        "n_enrol=[1, 2]",
    ]
    assert (
        main([*args, "utterances_per_speaker=3", "probe_folds=2", "tsne_speakers=0", "adv_input=pre_norm"])
        == 0
    )
    result = json.loads((_newest_run() / "metrics.json").read_text())
    metrics = result["metrics"]
    assert result["data_path"] == str(root) and metrics["train_utterances"] == 24
    assert {"eer_ntk/kan", "eer_ntk/ge2e", "eer_ntk_e2/kan", "probe_acc/ge2e"} <= set(metrics)
    assert "corpus_confound" not in metrics  # real data: no built-in confound


def test_bad_data_folder_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["run", "sv-kan", "--profile", "smoke", "--data", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "empty: no subset folders" in err and len(err.strip().splitlines()) == 1


def test_bad_variant_and_key_are_named(capsys):
    assert main(["run", "sv-kan", "--profile", "smoke", "variants=[base, xvector]"]) == 2
    assert "xvector" in capsys.readouterr().err
    assert main(["run", "sv-kan", "--profile", "smoke", "epochz=3"]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["run", "sv-kan", "--profile", "smoke", "mining=hardest"]) == 2
    assert "batch_all" in capsys.readouterr().err
    assert main(["run", "sv-kan", "--profile", "smoke", "adversary=ctc_phones"]) == 2
    assert "ctc_phones' is not implemented" in capsys.readouterr().err


def test_claims_are_registered_as_the_spec_states_them():
    from devicelab import experiments

    claims = {c.id: c for c in experiments.get_experiment("sv-kan").claims}
    assert set(claims) == {"S1", "S2", "S3", "S4"}
    assert (claims["S1"].kind, claims["S1"].margin, claims["S1"].direction) == ("ratio", 0.9, "less")
    assert (claims["S2"].kind, claims["S2"].margin) == ("ratio", 0.8)
    assert (claims["S3"].kind, claims["S3"].margin, claims["S3"].direction) == ("difference", 5.0, "less")
    assert claims["S4"].profiles == ("full",) and claims["S4"].baseline == "eer_avg/ge2e"
    for claim in claims.values():
        assert "F-base" in [f.id for f in claim.floors]
    assert [f.id for f in claims["S2"].floors] == ["F-base", "F-gap"]
    floor = claims["S1"].floors[0]
    assert (floor.margin, floor.direction, floor.profiles) == (10.0, "less", ("quick",))
    # Base at 12 % in every seed: the floor holds no verdict even when KAN looks far better
    result = claims["S1"].evaluate(
        {"eer_avg/base": [12.0, 12.1, 11.9], "eer_avg/kan": [2.0, 2.1, 1.9]}, "quick"
    )
    assert result.verdict == "inconclusive" and "floor F-base" in result.note


def test_librispeech_without_alignments_runs_text_independent_trials(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    root = make_librispeech(tmp_path / "LibriSpeech", with_alignments=False)
    args = ["run", "sv-kan", "--profile", "smoke", "--data", str(root), "variants=[base, kan]"]
    assert main([*args, "keyword_source=none", "utterances_per_speaker=3", "tsne_speakers=0"]) == 0
    result = json.loads((_newest_run() / "metrics.json").read_text())
    assert "eer_ti/base" in result["metrics"] and not any(k.endswith("/kan") for k in result["metrics"])
    assert any("KAN not trained" in n for n in result["notes"])
    assert (_newest_run() / "plots" / "det.png").exists()


def make_voxceleb(root):
    """4 dev speakers x 4 utterances, 3 test speakers (id10270-id10272) x 3, and a Vox1-O list."""
    import numpy as np
    import soundfile as sf

    for spk, n in [*((f"id1000{i}", 4) for i in range(1, 5)), *((f"id1027{i}", 3) for i in range(3))]:
        for k in range(n):
            path = root / "wav" / spk / "vid" / f"{k + 1:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.1 * np.random.default_rng(k).normal(size=20000), 16000)
    lines = ["1 id10270/vid/00001.wav id10270/vid/00002.wav", "0 id10270/vid/00001.wav id10271/vid/00001.wav"]
    lines += [
        "1 id10271/vid/00002.wav id10271/vid/00003.wav",
        "0 id10272/vid/00001.wav id10271/vid/00003.wav",
    ]
    (root / "veri_test2.txt").write_text("\n".join(lines) + "\n")
    return root


def test_data_flag_reads_a_voxceleb1_root_and_scores_vox1_o(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEVICELAB_RUNS", str(tmp_path / "runs"))
    root = make_voxceleb(tmp_path / "VoxCeleb1")
    args = ["run", "sv-kan", "--profile", "smoke", "--data", str(root), "variants=[base]"]
    assert main([*args, "utterances_per_speaker=3", "tsne_speakers=0"]) == 0
    metrics = json.loads((_newest_run() / "metrics.json").read_text())["metrics"]
    assert metrics["train_utterances"] == 16 and metrics["test_utterances"] == 6
    assert 0.0 <= metrics["eer_corpus_test_vox1o/base"][0] <= 100.0
    (root / "veri_test2.txt").write_text("1 id10270/vid/00001.wav id10270/vid/00009.wav\n")
    assert main(args) == 2
    assert "veri_test2.txt:1" in capsys.readouterr().err
