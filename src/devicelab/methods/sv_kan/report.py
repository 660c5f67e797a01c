"""Tables and plots of an sv-kan run: EER per model (mean ± std over seeds), DET curves, t-SNE maps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devicelab.core.claims import MetricValue
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.tables import format_per_seed, markdown_table

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.sv_kan.config import SvKanConfig
    from devicelab.methods.sv_kan.data import SvTask

# the paper's group "2" row of the partial table (spec §9) [summary]: TK / NTK / Avg EER %
PAPER_ROWS = {
    "gmm-ubm": "1.76 / 20.85 / 11.31",
    "base": "2.72 / 9.95 / 6.34",
    "ge2e": "1.83 / 8.75 / 5.29",
    "kan": "1.96 / 4.76 / 3.36",
}
DESCRIPTIONS = {
    "base": "DeepRes-Base (triplet)",
    "kan": "KAN (triplet + keyword adversary)",
    "ge2e": "DeepRes-GE2E",
    "gmm-ubm": "GMM-UBM",
}


def add_tables(
    ctx: RunContext,
    config: SvKanConfig,
    variants: list[str],
    metrics: Mapping[str, MetricValue],
    task: SvTask,
) -> None:
    """The EER table (n_enrol = 1, with the paper's row beside it) and the diagnostics table."""

    def cell(name: str, digits: int = 2) -> str:
        value = metrics.get(name)
        return format_per_seed(value, digits, n=False) if value is not None and value != [] else "n/a"

    rows = [
        {
            "model": DESCRIPTIONS.get(v, v),
            "TK EER %": cell(f"eer_tk/{v}"),
            "NTK EER %": cell(f"eer_ntk/{v}"),
            "Avg EER %": cell(f"eer_avg/{v}"),
            "gap NTK−TK": cell(f"eer_gap/{v}"),
            "minDCF NTK": cell(f"min_dcf_ntk/{v}", 3),
            "keyword probe %": cell(f"probe_acc/{v}", 1),
            "real-person EER %": cell(f"eer_real/{v}"),
            "paper TK / NTK / Avg": PAPER_ROWS.get(v, "–"),
        }
        for v in variants
    ]
    seeds = {v: len(metrics.get(f"eer_avg/{v}", []) or []) for v in variants}
    header = (
        f"sv-kan on {task.source}: {len(task.train)} training / {len(task.test)} test utterances, "
        f"{config.epochs} epochs, n_enrol = 1; mean ± std over seeds "
        f"({', '.join(f'{v}: {n}' for v, n in seeds.items())})"
    )
    ctx.add_table(header + "\n\n" + markdown_table(rows))
    extra = []
    for v in variants:
        row = {"model": DESCRIPTIONS.get(v, v)}
        for key, label in (
            ("eer_sibling", "sibling-impostor EER %"),
            ("eer_ti", "text-independent EER %"),
            ("eer_corpus_test_tk", "corpus TK list EER %"),
            ("eer_corpus_test_ntk", "corpus NTK list EER %"),
            ("tpr_at_fpr1_ntk", "NTK TPR@1%FPR %"),
            ("train_wall_s", "train wall s"),
        ):
            row[label] = cell(f"{key}/{v}", 1 if key == "train_wall_s" else 2)
        for n in config.n_enrol:
            if n != 1:
                row[f"Avg EER % (n_enrol {n})"] = cell(f"eer_avg_e{n}/{v}")
        extra.append(row)
    ctx.add_table(
        "Diagnostics (mean ± std over seeds; n/a: not measurable on this data)\n\n" + markdown_table(extra)
    )


def add_plots(ctx: RunContext, groups: Mapping[str, list[dict[str, Any]]]) -> None:
    """DET curves (first seed of each model; TK, NTK or text-independent trials) and t-SNE maps coloured by
    speaker and keyword."""
    from scipy.stats import norm

    names = {"tk": "TK", "ntk": "NTK", "ti": "text-independent"}
    kinds = [k for k in names if any(runs and k in runs[0].get("det", {}) for runs in groups.values())]
    if kinds:
        fig, axes = new_figure(len(kinds), figsize=(5.5 * len(kinds), 4.5))
        axes = axes if hasattr(axes, "__len__") else [axes]
        probit = lambda p: norm.ppf(min(max(p, 1e-4), 1 - 1e-4))  # noqa: E731
        ticks = [0.002, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6]
        for ax, kind in zip(axes, kinds):
            for i, (variant, runs) in enumerate(groups.items()):
                det = runs[0].get("det", {}).get(kind) if runs else None
                if det:
                    ax.plot(
                        [probit(x) for x in det["fa"]],
                        [probit(y) for y in det["miss"]],
                        color=f"C{i}",
                        label=DESCRIPTIONS.get(variant, variant),
                    )
            ax.set_xticks([probit(t) for t in ticks], [f"{100 * t:g}" for t in ticks])
            ax.set_yticks([probit(t) for t in ticks], [f"{100 * t:g}" for t in ticks])
            ax.set_xlim(probit(0.001), probit(0.7))
            ax.set_ylim(probit(0.001), probit(0.7))
            ax.set_xlabel("false acceptance rate (%)")
            ax.set_ylabel("miss rate (%)")
            ax.set_title(f"DET, {names[kind]} trials (n_enrol 1, first seed)")
            ax.legend(fontsize=8)
        save_figure(ctx, fig, "det.png")
    maps = {v: runs[0]["tsne"] for v, runs in groups.items() if runs and runs[0].get("tsne")}
    if maps:
        fig, axes = new_figure(2 * len(maps), figsize=(4.5 * 2 * len(maps), 4.2))
        axes = axes if hasattr(axes, "__len__") else [axes]
        for j, (variant, points) in enumerate(maps.items()):
            for ax, colour in zip(axes[2 * j : 2 * j + 2], ("speaker", "keyword")):
                ax.scatter(points["x"], points["y"], c=points[colour], cmap="tab20", s=8)
                ax.set_title(f"{DESCRIPTIONS.get(variant, variant)}: by {colour}", fontsize=9)
                ax.set_xticks([]), ax.set_yticks([])
        save_figure(ctx, fig, "tsne.png")
