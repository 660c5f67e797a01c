"""Metrics, tables, plots and the spec's verdict rule for the tta-lsa run (spec §7–§8)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from devicelab.core.claims import (
    AnyClaim,
    ClaimResult,
    evaluate_claims,
    metric_mean,
    metric_std,
    t_interval,
)
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.run import RunContext
from devicelab.core.tables import format_per_seed, markdown_table
from devicelab.methods.tta_lsa.config import PAIRED_METHODS, TTALSAConfig, variant_name, variants
from devicelab.methods.tta_lsa.data import shifted_targets


def aggregate(
    cfg: TTALSAConfig, per_seed: list[dict[str, dict[str, dict[str, float]]]]
) -> dict[str, list[float]]:
    """Per-seed lists: acc / balanced_acc / prior_l1 per (variant, target), averaged over corruptions and
    severities; the claims' derived metrics (C0 gains, C3 means over the three methods)."""
    metrics: dict[str, list[float]] = {}
    names = [variant_name(m, h) for m, h in variants(cfg)]
    targets = cfg.stream.targets
    shifted = shifted_targets(targets)
    for name in names:
        for target in targets:
            for metric, short in (("acc", "acc"), ("balanced_acc", "bacc"), ("prior_l1", "prior_l1")):
                values = []
                for seed_results in per_seed:
                    rows = [
                        r[metric]
                        for key, r in seed_results[name].items()
                        if key.rsplit("/", 1)[1] == target and metric in r
                    ]
                    values.append(statistics.fmean(rows) if rows else math.nan)
                if not all(math.isnan(v) for v in values):
                    metrics[f"{short}/{name}/{target}"] = values
        if shifted:
            metrics[f"acc/{name}/shifted"] = [
                statistics.fmean(metrics[f"acc/{name}/{t}"][s] for t in shifted) for s in range(len(per_seed))
            ]
    if "tent" in names and "source" in names:
        for target in targets:
            metrics[f"gain/tent-source/{target}"] = [
                a - b for a, b in zip(metrics[f"acc/tent/{target}"], metrics[f"acc/source/{target}"])
            ]
    for head in ("lsa", "logit"):
        keys = [f"acc/{m}+{head}/{t}" for m in PAIRED_METHODS for t in shifted]
        if shifted and all(k in metrics for k in keys):
            metrics[f"acc/{head}-mean3/shifted"] = [
                statistics.fmean(metrics[k][s] for k in keys) for s in range(len(per_seed))
            ]
    return metrics


def _fmt(values: Sequence[float] | None) -> str:
    """Mean ± std over seeds with one decimal (one seed: its value); – where nothing was measured."""
    if not values or all(math.isnan(v) for v in values):
        return "–"
    return format_per_seed(values[0] if len(values) == 1 else values, digits=1, n=False)


def claim_rows(results: Sequence[ClaimResult]) -> list[dict]:
    """One row per claim and per part of a conjunction: mean Δ, its 95 % interval, n, margin, verdict."""
    rows = []
    for result in results:
        for r in [result.to_dict(), *result.parts]:
            interval = "–" if math.isnan(r["low"]) else f"[{r['low']:+.2f}, {r['high']:+.2f}]"
            rows.append(
                {
                    "claim": r["id"],
                    "Δ (mean)": "–" if math.isnan(r["value"]) else f"{r['value']:+.2f}",
                    "95 % interval": interval,
                    "n": r["n"],
                    "needs": r["margin"],
                    "verdict": r["verdict"] + (f" ({r['note']})" if r["note"] else ""),
                }
            )
    return rows


def write_report(
    cfg: TTALSAConfig, ctx: RunContext, metrics: dict, per_seed: list, claims: Sequence[AnyClaim]
) -> None:
    """Per-prior accuracy table, the 2×2 control table, π̂ errors, claim verdicts, and one plot per target."""
    names = [variant_name(m, h) for m, h in variants(cfg)]
    targets = cfg.stream.targets
    n = cfg.seeds
    title = (
        f"Online accuracy (%) per target prior, mean over {len(cfg.stream.corruptions)} corruptions × "
        f"severity {cfg.stream.severities}, mean ± std over {n} seed(s)"
    )
    rows = [
        {
            "variant": name,
            **{t: _fmt(metrics.get(f"acc/{name}/{t}")) for t in targets},
            "shifted": _fmt(metrics.get(f"acc/{name}/shifted")),
        }
        for name in names
    ]
    ctx.add_table(f"**{title}**\n\n" + markdown_table(rows))
    balanced = [
        {"variant": name, **{t: _fmt(metrics.get(f"bacc/{name}/{t}")) for t in targets}} for name in names
    ]
    ctx.add_table("**Balanced online accuracy (%) per target prior**\n\n" + markdown_table(balanced))

    shifted = shifted_targets(targets)
    control = []
    for method in cfg.tta.oracle_methods:
        if all(
            f"acc/{method}+{h}/shifted" in metrics for h in ("lsa", "logit", "lsa-oracle", "logit-oracle")
        ):
            for kind, head in (("learned adapter", "lsa"), ("logit correction", "logit")):
                control.append(
                    {
                        "method": method,
                        "head": kind,
                        "estimated π̂": _fmt(metrics[f"acc/{method}+{head}/shifted"]),
                        "true π_t": _fmt(metrics[f"acc/{method}+{head}-oracle/shifted"]),
                        "plain": _fmt(metrics.get(f"acc/{method}/shifted")),
                    }
                )
    if control:
        ctx.add_table(
            f"**2×2 controls, shifted targets ({', '.join(shifted)}), online accuracy (%)**\n\n"
            + markdown_table(control)
        )

    l1 = [
        {"variant": name, **{t: _fmt(metrics.get(f"prior_l1/{name}/{t}")) for t in targets}}
        for name in names
        if any(f"prior_l1/{name}/{t}" in metrics for t in targets)
    ]
    if l1:
        ctx.add_table("**End-of-domain ‖π̂ − π_t‖₁ (diagnostic)**\n\n" + markdown_table(l1))

    results = evaluate_claims(claims, metrics, ctx.profile)
    if results:
        ctx.add_table(
            "**Claims: paired seed intervals, parts of each conjunction**\n\n"
            + markdown_table(claim_rows(results))
        )
        status = {r.id: r.verdict for r in results}
        if status.get("C1") == "held" and status.get("C3") == "not held":
            ctx.note(
                "C1 holds and C3 does not: estimate-and-correct, not the learned adapter, explains the gain."
            )
    control_rows = control_gate_rows(cfg, metrics)
    if control_rows:
        ctx.add_table(
            "**Control gate (F-control): the adapter fed π_s (`lsa-frozen`) against the plain method, and "
            "the gain of the estimated prior over it; paired over seeds, mean [95 % interval], points**\n\n"
            + markdown_table(control_rows)
        )
    _plots(cfg, ctx, metrics, names, targets)


def _paired(a: Sequence[float], b: Sequence[float]) -> str:
    """Mean paired difference a − b over seeds with its 95 % t interval ("+1.23 [−0.40, +2.86]")."""
    mean, low, high = t_interval([x - y for x, y in zip(a, b)])
    if math.isnan(low):
        return f"{mean:+.2f}"
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def control_gate_rows(cfg: TTALSAConfig, metrics: dict) -> list[dict]:
    """Per method with a frozen-prior control and per target: ``X+lsa-frozen − X`` (the gate: within
    ±1 point), ``X+lsa − X+lsa-frozen`` (what the estimated prior adds) and ``X+lsa − X``."""
    rows = []
    for method in cfg.tta.frozen_methods:
        for target in cfg.stream.targets:
            plain = metrics.get(f"acc/{method}/{target}")
            frozen = metrics.get(f"acc/{method}+lsa-frozen/{target}")
            lsa = metrics.get(f"acc/{method}+lsa/{target}")
            if not plain or not frozen:
                continue
            rows.append(
                {
                    "method": method,
                    "target": target,
                    "lsa-frozen − plain": _paired(frozen, plain),
                    "lsa − lsa-frozen": _paired(lsa, frozen) if lsa else "–",
                    "lsa − plain": _paired(lsa, plain) if lsa else "–",
                }
            )
    return rows


HEAD_COLOURS = {"plain": "tab:grey", "lsa": "tab:blue", "logit": "tab:orange", "lsa-frozen": "tab:purple"}


def _plots(cfg: TTALSAConfig, ctx: RunContext, metrics: dict, names: list[str], targets: list[str]) -> None:
    """One bar chart of online accuracy per variant for each target prior (``plots/accuracy_TARGET.png``)."""
    for target in targets:
        shown = [n for n in names if f"acc/{n}/{target}" in metrics]
        means = [metric_mean(metrics[f"acc/{n}/{target}"]) for n in shown]
        stds = [metric_std(metrics[f"acc/{n}/{target}"]) for n in shown]
        colours = [HEAD_COLOURS.get(n.partition("+")[2] or "plain", "tab:green") for n in shown]
        fig, ax = new_figure(figsize=(max(6, 0.5 * len(shown) + 2), 4))
        ax.bar(range(len(shown)), means, yerr=stds, color=colours, capsize=3)
        ax.set_xticks(range(len(shown)), shown, rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("online accuracy (%)")
        ax.set_title(f"tta-lsa, target prior {target} (mean over corruptions, {cfg.seeds} seed(s))")
        save_figure(ctx, fig, f"accuracy_{target}.png", dpi=100)
