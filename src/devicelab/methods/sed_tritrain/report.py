"""Tables and plots of a sed-tritrain run: per-system metrics (mean ± std over seeds), pseudo-label
diagnostics, and detections against references for a few test clips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from devicelab.core.claims import MetricValue
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.tables import format_per_seed, markdown_table
from devicelab.methods.sed_tritrain.labels import detect

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.sed_tritrain.config import SedTritrainConfig
    from devicelab.methods.sed_tritrain.data import SedTask

DESCRIPTIONS = {
    "tritrain": "M: tri-training + DANN",
    "mean-teacher": "B1: mean-teacher CRNN (DCASE 2019 baseline)",
    "supervised": "B0: supervised CRNN (S + W)",
    "tritrain-no-dann": "A1: tri-training, μ = 0",
    "dann": "A2: CRNN + DANN",
    "oracle": "A3: oracle strong labels of W ∪ U",
}
COLUMNS = {
    "event_f1": "event F1 %",
    "segment_f1": "segment F1 %",
    "tag_f1": "tag F1 %",
    "psds1": "PSDS1",
    "intersection_f1": "intersection F1 %",
    "val_event_f1": "validation event F1 %",
    "synth_event_f1": "synthetic-valid event F1 %",
    "domain_gap": "domain gap (synth − test) pts",
    "domain_acc": "D accuracy %",
    "pl_precision": "pseudo-label precision %",
    "pl_recall": "pseudo-label recall %",
}


def add_tables(
    ctx: RunContext,
    config: SedTritrainConfig,
    variants: Sequence[str],
    metrics: Mapping[str, MetricValue],
    task: SedTask,
    versions: Mapping[str, str],
) -> None:
    """One row per system with every reported metric (spec §7)."""
    rows = []
    for v in variants:
        row: dict[str, Any] = {"system": DESCRIPTIONS.get(v, v)}
        for key, title in COLUMNS.items():
            value = metrics.get(f"{key}/{v}")
            digits = 3 if key == "psds1" else 2
            row[title] = format_per_seed(value, digits, n=False) if value else "–"
        rows.append(row)
    header = (
        f"sed-tritrain on {task.source}: test split {task.test.name} ({len(task.test)} clips), "
        f"S {len(task.synthetic)} / W {len(task.weak)} / U {len(task.unlabeled)} training clips, "
        f"{config.steps} steps, {config.seeds} seed(s); event F1 = sed_eval event-based macro F1 "
        "(collar 200 ms, "
        f"offset 20 %); mean ± std over seeds; " + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    ctx.add_table(header + "\n\n" + markdown_table(rows))


def add_plots(
    ctx: RunContext,
    results: Mapping[str, list[dict[str, Any]]],
    task: SedTask,
    config: SedTritrainConfig,
) -> None:
    """``detections.png``: frame posteriors and detections of the first seed of each system against the
    reference events, for the first ``plot_clips`` test clips; ``pseudo_labels.png`` for tri-training."""
    n_clips = min(config.plot_clips, len(task.test))
    if n_clips:
        variants = list(results)
        fig, axes = new_figure(n_clips, figsize=(4.2 * n_clips, 1.2 + 0.5 * len(task.classes)))
        axes = np.atleast_1d(axes)
        for i, v in enumerate(variants):  # legend entries even where a system detects nothing
            axes[0].plot([], [], color=f"C{i}", lw=2.5, label=DESCRIPTIONS.get(v, v).split(":")[0])
        for c in range(n_clips):
            ax, name = axes[c], task.test.filenames[c]
            for e in task.test.events or ():
                if e[0] == name:
                    k = task.classes.index(e[3])
                    ax.broken_barh([(e[1], e[2] - e[1])], (k - 0.45, 0.9), color="0.8")
            for i, v in enumerate(variants):
                scores = np.asarray(results[v][0]["plot_scores"][c])
                offset = (i + 1) / (len(variants) + 1) - 0.5
                for _, a, b, lab in detect(scores, task.classes, task.frame_s, config.threshold,
                                           config.median_window, name):  # fmt: skip
                    k = task.classes.index(lab)
                    ax.plot([a, b], [k + offset * 0.8] * 2, color=f"C{i}", lw=2.5)
            ax.set_yticks(range(len(task.classes)), task.classes, fontsize=7)
            ax.set_xlim(0, task.duration_s)
            ax.set_ylim(-0.6, len(task.classes) - 0.4)
            ax.set_xlabel("time (s)")
            ax.set_title(name, fontsize=8)
        axes[0].legend(fontsize=7, loc="upper right")
        fig.suptitle(
            "test clips: reference events (grey bars) and detections per system (seed 0)", fontsize=9
        )
        save_figure(ctx, fig, "detections.png")
    refresh = [r for v in results for r in results[v][:1] if r.get("refreshes")]
    if refresh:
        fig, (ax_pool, ax_pr) = new_figure(2, figsize=(9, 3.5))
        for r in refresh:
            steps = [x["step"] for x in r["refreshes"]]
            ax_pool.plot(steps, [x["pool_size"] for x in r["refreshes"]], marker="o", label=r["variant"])
            if "pl_precision" in r["refreshes"][0]:
                ax_pr.plot(
                    steps, [x["pl_precision"] for x in r["refreshes"]], marker="o", label=f"{r['variant']} P"
                )
                ax_pr.plot(
                    steps, [x["pl_recall"] for x in r["refreshes"]], marker="x", label=f"{r['variant']} R"
                )
        ax_pool.set_xlabel("step")
        ax_pool.set_ylabel("clips in the pseudo-label pool")
        ax_pr.set_xlabel("step")
        ax_pr.set_ylabel("frame precision / recall % (hidden labels)")
        ax_pool.legend(fontsize=7)
        ax_pr.legend(fontsize=7)
        save_figure(ctx, fig, "pseudo_labels.png")
