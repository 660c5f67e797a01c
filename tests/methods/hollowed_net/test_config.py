"""The hollowed-net config: profiles resolve, and a bad choice is a config error naming the choices."""

import pytest

from devicelab.core.config import ConfigError, resolve_config
from devicelab.methods.hollowed_net.config import HollowedNetConfig, validate, variant_key


def test_profiles_resolve_to_the_spec_sizes():
    smoke = resolve_config(HollowedNetConfig, "smoke")
    assert smoke.base == "random-tiny" and smoke.m == 3 and smoke.finetune.am_storage == "memory"
    quick = resolve_config(HollowedNetConfig, "quick")
    assert (
        quick.finetune.steps == 200
        and quick.finetune.optim.lr == 1e-3
        and quick.finetune.optim.full_ft_lr == 1e-4
    )
    assert quick.pretrain.gate_action == "fail"  # spec §10.1: a base model that misses its gate stops
    assert (quick.evaluators.steps, quick.evaluators.attribute_steps, quick.evaluators.batch) == (
        200,
        1600,
        64,
    )
    full = resolve_config(HollowedNetConfig, "full")
    assert full.pretrain.gate_action == "fail" and full.finetune.am_dtype == "fp16"
    assert "hollowed-m9" in full.quality_variants


@pytest.mark.parametrize(
    ("key", "value", "choices"),
    [
        ("finetune.am_storage", "cloud", "'disk', 'memory'"),
        ("finetune.am_dtype", "int8", "'fp32', 'fp16'"),
        ("pretrain.gate_action", "ignore", "'fail', 'warn'"),
    ],
)
def test_a_bad_choice_names_the_key_and_the_choices(key, value, choices):
    with pytest.raises(ConfigError, match=f"{key}={value!r}: expected one of {choices}"):
        resolve_config(HollowedNetConfig, "quick", {key: value})


def test_variant_keys_are_metric_suffixes():
    assert variant_key("hollowed-m6") == "hollowed_m6" and variant_key("lora-kept-m6") == "lora_kept_m6"


def test_an_unknown_variant_is_a_config_error_before_any_work():
    validate(resolve_config(HollowedNetConfig, "full"))
    with pytest.raises(ConfigError, match="quality_variants: unknown variant 'lora-x'; expected .* or base"):
        validate(resolve_config(HollowedNetConfig, "smoke", {"quality_variants": ["base", "lora-x"]}))
