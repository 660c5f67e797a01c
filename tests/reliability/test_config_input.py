"""Config values: types and ranges are checked before a run folder exists; each error names the key."""

from __future__ import annotations

import pytest

from .conftest import cli, devicelab, one_line_error, run_folders


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("epochs=0", ("epochs=0", "allowed: >= 1")),
        ("epochs=-1", ("epochs=-1", "allowed: >= 1")),
        ("seeds=0", ("seeds=0", "allowed: >= 1")),
        ("batch_size=0", ("batch_size=0", "allowed: >= 1")),
        ("dropout=1.5", ("dropout=1.5", "allowed: 0 .. 1")),
        ("honk_s_sweep=[4,0]", ("honk_s_sweep=[4, 0]", "allowed: >= 1")),
        ("epochs=three", ("epochs='three'", "expected an integer")),
        ("epoch=3", ("unknown key epoch", "valid keys: seed, seeds")),
        ("variants=[ssn,xyz]", ("xyz",)),
    ],
)
def test_bad_kws_ssn_value_is_one_line_naming_the_key(override, fragments):
    one_line_error(cli("run", "kws-ssn", "--profile", "smoke", override), *fragments)
    assert run_folders("kws-ssn") == []


def test_zero_epochs_from_the_command_line():
    """As a user types it: a new process, one line on stderr, exit status 2, no run folder."""
    result = devicelab("run", "kws-ssn", "--profile", "smoke", "epochs=0")
    assert one_line_error(result) == "devicelab: error: epochs=0: out of range; allowed: >= 1"
    assert run_folders("kws-ssn") == []


@pytest.mark.parametrize(
    ("name", "override", "allowed"),
    [
        ("fed-dg", "rounds=0", ">= 1"),
        ("tta-lsa", "source_training.epochs=0", ">= 1"),
        ("tta-lsa", "tta.momentum=1.5", "0 .. 1"),
        ("hollowed-net", "m=40", "0 .. 11"),
        ("hollowed-net", "finetune.steps=0", ">= 1"),
    ],
)
def test_every_method_checks_its_ranges(name, override, allowed):
    one_line_error(cli("run", name, "--profile", "smoke", override), override.split("=")[0], allowed)
    assert run_folders(name) == []


def test_unknown_experiment_lists_the_names():
    one_line_error(cli("run", "kws"), "unknown experiment 'kws'", "kws-ssn")


def test_missing_data_folder_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    one_line_error(cli("run", "kws-ssn", "--profile", "smoke", "--data", str(missing)), str(missing))
    assert run_folders("kws-ssn") == []


def test_range_metadata_is_declared_beside_the_field():
    import dataclasses

    from devicelab.core.config import ConfigError, resolve_config
    from devicelab.methods.kws_ssn.config import KwsSsnConfig

    ranges = {f.name: f.metadata.get("range") for f in dataclasses.fields(KwsSsnConfig)}
    assert ranges["epochs"] == (1, None) and ranges["dropout"] == (0, 1)
    with pytest.raises(ConfigError, match=r"^epochs=0: out of range; allowed: >= 1$"):
        resolve_config(KwsSsnConfig, "smoke", {"epochs": 0})
    assert resolve_config(KwsSsnConfig, "smoke", {"epochs": 1}).epochs == 1  # the edge is allowed
