"""Tables of a hollowed-net run: accounted memory per variant and fidelity per variant (spec §6, §10.1)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from devicelab.core.stages import Stage
from devicelab.core.tables import format_per_seed, markdown_table
from devicelab.methods.hollowed_net.config import HollowedNetConfig, variant_key


def memory_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`~devicelab.methods.hollowed_net.recipe.memory_section` under their title."""
    title = "Accounted memory of one training step vs one inference forward (bytes; MB = 1e6)"
    return f"{title}\n\n{markdown_table(rows)}"


def evaluator_table(validation: Mapping[str, Mapping[str, float]]) -> str:
    """Each evaluator's accuracy on its own task on real glyph-world validation images, beside chance."""
    rows = [
        {
            "evaluator / task": name,
            "accuracy": float(v["accuracy"]),
            "chance": float(v["chance"]),
            "× chance": float(v["accuracy"]) / float(v["chance"]) if v["chance"] else None,
        }
        for name, v in validation.items()
    ]
    title = "Evaluators on real validation images (the gate and the fidelity proxies rest on them)"
    return f"{title}\n\n{markdown_table(rows)}" if rows else ""


def fidelity_metrics(
    config: HollowedNetConfig, results: Mapping[str, dict[str, Any]], subject_ids: Sequence[str]
) -> dict[str, list[float]]:
    """``{metric}_{variant}`` -> one value per seed, each the mean over subjects (claims average over seeds);
    a metric missing from some stage keeps its raw values."""
    seeds = range(config.seed, config.seed + config.seeds)
    per: dict[str, dict[str, list[float]]] = {}
    for variant in config.quality_variants:
        for subject_id in subject_ids:
            for seed in seeds:
                for k, val in results[Stage(variant, seed, subject_id).name].items():
                    if isinstance(val, int | float) and val is not None:
                        per.setdefault(variant, {}).setdefault(k, []).append(float(val))
    seed_means = {}
    for variant, recs in per.items():
        for k, values in recs.items():
            by_seed = (
                [statistics.fmean(values[i :: config.seeds]) for i in range(config.seeds)]
                if (len(values) == len(subject_ids) * config.seeds)
                else values
            )
            seed_means[f"{k}_{variant_key(variant)}"] = by_seed
    return seed_means


QUALITY_COLUMNS = (
    "dino",
    "clip_i",
    "clip_t",
    "attr_acc",
    "denoise_mse",
    "prior_drift",
    "mismatch",
    "train_s",
)


def quality_table(config: HollowedNetConfig, m: dict[str, list[float]]) -> str:
    """Fidelity proxies, denoising MSE, prior drift, mismatch and training time per variant."""
    rows = []
    for v in config.quality_variants:
        row = {"variant": v}
        for c in QUALITY_COLUMNS:
            vals = m.get(f"{c}_{variant_key(v)}")
            measured = vals and not any(math.isnan(x) for x in vals)
            row[c] = format_per_seed(vals, digits=4) if measured else "—"
        rows.append(row)
    title = "Fidelity (mean ± std over seeds; each seed averaged over subjects)"
    return f"{title}\n\n{markdown_table(rows)}"
