"""Tables and plots of a kws-ssn run: accuracy per model (mean ± std over seeds), diagnostics, per class."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devicelab.core.claims import MetricValue
from devicelab.core.plots import new_figure, save_figure
from devicelab.core.tables import format_per_seed, markdown_table
from devicelab.data.datasets.speech_commands import LABELS_12

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.kws_ssn.config import KwsSsnConfig
    from devicelab.methods.kws_ssn.data import KwsTask

# published anchors (spec §9): GSC v1 / v2 top-1 %, BC-ResNet-1, 5 seeds
PAPER_ANCHORS = {
    "ssn": "96.6 ± 0.21 / 96.9 ± 0.30",
    "bn": "96.1 ± 0.11 / 96.5 ± 0.12",
    "bn_wide": "96.2 ± 0.26 / 96.7 ± 0.12",
    "res15_ssn": "96.8 ± 0.13 / –",
    "res15_bn": "95.8 / –",
}
DESCRIPTIONS = {
    "ssn": "BC-ResNet-1, SSN (S=5, sub)",
    "bn": "BC-ResNet-1, BatchNorm",
    "bn_wide": "BC-ResNet-1, BatchNorm, b=9",
    "ssn_affine_all": "BC-ResNet-1, SSN, affine all",
    "ssn_instance": "BC-ResNet-1, SSN, instance stats",
}


def _describe(key: str) -> str:
    return DESCRIPTIONS.get(key, key)


def add_tables(
    ctx: RunContext,
    config: KwsSsnConfig,
    groups: Mapping[str, list[dict[str, Any]]],
    metrics: Mapping[str, MetricValue],
    task: KwsTask,
) -> None:
    """The accuracy table (with the paper's numbers beside) and the per-class accuracy table.

    ``groups`` maps each model's metric key (``ssn``, ``bn_wide``, ``res15_ssn``...) to its stage results (one
    per seed).
    """

    def cell(name: str) -> str:
        value = metrics.get(name)
        return format_per_seed(value, 2) if value is not None else "–"

    rows = [
        {
            "model": _describe(key),
            "params": metrics.get(f"params_{key}", "–"),
            "test acc %": cell(f"test_acc_{key}"),
            "val acc %": cell(f"val_acc_{key}"),
            "channel acc %": cell(f"channel_acc_{key}"),
            "real digits → _unknown_": cell(f"real_unknown_frac_{key}"),
            "paper v1 / v2": PAPER_ANCHORS.get(key, "–"),
        }
        for key in groups
    ]
    header = (
        f"kws-ssn on {task.source} (GSC v{task.gsc_version} layout, {task.test_kind}): "
        f"{len(task.train)} training / {len(task.test)} test clips, {config.epochs} epochs, "
        f"{config.seeds} seeds; mean ± std over seeds"
    )
    ctx.add_table(header + "\n\n" + markdown_table(rows))

    per_class = []
    for c, label in enumerate(LABELS_12):
        row = {"class": label}
        for key, runs in groups.items():
            values = [v for v in (r["per_class_acc"][c] for r in runs) if v == v]  # drop NaN (class absent)
            row[_describe(key)] = f"{statistics.fmean(values):.1f}" if values else "–"
        per_class.append(row)
    ctx.add_table("Per-class test accuracy % (mean over seeds)\n\n" + markdown_table(per_class))
    if task.test_voices and all("test_correct" in r for runs in groups.values() for r in runs):
        ctx.add_table(voice_table(groups, task.test_voices))
        labels = [int(y) for y in task.test.labels]
        ctx.add_table(voice_class_table(groups, task.test_voices, labels))
    if task.real is not None and all("real_pred" in r for runs in groups.values() for r in runs):
        ctx.add_table(real_confusion_table(groups, task))


def voice_table(groups: Mapping[str, list[dict[str, Any]]], voices: list[str]) -> str:
    """Test accuracy per held-out voice (mean over seeds), from the per-clip scores: where the test errors
    come from."""
    rows = []
    for voice in sorted(set(voices)):
        idx = [i for i, v in enumerate(voices) if v == voice]
        row: dict[str, Any] = {"test voice": voice, "clips": len(idx)}
        for key, runs in groups.items():
            per_seed = [statistics.fmean(r["test_correct"][i] for i in idx) for r in runs]
            row[_describe(key)] = f"{statistics.fmean(per_seed):.1f}"
        rows.append(row)
    return "Test accuracy % per held-out voice (mean over seeds)\n\n" + markdown_table(rows)


def voice_class_table(
    groups: Mapping[str, list[dict[str, Any]]], voices: list[str], labels: list[int], model: str = "bn"
) -> str:
    """Test accuracy per held-out voice and class for one model (the floor's BatchNorm model when it ran, else
    the first), mean over seeds: which words of which voice keep the test split below validation."""
    key = model if model in groups else next(iter(groups))
    runs = groups[key]
    rows = []
    for voice in sorted(set(voices) - {"_silence_"}):
        row: dict[str, Any] = {"test voice": voice}
        for c, label in enumerate(LABELS_12):
            idx = [i for i, (v, y) in enumerate(zip(voices, labels)) if v == voice and y == c]
            row[label] = (
                f"{statistics.fmean(statistics.fmean(r['test_correct'][i] for i in idx) for r in runs):.0f}"
                if idx
                else "–"
            )
        rows.append(row)
    return (
        f"Test accuracy % per held-out voice and class, {_describe(key)} (mean over seeds)\n\n"
        + markdown_table(rows)
    )


def real_confusion_table(groups: Mapping[str, list[dict[str, Any]]], task: KwsTask) -> str:
    """What each model predicts on the real/ digits (all ``_unknown_``): counts over seeds and clips per
    predicted class, one row per model (the confusion row of the true class ``_unknown_``)."""
    rows = []
    for key, runs in groups.items():
        counts = Counter(label for r in runs for label in r["real_pred"])
        row: dict[str, Any] = {"model": _describe(key)}
        row.update({label: counts.get(label, 0) for label in LABELS_12})
        rows.append(row)
    digits = [Path(n).parent.name for n in task.real.names] if task.real is not None else []
    by_digit = []
    for key, runs in groups.items():
        row = {"model": _describe(key)}
        for i, digit in enumerate(digits):
            row[digit] = "/".join(r["real_pred"][i] for r in runs)
        by_digit.append(row)
    return (
        f"Real speech ({len(digits)} Asterisk Allison digits, true class _unknown_): predicted class counts "
        "over seeds × clips\n\n"
        + markdown_table(rows)
        + "\n\nPer digit (one prediction per seed)\n\n"
        + markdown_table(by_digit)
    )


def add_plots(ctx: RunContext, groups: Mapping[str, list[dict[str, Any]]]) -> None:
    """Test accuracy per model (seeds as points) and validation accuracy per epoch."""
    fig, (ax_acc, ax_curve) = new_figure(2, figsize=(11, 4))
    keys = list(groups)
    for i, key in enumerate(keys):
        runs = groups[key]
        accs = [r["test_acc"] for r in runs]
        ax_acc.bar(i, statistics.fmean(accs), color=f"C{i}", alpha=0.6)
        ax_acc.plot([i] * len(accs), accs, "k.", markersize=6)
        for r in runs:
            curve: list[dict[str, Any]] = r["history"]
            ax_curve.plot(
                [h["epoch"] + 1 for h in curve],
                [h["val_acc"] for h in curve],
                color=f"C{i}",
                alpha=0.7,
                label=_describe(key) if r is runs[0] else None,
            )
    ax_acc.set_xticks(
        range(len(keys)), [_describe(k).replace("BC-ResNet-1, ", "") for k in keys], rotation=20, ha="right"
    )
    low = min(r["test_acc"] for runs in groups.values() for r in runs)
    ax_acc.set_ylim(max(0.0, low - 5.0), 100.0)
    ax_acc.set_ylabel("top-1 test accuracy (%)")
    ax_acc.set_title("last-epoch test accuracy (dots: seeds)")
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel("validation accuracy (%)")
    ax_curve.legend(fontsize=8)
    ax_curve.set_title("validation accuracy per epoch")
    save_figure(ctx, fig, "accuracy.png", dpi=110)
