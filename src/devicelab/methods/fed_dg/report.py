"""Tables of a fed-dg run: LODO mean accuracy per method, and paired differences per held-out domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devicelab.core.tables import format_per_seed, markdown_table

# the differences the claims read, per held-out domain: name -> ((method, mode), (method, mode))
PAIRS = {
    "FedFD − FedAvg": (("fedfd", "global"), ("fedavg", "global")),
    "FedFD-A − FedFD": (("fedfd", "ifa"), ("fedfd", "global")),
    "FedFD-A − FedFD+TTBN": (("fedfd", "ifa"), ("fedfd", "instance")),
    "FedFD-A − adapter at init": (("fedfd", "ifa"), ("fedfd", "ifa-init")),
}


def comparison_table(metrics: Mapping[str, Any], prefix: str) -> str:
    """One row per metric key (data-set prefix removed): LODO mean accuracy, mean ± std over seeds."""
    rows = [
        {"method": k.removeprefix(prefix), "LODO mean acc (%)": format_per_seed(v)}
        for k, v in metrics.items()
    ]
    return markdown_table(rows)


def paired_table(
    results: Mapping[tuple[str, str, int], Mapping[str, float]], held: Sequence[str], seeds
) -> str:
    """Per held-out domain: paired differences (pt) over the claim seeds, mean ± std."""
    rows = []
    for d in held:
        row: dict[str, Any] = {"held-out": d}
        for name, ((m1, k1), (m2, k2)) in PAIRS.items():
            diffs = [results[(m1, d, s)][k1] - results[(m2, d, s)][k2] for s in seeds]
            row[name] = format_per_seed(diffs, 2, sign=True, n=False)
        rows.append(row)
    return markdown_table(rows)


def alpha_table(metrics: Mapping[str, Any], layers: int) -> str:
    """The adapter's mixing weight alpha per BN layer (mean over held-out domains, then seeds), at its initial
    values and after the adapter rounds."""
    rows = [
        {
            "BN layer": i + 1,
            "alpha at init": format_per_seed(metrics[f"alpha/fedfd_a_adapter_init/l{i + 1}"], 4, n=False),
            "alpha after the adapter rounds": format_per_seed(metrics[f"alpha/fedfd_a/l{i + 1}"], 4, n=False),
        }
        for i in range(layers)
    ]
    return markdown_table(rows)
