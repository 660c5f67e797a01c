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


def depth_plots(ctx, config: HollowedNetConfig, m: dict[str, list[float]]) -> None:
    """Spec §10 plots: pre-compute mismatch vs m and fidelity (DINO, CLIP-I, CLIP-T proxies) vs m, over the
    hollowed variants of the run, with LoRA r and the base model as horizontal references (mean ± std)."""
    from devicelab.core.plots import new_figure, save_figure

    depths = sorted(
        int(v.removeprefix("hollowed-m")) for v in config.quality_variants if v.startswith("hollowed-m")
    )
    if not depths:
        return

    def series(metric: str) -> tuple[list[int], list[float], list[float]]:
        xs, means, stds = [], [], []
        for d in depths:
            vals = [x for x in m.get(f"{metric}_hollowed_m{d}", []) if not math.isnan(x)]
            if vals:
                xs.append(d)
                means.append(statistics.fmean(vals))
                stds.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
        return xs, means, stds

    fig, ax = new_figure()
    xs, means, stds = series("mismatch")
    if xs:
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3)
        ax.set(xlabel="hollow depth m", ylabel="pre-computed vs live input (rel. L2)", title="Stale a_m")
        save_figure(ctx, fig, "mismatch_vs_m.png")
    fig, axes = new_figure(ncols=3, figsize=(12.0, 3.6))
    for ax, (metric, label) in zip(axes, (("dino", "DINO"), ("clip_i", "CLIP-I"), ("clip_t", "CLIP-T"))):
        xs, means, stds = series(metric)
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label="hollowed")
        for ref, style in ((f"lora_r{config.rank}", "--"), ("base", ":")):
            vals = m.get(f"{metric}_{ref}")
            if vals:
                ax.axhline(statistics.fmean(vals), linestyle=style, color="grey", label=ref)
        ax.set(xlabel="hollow depth m", title=f"{label}(-proxy)")
    axes[0].legend(fontsize=7)
    save_figure(ctx, fig, "fidelity_vs_m.png")
