"""Pre-registered claims: a paper's comparison of two measured metrics, evaluated as held / not held.

A claim never looks at anything but measured numbers. ``margin`` is fixed when the claim is registered and is
never tuned to a result (DESIGN.md, "The experiment contract").
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

MetricValue = float | Sequence[float]


def metric_mean(value: MetricValue) -> float:
    """The mean over seeds of a metric stored as one number or as a per-seed list."""
    if isinstance(value, int | float):
        return float(value)
    values = [float(v) for v in value]
    return statistics.fmean(values) if values else math.nan


def metric_std(value: MetricValue) -> float:
    """Sample standard deviation over seeds (0 for a single number or one seed)."""
    if isinstance(value, int | float) or len(value) < 2:
        return 0.0
    return statistics.stdev(float(v) for v in value)


def format_metric(value: MetricValue, digits: int = 2, scale: float = 1.0) -> str:
    """``96.60 ± 0.21 (n=5)`` for a per-seed list, ``96.60`` for a number."""
    mean = metric_mean(value) * scale
    if isinstance(value, int | float):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {metric_std(value) * scale:.{digits}f} (n={len(value)})"


@dataclass(frozen=True)
class Claim:
    """``method`` compared with ``baseline`` (metric keys of ``metrics.json``), averaged over seeds.

    kind "difference": held when ``sign * (method - baseline) >= margin`` (``>`` when ``strict``);
    kind "ratio": held when ``method / baseline <= margin`` for direction "less",
    or ``>= margin`` for "greater"; kind "threshold": the method's metric alone against ``margin``
    (``baseline`` empty), for absolute targets such as "max |Δ| ≤ 1e-4".
    ``direction`` says which way is better for the method: "greater" (accuracy) or "less" (error, memory).
    ``paired_seed_fraction`` (difference claims on per-seed lists): also require the paired per-seed
    difference to favour the method in at least ``ceil(fraction * n)`` of the n seeds
    (with 2/3: 2 of 3, 4 of 5).
    """

    id: str
    statement: str
    method: str
    baseline: str
    margin: float
    direction: Literal["greater", "less"] = "greater"
    kind: Literal["difference", "ratio", "threshold"] = "difference"
    strict: bool = False
    profiles: tuple[str, ...] = ("quick", "full")
    paper: str = ""
    unit: str = ""
    paired_seed_fraction: float | None = None

    def evaluate(self, metrics: Mapping[str, MetricValue]) -> ClaimResult:
        needed = (self.method,) if self.kind == "threshold" else (self.method, self.baseline)
        missing = [k for k in needed if k not in metrics]
        if missing:
            nan = math.nan
            return ClaimResult(
                self.id, self.statement, nan, nan, nan, "not measured", f"missing metric {missing[0]}"
            )
        m = metric_mean(metrics[self.method])
        b = self.margin if self.kind == "threshold" else metric_mean(metrics[self.baseline])
        if self.kind == "difference":
            value = (m - b) if self.direction == "greater" else (b - m)
            held = value > self.margin if self.strict else value >= self.margin
        else:
            value = m if self.kind == "threshold" else (m / b if b else math.inf)
            if self.direction == "less":
                held = value < self.margin if self.strict else value <= self.margin
            else:
                held = value > self.margin if self.strict else value >= self.margin
        if math.isnan(value):
            return ClaimResult(self.id, self.statement, m, b, value, "not measured", "NaN metric")
        note = ""
        if self.paired_seed_fraction is not None:
            wins, n = self._paired_wins(metrics[self.method], metrics[self.baseline])
            needed_wins = math.ceil(self.paired_seed_fraction * n - 1e-9)
            held = held and wins >= needed_wins
            note = f"favours the method in {wins} of {n} seeds (needs {needed_wins})"
        return ClaimResult(self.id, self.statement, m, b, value, "held" if held else "not held", note)

    def _paired_wins(self, method: MetricValue, baseline: MetricValue) -> tuple[int, int]:
        scalar = isinstance(method, int | float) or isinstance(baseline, int | float)
        if scalar or len(method) != len(baseline):
            raise ValueError(f"claim {self.id}: a paired-seed rule needs per-seed lists of equal length")
        sign = 1.0 if self.direction == "greater" else -1.0
        return sum(sign * (float(a) - float(b)) > 0 for a, b in zip(method, baseline)), len(method)

    def describe_margin(self) -> str:
        op = (
            (">" if self.strict else "≥")
            if (self.kind == "difference" or self.direction == "greater")
            else ("<" if self.strict else "≤")
        )
        if self.kind == "difference":
            sign = "−" if self.direction == "greater" else "reversed −"
            return f"method {sign} baseline {op} {self.margin:g}{self.unit}"
        return f"method / baseline {op} {self.margin:g}"


@dataclass(frozen=True)
class ClaimResult:
    id: str
    statement: str
    method: float
    baseline: float
    value: float
    verdict: Literal["held", "not held", "not measured"]
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_claims(
    claims: Sequence[Claim], metrics: Mapping[str, MetricValue], profile: str
) -> list[ClaimResult]:
    """Evaluate the claims registered for ``profile``."""
    return [c.evaluate(metrics) for c in claims if profile in c.profiles]
