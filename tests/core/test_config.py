from dataclasses import dataclass, field
from typing import Literal

import pytest

from devicelab.core.config import ConfigError, parse_overrides, resolve_config, to_dict


@dataclass
class Model:
    tau: float = 1.0
    norm: Literal["ssn", "bn"] = "ssn"


@dataclass
class Config:
    seed: int = 0
    epochs: int = 8
    lr: float = 0.1
    variants: list[str] = field(default_factory=lambda: ["ssn", "bn"])
    model: Model = field(default_factory=Model)

    PROFILES = {"smoke": {"epochs": 1, "model.tau": 1.5}, "full": {"epochs": 200}}


def test_profiles_and_overrides_resolve():
    assert resolve_config(Config, "quick").epochs == 8
    smoke = resolve_config(Config, "smoke")
    assert (smoke.epochs, smoke.model.tau) == (1, 1.5)
    cfg = resolve_config(Config, "full", parse_overrides(["lr=1", "model.norm=bn", "variants=[bn]"]))
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert (cfg.epochs, cfg.model.norm, cfg.variants) == (200, "bn", ["bn"])
    assert to_dict(cfg)["model"] == {"tau": 1.0, "norm": "bn"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epoch=3", "unknown key epoch"),
        ("model.depth=3", "unknown key model.depth"),
        ("epochs=abc", "epochs='abc': expected an integer"),
        ("model.norm=ln", "expected one of 'ssn', 'bn'"),
        ("variants=ssn", "expected a list"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(Config, "quick", parse_overrides([override]))


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid profiles: smoke, quick, full"):
        resolve_config(Config, "tiny")


def test_override_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["epochs"])
