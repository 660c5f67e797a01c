"""hollowed-net fidelity metrics: one value per seed, each the mean over subjects (spec §10.1)."""

import pytest

from devicelab.core.config import resolve_config
from devicelab.core.stages import Stage
from devicelab.methods.hollowed_net.config import HollowedNetConfig
from devicelab.methods.hollowed_net.report import fidelity_metrics, quality_table


def test_fidelity_metrics_average_subjects_per_seed_and_skip_missing_numbers():
    cfg = resolve_config(
        HollowedNetConfig, "smoke", {"seeds": 2, "quality_variants": ["lora-r4", "hollowed-m3"]}
    )
    subjects = ["cat", "dog"]
    results = {
        Stage(variant, seed, subject).name: {
            "dino": 0.1 * seed + (0.2 if subject == "dog" else 0.0),
            "mismatch": 0.01 if variant.startswith("hollowed") else None,
        }
        for variant in cfg.quality_variants
        for subject in subjects
        for seed in (0, 1)
    }
    metrics = fidelity_metrics(cfg, results, subjects)
    assert metrics["dino_lora_r4"] == pytest.approx([0.1, 0.2])
    assert metrics["mismatch_hollowed_m3"] == [0.01, 0.01] and "mismatch_lora_r4" not in metrics
    table = quality_table(cfg, metrics)
    assert "| hollowed-m3 | 0.1500 ± 0.0707 (n=2) |" in table and "| lora-r4 |" in table
