"""The BC-ResNet recipe pieces: config profiles, variants, learning-rate schedule, a deterministic epoch."""

import math

import numpy as np
import pytest
import torch

from devicelab.audio.augment import BackgroundNoiseMixer
from devicelab.audio.features import LogMel
from devicelab.core.config import ConfigError, resolve_config
from devicelab.core.stages import plan_stages
from devicelab.data.datasets.speech_commands import LABELS_12
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.data import ClipSet, KwsTask, clip_voices
from devicelab.methods.kws_ssn.experiment import CLAIMS
from devicelab.methods.kws_ssn.recipe import (
    bcresnet_spec,
    build_bcresnet,
    cache_eval_features,
    compute_features,
    eval_features,
    make_optimizer,
    make_train_epoch,
    plan_models,
    step_lr,
    use_specaugment,
    warmup_cosine_lr,
)
from devicelab.methods.kws_ssn.report import real_confusion_table, voice_class_table, voice_table
from devicelab.methods.kws_ssn.vtlp import VtlpLogMel, triangular_filterbank, warp_frequencies
from devicelab.nn.utils import count_parameters


def test_profiles_follow_the_spec_defaults():
    quick = resolve_config(KwsSsnConfig, "quick")
    assert (quick.epochs, quick.seeds, quick.warmup_epochs, quick.batch_size) == (2, 3, 0.25, 100)
    assert quick.vtlp == [] and quick.specaugment == "auto"
    assert (quick.lr, quick.momentum, quick.weight_decay, quick.dropout) == (0.1, 0.9, 1e-3, 0.1)
    assert quick.variants == ["ssn", "bn", "bn-wide"]
    full = resolve_config(KwsSsnConfig, "full")
    assert (full.epochs, full.seeds, full.warmup_epochs, full.class_caps) == (200, 5, 5.0, "published")
    assert "res15" in full.honk_models
    with pytest.raises(ConfigError, match="epoch"):
        resolve_config(KwsSsnConfig, "quick", {"epoch": 3})


def test_claims_are_registered_as_the_spec_states():
    claims = {c.id: c for c in CLAIMS}
    k1, k2, k3 = claims["K1"], claims["K2"], claims["K3"]
    assert (k1.method, k1.baseline, k1.margin, k1.strict, k1.profiles) == (
        "test_acc_ssn",
        "test_acc_bn",
        0.3,
        False,
        ("quick", "full"),
    )
    assert (k2.method, k2.baseline, k2.margin, k2.strict, k2.profiles) == (
        "test_acc_ssn",
        "test_acc_bn_wide",
        0.0,
        True,
        ("quick", "full"),
    )
    assert (k3.method, k3.baseline, k3.margin, k3.profiles) == (
        "test_acc_res15_ssn",
        "test_acc_res15_bn",
        0.5,
        ("full",),
    )


def test_variants_have_the_published_sizes():
    config = KwsSsnConfig()
    sizes = {
        v: count_parameters(build_bcresnet(config, v)) for v in ("ssn", "bn", "bn-wide", "ssn-affine-all")
    }
    assert sizes == {"ssn": 9232, "bn": 7760, "bn-wide": 9149, "ssn-affine-all": 7760}
    with pytest.raises(ValueError, match="unknown variant"):
        build_bcresnet(config, "layernorm")


def test_stages_cover_every_model_and_seed_once():
    config = resolve_config(KwsSsnConfig, "quick", {"seed": 4})
    variants = [m.variant for m in plan_models(config)]
    names = [s.name for s in plan_stages(variants, range(4, 4 + config.seeds))]
    assert names[:3] == ["ssn-seed4", "bn-seed4", "bn-wide-seed4"] and len(names) == 9 == len(set(names))
    full = resolve_config(KwsSsnConfig, "full")
    models = plan_models(full)
    assert {"res15_ssn", "res15_bn", "res15_ssn_s8", "ssn_instance"} <= {m.metric_key() for m in models}
    assert "res15-ssn-s8" in {m.variant for m in models}


def test_warmup_then_cosine_per_iteration():
    total, warm, peak = 1000, 100, 0.1
    assert warmup_cosine_lr(1, total, warm, peak) == pytest.approx(0.001)
    assert warmup_cosine_lr(50, total, warm, peak) == pytest.approx(0.05)
    assert warmup_cosine_lr(100, total, warm, peak) == pytest.approx(0.1)
    assert warmup_cosine_lr(550, total, warm, peak) == pytest.approx(0.05)
    assert warmup_cosine_lr(1000, total, warm, peak) == pytest.approx(0.0, abs=1e-12)
    lrs = [warmup_cosine_lr(i, total, warm, peak) for i in range(100, 1001)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert step_lr(2999, [3000, 6000], 0.1) == 0.1 and math.isclose(step_lr(6000, [3000, 6000], 0.1), 0.001)


def test_specaugment_follows_tau_in_auto_mode():
    assert not use_specaugment(KwsSsnConfig(tau=1.0))
    assert use_specaugment(KwsSsnConfig(tau=1.5))
    assert use_specaugment(KwsSsnConfig(tau=1.0, specaugment="on"))
    with pytest.raises(ValueError, match="specaugment"):
        use_specaugment(KwsSsnConfig(specaugment="maybe"))


def _epoch_result(seed: int):
    torch.manual_seed(0)
    config = KwsSsnConfig(batch_size=8)
    spec = bcresnet_spec(config, "ssn")
    optimizer = make_optimizer(spec.model, config, spec.weight_decay)
    g = torch.Generator().manual_seed(0)
    waves, labels = 0.1 * torch.randn(16, 16000, generator=g), torch.arange(16) % 12
    mixer = BackgroundNoiseMixer([0.1 * torch.randn(32000, generator=g)])
    record = make_train_epoch(spec, optimizer, waves, labels, mixer, seed)(0)
    return record, next(spec.model.parameters()).detach().clone()


def test_an_epoch_is_deterministic_under_its_seed():
    (a, wa), (b, wb), (c, _) = _epoch_result(3), _epoch_result(3), _epoch_result(4)
    assert a == b and torch.equal(wa, wb)
    assert a["loss"] != c["loss"]
    assert 0 < a["lr"] <= 0.1


def _toy_task(with_real: bool = True) -> KwsTask:
    g = torch.Generator().manual_seed(1)

    def clips(n: int) -> ClipSet:
        return ClipSet(
            0.1 * torch.randn(n, 16000, generator=g), torch.arange(n) % 12, [f"w/{i}.wav" for i in range(n)]
        )

    real = ClipSet(
        0.1 * torch.randn(2, 16000, generator=g), torch.ones(2, dtype=torch.long), ["zero/a.wav", "one/a.wav"]
    )
    noise = [0.1 * torch.randn(32000, generator=g)]
    return KwsTask(
        clips(4), clips(3), clips(5), noise, 2, "toy", "list test split", real=real if with_real else None
    )


def test_evaluation_features_are_cached_once_and_equal_the_direct_ones():
    task = _toy_task()
    direct = {name: compute_features(LogMel(), clips.waves) for name, clips in task.eval_sets().items()}
    cache_eval_features(task, KwsSsnConfig())
    assert {name for _, name in task.features} == {"validation", "test", "real"}
    for name, features in direct.items():
        assert torch.equal(eval_features(task, LogMel(), name), features)
    assert eval_features(_toy_task(), LogMel(), "test").shape == (5, 1, 40, 101)  # no cache: computed


def test_real_confusion_row_counts_the_predicted_classes():
    task = _toy_task()
    groups = {"bn": [{"real_pred": ["_silence_", "_unknown_"]}, {"real_pred": ["_silence_", "no"]}]}
    table = real_confusion_table(groups, task)
    row = next(line for line in table.splitlines() if line.startswith("| BC-ResNet-1, BatchNorm |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in table.splitlines() if line.startswith("| model |"))
    counts = dict(zip([c.strip() for c in header.strip("|").split("|")], cells))
    assert (counts["_silence_"], counts["_unknown_"], counts["no"], counts["yes"]) == ("2", "1", "1", "0")
    assert "_silence_/_silence_" in table  # per digit: one prediction per seed


def test_vtlp_at_one_is_the_plain_front_end_and_raises_a_tone_above_one():
    frontend = LogMel()
    bins = np.linspace(0.0, 8000.0, 257)
    assert np.abs(triangular_filterbank(frontend, bins) - frontend.mel_fbank.numpy()).max() < 1e-6
    vtlp = VtlpLogMel(frontend, 0.8, 1.2, steps=5)  # grid 0.8, 0.9, 1.0, 1.1, 1.2
    waves = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(vtlp(waves, torch.ones(2)), frontend(waves), atol=1e-4)
    tone = torch.sin(2 * math.pi * 1000.0 * torch.arange(16000) / 16000).repeat(3, 1)
    peaks = vtlp(tone, torch.tensor([0.8, 1.0, 1.2])).mean(-1).argmax(-1).tolist()
    assert peaks[0] < peaks[1] < peaks[2]
    warped = warp_frequencies(bins, 1.2, 8000.0)
    assert warped[-1] == pytest.approx(8000.0) and np.all(np.diff(warped) > 0)  # Nyquist fixed, monotone
    with pytest.raises(ConfigError, match="vtlp"):
        bcresnet_spec(KwsSsnConfig(vtlp=[1.2]), "bn")


def test_an_epoch_with_vtlp_is_deterministic_and_differs_from_plain():
    def run(vtlp):
        torch.manual_seed(0)
        config = KwsSsnConfig(batch_size=8, vtlp=vtlp)
        spec = bcresnet_spec(config, "bn")
        optimizer = make_optimizer(spec.model, config, spec.weight_decay)
        g = torch.Generator().manual_seed(0)
        waves, labels = 0.1 * torch.randn(16, 16000, generator=g), torch.arange(16) % 12
        mixer = BackgroundNoiseMixer([0.1 * torch.randn(32000, generator=g)])
        return make_train_epoch(spec, optimizer, waves, labels, mixer, 3)(0)

    assert run([0.9, 1.1]) == run([0.9, 1.1]) != run([])


def test_test_voices_come_from_speakers_csv_and_group_the_per_clip_scores(tmp_path):
    (tmp_path / "speakers.csv").write_text(
        "spk8,engine,voice,variant,person,pitch,speed,formant,split\n"
        "aaaa0001,flite,slt,,slt,1,1,1,test\n"
        "bbbb0002,espeak-ng,en-us+f3,f3,-,1,1,1,test\n"
    )
    names = [
        str(tmp_path / "yes/aaaa0001_nohash_0.wav"),
        str(tmp_path / "no/bbbb0002_nohash_1.wav"),
        "_silence_",
    ]
    voices = clip_voices(tmp_path, names)
    assert voices == ["flite slt", "espeak-ng f3", "_silence_"]
    assert clip_voices(tmp_path / "missing", names) == []
    table = voice_table(
        {"bn": [{"test_correct": [0.0, 100.0, 100.0]}, {"test_correct": [100.0, 100.0, 0.0]}]}, voices
    )
    assert "| flite slt | 1 | 50.0 |" in table and "| espeak-ng f3 | 1 | 100.0 |" in table
    per_class = voice_class_table(
        {
            "ssn": [{"test_correct": [100.0, 100.0, 100.0]}],
            "bn": [{"test_correct": [0.0, 100.0, 100.0]}, {"test_correct": [100.0, 100.0, 0.0]}],
        },
        voices,
        [LABELS_12.index("yes"), LABELS_12.index("no"), 0],
    )
    lines = per_class.splitlines()
    assert "BatchNorm" in lines[0] and not any(line.startswith("| _silence_") for line in lines)
    slt = next(line for line in lines if line.startswith("| flite slt"))
    cells = [c.strip() for c in slt.strip("|").split("|")]
    assert cells[1 + LABELS_12.index("yes")] == "50" and cells[1 + LABELS_12.index("no")] == "–"
