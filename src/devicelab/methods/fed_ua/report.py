"""fed-ua tables and the TPR/FPR against code-length plot (core.tables, core.plots)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from devicelab.core.plots import new_figure, save_figure
from devicelab.core.tables import format_per_seed, markdown_table

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

LABELS = {
    "fedua": "FedUA (random ±1)",
    "naive": "naive positive-only FedAvg",
    "fedaws": "FedAwS (shares embeddings with the server)",
    "central": "centralised softmax (not federated)",
    "fedua-posneg": "FedUA pos+neg oracle (not federated)",
}
COLUMNS = ("tpr", "fpr_seen", "fpr_unseen", "fpr_unseen_orig", "fpr_unseen_late", "eer_unseen", "eer_seen",
           "tpr_at_fpr_1e-2")  # fmt: skip


def label(variant: str) -> str:
    if variant.startswith("feduv-bch"):
        return f"FedUV-style BCH, c = {variant.removeprefix('feduv-bch')}"
    if variant.startswith("fedua-c"):
        return f"FedUA, c = {variant.removeprefix('fedua-c')}"
    return LABELS.get(variant, variant)


def comparison_table(metrics: Mapping[str, Any], variants: list[str]) -> str:
    """One row per variant: mean ± std over its seeds of every verification metric (EERs in %)."""
    rows = []
    for v in variants:
        row: dict[str, Any] = {"variant": label(v)}
        for col in COLUMNS:
            value = metrics.get(f"{col}/{v}")
            row[col] = format_per_seed(value, 3, n=False) if value is not None else None
        seeds = metrics.get(f"tpr/{v}")
        row["seeds"] = len(seeds) if isinstance(seeds, list) else 1
        rows.append(row)
    return markdown_table(rows, ["variant", "seeds", *COLUMNS])


def privacy_table(metrics: Mapping[str, Any]) -> str:
    """The measured codeword recovery (no claim): one client's ΔW and one round's aggregate."""
    rows = [
        {"update seen by the server": "one client's unmasked ΔW", "bits of v_u recovered":
         metrics.get("recovery_single/fedua")},
        {"update seen by the server": f"aggregate of one round's {_users(metrics)} users",
         "bits of v_u recovered": metrics.get("recovery_aggregate/fedua")},
    ]  # fmt: skip
    for r in rows:
        value = r["bits of v_u recovered"]
        r["bits of v_u recovered"] = format_per_seed(value, 3, n=False) if value is not None else None
    return markdown_table(rows)


def code_length_plot(
    ctx: RunContext, metrics: Mapping[str, Any], lengths: list[int], main_length: int
) -> None:
    """TPR, FPR_seen and FPR_unseen (seed of the reported runs) against the codeword length c."""
    points = []
    for c in sorted(set(lengths) | {main_length}):
        variant = "fedua" if c == main_length else f"fedua-c{c}"
        if f"tpr/{variant}" not in metrics:
            continue
        points.append(
            (c, *(float(_first(metrics[f"{m}/{variant}"])) for m in ("tpr", "fpr_seen", "fpr_unseen")))
        )
    if len(points) < 2:
        return
    fig, ax = new_figure()
    cs = [p[0] for p in points]
    for i, name in enumerate(("TPR", "FPR seen users", "FPR unseen users"), start=1):
        ax.plot(cs, [p[i] for p in points], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("codeword length c")
    ax.set_ylabel("rate at the warm-up threshold τ_u")
    ax.set_title("FedUA: rates against codeword length (first seed)")
    ax.legend()
    save_figure(ctx, fig, "fedua_code_length.png")


def _first(value: Any) -> float:
    return value[0] if isinstance(value, list) else value


def _users(metrics: Mapping[str, Any]) -> str:
    value = metrics.get("recovery_users_per_round/fedua")
    return "?" if value is None else str(int(_first(value)))
