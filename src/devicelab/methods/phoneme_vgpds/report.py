"""Tables and plots of a phoneme-vgpds run: accuracy per system (mean ± std over seeds, token-bootstrap
interval), r, β·v̂ and ℓ_t per class of the GP systems, per-class accuracy and the CVGPDS confusion matrix."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from devicelab.core.claims import MetricValue
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.tables import format_per_seed, markdown_table

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.phoneme_vgpds.config import PhonemeVgpdsConfig
    from devicelab.methods.phoneme_vgpds.data import PhoneTask

Groups = Mapping[tuple[str, str], list[dict[str, Any]]]  # (system, condition) -> stage results per seed

DESCRIPTIONS = {
    "gmm": "GMM per class (bag of frames)",
    "gmm-hmm": "GMM-HMM per class (3 states, left to right)",
    "bgplvm": "Bayesian GP-LVM (no dynamics)",
    "vgpds": "VGPDS (unconstrained)",
    "cvgpds": "CVGPDS (variance constraint)",
}


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return statistics.fmean(finite) if finite else math.nan


def _cell(metrics: Mapping[str, MetricValue], key: str, digits: int = 2) -> str:
    value = metrics.get(key)
    return format_per_seed(value, digits, n=False) if value is not None else "–"


def accuracy_table(
    metrics: Mapping[str, MetricValue], groups: Groups, systems: Sequence[str], conditions: Sequence[str]
) -> str:
    """One row per system: accuracy per condition (mean ± std over seeds; seed-0 bootstrap interval over
    tokens), mean r and β·v̂ on the phones, training and scoring time."""
    rows = []
    for system in systems:
        row: dict[str, Any] = {"system": DESCRIPTIONS.get(system, system)}
        for condition in conditions:
            runs = groups.get((system, condition), [])
            low, high = runs[0]["accuracy_ci"] if runs else (math.nan, math.nan)
            row[f"{condition} acc %"] = _cell(metrics, f"accuracy/{system}/{condition}")
            row[f"{condition} 95 % CI (tokens, seed {runs[0]['seed'] if runs else '–'})"] = (
                f"[{low:.1f}, {high:.1f}]"
            )
        row["r (phones)"] = _cell(metrics, f"nystrom_ratio/{system}/phones", 4)
        row["β·v̂ (phones)"] = _cell(metrics, f"snr/{system}/phones", 2)
        row["train s"] = _cell(metrics, f"train_s/{system}/phones", 1)
        row["score s"] = _cell(metrics, f"score_s/{system}/phones", 1)
        rows.append(row)
    return markdown_table(rows)


def class_table(groups: Groups, systems: Sequence[str], classes: Sequence[str]) -> str:
    """Per-class phone accuracy % (mean over seeds) per system."""
    rows = []
    for c, name in enumerate(classes):
        row: dict[str, Any] = {"class": name}
        for system in systems:
            runs = groups.get((system, "phones"), [])
            row[system] = f"{_mean([r['per_class_accuracy'][c] for r in runs]):.1f}" if runs else "–"
        rows.append(row)
    return markdown_table(rows)


def gp_class_table(groups: Groups, systems: Sequence[str], classes: Sequence[str], condition: str) -> str:
    """r, β·v̂ and the learned ℓ_t (ms) per class of each GP system (mean over seeds)."""
    rows = []
    for c, name in enumerate(classes):
        row: dict[str, Any] = {"class": name}
        for system in systems:
            runs = groups.get((system, condition), [])
            if not runs or "nystrom_ratio_per_class" not in runs[0]:
                continue
            row[f"{system} r"] = f"{_mean([r['nystrom_ratio_per_class'][c] for r in runs]):.4f}"
            row[f"{system} β·v̂"] = f"{_mean([r['snr_per_class'][c] for r in runs]):.2f}"
            if "time_lengthscale_s_per_class" in runs[0]:
                ms = 1000 * _mean([r["time_lengthscale_s_per_class"][c] for r in runs])
                row[f"{system} ℓ_t ms"] = f"{ms:.1f}"
        rows.append(row)
    return markdown_table(rows) if rows and len(rows[0]) > 1 else ""


def confusion_table(runs: Sequence[dict[str, Any]], classes: Sequence[str]) -> str:
    """Confusion counts summed over seeds: rows true class, columns predicted class."""
    total = np.sum([np.asarray(r["confusion"]) for r in runs], axis=0)
    rows = [
        {"true \\ predicted": name, **{p: int(total[t, k]) for k, p in enumerate(classes)}}
        for t, name in enumerate(classes)
    ]
    return markdown_table(rows)


def add_tables(
    ctx: RunContext,
    config: PhonemeVgpdsConfig,
    groups: Groups,
    metrics: Mapping[str, MetricValue],
    task: PhoneTask,
    systems: Sequence[str],
    conditions: Sequence[str],
) -> None:
    v = config.vgpds
    header = (
        f"phoneme-vgpds on {task.source} ({len(task.classes)} classes; test: {task.test_subset}, "
        f"{task.speakers.get('test', 0)} held-out speakers), {config.train_tokens_per_class} train / "
        f"{config.test_tokens_per_class or 'all'} test tokens per class; Q = {v.latent_dim}, "
        f"M = {v.num_inducing}, {v.train_iters} iterations (β fixed {v.fixed_beta_iters}), {v.test_iters} "
        f"scoring iterations, Adam lr {v.lr}, {v.mean_parametrisation} coordinates, constraint "
        f"{v.constraint.name}; synthetic set: ℓ_t ∈ {config.synthetic.time_lengthscales_s} s. "
        f"Mean ± std over {config.seeds} seeds"
    )
    ctx.add_table(header + "\n\n" + accuracy_table(metrics, groups, systems, conditions))
    ctx.add_table(
        "Per-class phone accuracy % (mean over seeds)\n\n" + class_table(groups, systems, task.classes)
    )
    gp = [s for s in systems if (s, "phones") in groups and "nystrom_ratio" in groups[(s, "phones")][0]]
    table = gp_class_table(groups, gp, task.classes, "phones")
    if table:
        ctx.add_table("Nyström error ratio r, SNR β·v̂ and ℓ_t per phone class (mean over seeds)\n\n" + table)
    if "synthetic" in conditions:
        names = [f"ℓ_t = {1000 * s:g} ms" for s in config.synthetic.time_lengthscales_s]
        table = gp_class_table(groups, gp, names, "synthetic")
        if table:
            ctx.add_table("Synthetic set: learned ℓ_t, r and β·v̂ per class (mean over seeds)\n\n" + table)
    for system in ("cvgpds", "gmm-hmm"):
        runs = groups.get((system, "phones"))
        if runs:
            ctx.add_table(
                f"Confusion matrix of {DESCRIPTIONS[system]} on the phones (summed over seeds)\n\n"
                + confusion_table(runs, task.classes)
            )


def add_estimation_table(
    ctx: RunContext, config: PhonemeVgpdsConfig, metrics: Mapping[str, MetricValue], systems: Sequence[str]
) -> None:
    """Parameter estimation (spec §7, no claim): learned ℓ_t and β against the truth, held-out bound."""
    e = config.estimation
    rows = [
        {
            "system": DESCRIPTIONS.get(system, system),
            "ℓ_t s": _cell(metrics, f"time_lengthscale_s/{system}/estimation", 4),
            "ℓ_t rel. error": _cell(metrics, f"lengthscale_rel_error/{system}/estimation", 3),
            "β": _cell(metrics, f"noise_precision/{system}/estimation", 1),
            "β rel. error": _cell(metrics, f"noise_precision_rel_error/{system}/estimation", 3),
            "held-out bound per frame": _cell(metrics, f"heldout_bound_per_frame/{system}/estimation", 3),
        }
        for system in systems
    ]
    if rows:
        header = (
            f"Parameter estimation (no claim): {e.sequences} sequences of {e.frames} frames, "
            f"D = {e.output_dim}, drawn from a VGPDS with ℓ_t = {e.time_lengthscale_s} s and "
            f"β = {e.noise_precision:g}; 5 held-out sequences. Mean ± std over {config.seeds} seeds "
            "(a fresh draw per seed)"
        )
        ctx.add_table(header + "\n\n" + markdown_table(rows))


def add_plots(ctx: RunContext, groups: Groups, systems: Sequence[str], conditions: Sequence[str]) -> None:
    """Accuracy per system and condition (seeds as dots) and the GP systems' training bound per frame."""
    fig, (ax_acc, ax_curve) = new_figure(2, figsize=(12, 4))
    width = 0.8 / max(1, len(conditions))
    for k, condition in enumerate(conditions):
        for i, system in enumerate(systems):
            accs = [r["accuracy"] for r in groups.get((system, condition), [])]
            if not accs:
                continue
            x = i + (k - (len(conditions) - 1) / 2) * width
            ax_acc.bar(
                x,
                statistics.fmean(accs),
                width=width,
                color=f"C{k}",
                alpha=0.6,
                label=condition if i == 0 else None,
            )
            ax_acc.plot([x] * len(accs), accs, "k.", markersize=5)
    ax_acc.set_xticks(range(len(systems)), systems)
    ax_acc.set_ylabel("token accuracy (%)")
    ax_acc.set_ylim(0, 100)
    ax_acc.legend(fontsize=8)
    ax_acc.set_title("accuracy per system (dots: seeds)")
    for i, system in enumerate(systems):
        for r in groups.get((system, "phones"), []):
            curve = r.get("history_bound_per_frame")
            if curve:
                ax_curve.plot(
                    r.get("history_iteration", range(1, len(curve) + 1)),
                    curve,
                    color=f"C{i}",
                    alpha=0.7,
                    label=system if r["seed"] == groups[(system, "phones")][0]["seed"] else None,
                )
    ax_curve.set_xlabel("iteration (end of each checkpoint block)")
    ax_curve.set_ylabel("bound F per frame (phones)")
    ax_curve.set_title("training bound of the GP systems")
    if ax_curve.lines:
        ax_curve.legend(fontsize=8)
    save_figure(ctx, fig, "accuracy.png", dpi=110)
