"""tta-lsa metrics: per-seed lists keyed ``metric/variant/target``, averaged over corruptions (spec §7–§8)."""

import pytest

from devicelab.core.config import resolve_config
from devicelab.methods.tta_lsa.config import TTALSAConfig, variant_name, variants
from devicelab.methods.tta_lsa.report import aggregate


def _seed_results(cfg, offset: float) -> dict:
    """Every variant on two corruptions x the targets, with accuracies that differ per corruption."""
    out = {}
    for method, head in variants(cfg):
        name = variant_name(method, head)
        out[name] = {
            f"{corruption}/5/{target}": {
                "acc": base + offset + (10.0 if method == "tent" else 0.0),
                "balanced_acc": 50.0,
            }
            for corruption, base in (("fog", 40.0), ("contrast", 60.0))
            for target in cfg.stream.targets
        }
    return out


def test_aggregate_averages_corruptions_and_keys_per_seed_lists():
    overrides = {
        "seeds": 2,
        "stream.targets": ["forward", "uniform", "backward"],
        "tta.methods": ["source", "tent"],
        "tta.heads": ["plain", "lsa"],
    }
    cfg = resolve_config(TTALSAConfig, "smoke", overrides)
    metrics = aggregate(cfg, [_seed_results(cfg, 0.0), _seed_results(cfg, 1.0)])
    assert metrics["acc/tent/uniform"] == [60.0, 61.0]  # mean of fog (40 + 10) and contrast (60 + 10)
    assert metrics["bacc/source+lsa/backward"] == [50.0, 50.0]
    assert metrics["acc/tent+lsa/shifted"] == [60.0, 61.0]  # uniform and backward
    assert metrics["gain/tent-source/forward"] == pytest.approx([10.0, 10.0])
    assert not any(k.startswith("prior_l1/") for k in metrics)  # no head reported an estimate
    assert "acc/lsa-mean3/shifted" not in metrics  # needs bn-adapt, tent and eata
