"""The tta-lsa config: profiles resolve, and a bad name or size is a config error naming the key."""

import pytest

from devicelab.core.config import ConfigError, resolve_config
from devicelab.methods.tta_lsa.config import TTALSAConfig, validate, variant_name, variants


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
    with pytest.raises(ConfigError, match="stream.severities"):
        validate(resolve_config(TTALSAConfig, "smoke", {"stream.severities": [6]}))


def test_the_run_grid_names_variants_in_the_spec_notation():
    cfg = resolve_config(TTALSAConfig, "quick")
    names = [variant_name(m, h) for m, h in variants(cfg)]
    assert names[:3] == ["source", "source+lsa", "source+logit"]
    assert {"tent+lsa-oracle", "tent+logit-oracle", "tent+lsa-frozen"} <= set(names)
    assert len(names) == len(set(names))
