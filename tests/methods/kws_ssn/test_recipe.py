"""The BC-ResNet recipe pieces: config profiles, variants, learning-rate schedule, a deterministic epoch."""

import math

import pytest
import torch

from devicelab.audio.augment import BackgroundNoiseMixer
from devicelab.core.config import ConfigError, resolve_config
from devicelab.core.stages import plan_stages
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.experiment import CLAIMS
from devicelab.methods.kws_ssn.recipe import (
    bcresnet_spec,
    build_bcresnet,
    make_optimizer,
    make_train_epoch,
    plan_models,
    step_lr,
    use_specaugment,
    warmup_cosine_lr,
)
from devicelab.nn.utils import count_parameters


def test_profiles_follow_the_spec_defaults():
    quick = resolve_config(KwsSsnConfig, "quick")
    assert (quick.epochs, quick.seeds, quick.warmup_epochs, quick.batch_size) == (8, 3, 1.0, 100)
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
