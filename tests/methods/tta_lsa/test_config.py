"""The tta-lsa config: profiles resolve, and a bad name or size is a config error naming the key."""

import pytest

from devicelab.core.config import ConfigError, resolve_config
from devicelab.methods.tta_lsa.config import TTALSAConfig, parse_variant, validate, variant_name, variants


def test_bad_config_values_name_the_key():
    cfg = resolve_config(TTALSAConfig, "smoke", {"stream.targets": ["sideways"]})
    with pytest.raises(ConfigError, match="stream.targets: unknown target 'sideways'"):
        validate(cfg)
    with pytest.raises(ConfigError, match="tta.methods: unknown TTA method 'cotta'"):
        validate(resolve_config(TTALSAConfig, "smoke", {"tta.methods": ["cotta"]}))
    with pytest.raises(ConfigError, match="tta.heads"):
        validate(resolve_config(TTALSAConfig, "smoke", {"tta.heads": ["bias"]}))
    with pytest.raises(ConfigError, match="stream.corruptions: unknown corruption 'frost'"):
        validate(resolve_config(TTALSAConfig, "smoke", {"stream.corruptions": ["frost"]}))


def test_sizes_out_of_range_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"stream.severities=\[6\]: out of range; allowed: 1 .. 5"):
        resolve_config(TTALSAConfig, "smoke", {"stream.severities": [6]})
    for key, value in (("seeds", 0), ("stream.batch_size", 0), ("source.rho", 0.5), ("threads", 0)):
        with pytest.raises(ConfigError, match=f"{key}={value}: out of range"):
            resolve_config(TTALSAConfig, "smoke", {key: value})


def test_the_run_grid_names_variants_in_the_spec_notation():
    cfg = resolve_config(TTALSAConfig, "quick")
    names = [variant_name(m, h) for m, h in variants(cfg)]
    assert names[:3] == ["source", "source+lsa", "source+logit"]
    assert {"tent+lsa-oracle", "tent+logit-oracle", "tent+lsa-frozen"} <= set(names)
    assert len(names) == len(set(names))
    assert all(variant_name(*parse_variant(name)) == name for name in names)
