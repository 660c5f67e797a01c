"""Pre-registered claims, evaluated as ``held`` / ``not held`` / ``inconclusive`` from an interval.

A claim never looks at anything but measured numbers, and its ``margin`` and floors are fixed when it is
registered, before any run (DESIGN.md, "The experiment contract"). The verdict rule:

- **difference** claims on per-seed lists: paired differences ``d_i = sign * (method_i - baseline_i)``
  (``sign`` from ``direction``), 95 % Student-t interval of their mean. ``held`` when the whole interval
  clears the margin, ``not held`` when the whole interval falls short of it, otherwise ``inconclusive``.
  Fewer than ``MIN_SEEDS`` paired seeds gives ``inconclusive``, and says why.
- **ratio** claims: the same rule on the paired log-ratios ``log(method_i / baseline_i)``; a zero or
  negative baseline gives ``inconclusive``, never an infinite ratio that holds.
- **threshold** claims: one-sample interval of the method's values against the margin.
- **equivalence** claims: ``held`` when the interval of ``d_i`` lies inside ``[-margin, margin]``, ``not
  held`` when it lies wholly outside (a control that is off), otherwise ``inconclusive``.
- ``measurement`` says what the samples are: ``"seeds"`` (≥ 3 paired seeds), ``"repeats"`` (a noisy
  measurement such as wall time or RSS: ≥ 5 repeats), or ``"exact"`` (a deterministic count such as
  parameters, accounted bytes or a max |Δ|: compared exactly, no interval).
- **floors** are preconditions, each itself a registered check (a baseline's accuracy above a floor, a
  quality gate passed, a control within tolerance). If one is not held the claim is ``inconclusive
  (floor …: measured X, needs Y)`` whatever its own interval says.
- a :class:`Conjunction` ("each of A, B, C on each target") is ``held`` only if every part is held, ``not
  held`` if any part is not held, otherwise ``inconclusive``; with ``rule="agree"`` (two measurements of
  one quantity, e.g. an account and a tracker) it is ``inconclusive`` as soon as the parts disagree.

Where a run stores per-item values (``metrics["<key>@items"]``: one list of per-item scores per seed, e.g.
0/1 correctness per test clip), a paired bootstrap interval over items is reported beside the seed
interval; it informs, the seed interval decides.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Union

import numpy as np
from scipy import stats

MetricValue = float | Sequence[float]
Verdict = Literal["held", "not held", "inconclusive"]
Measurement = Literal["seeds", "repeats", "exact"]

MIN_SEEDS = 3  # paired seeds a difference claim needs on any profile
MIN_REPEATS = 5  # repeats a noisy measurement (time, RSS) needs
CONFIDENCE = 0.95
ITEMS_SUFFIX = "@items"
BOOTSTRAP_RESAMPLES = 2000
POWER_LIMIT = 10_000  # seeds beyond which the power note just says "more than"


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


def t_interval(samples: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean of ``samples`` (n ≥ 2)."""
    x = np.asarray(samples, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def seeds_to_resolve(samples: Sequence[float], margin: float, limit: int = POWER_LIMIT) -> int | None:
    """Smallest n at which the observed spread would give an interval that misses ``margin``.

    ``None`` when the mean sits exactly on the margin (no number of seeds resolves it); ``limit + 1`` when
    it would take more than ``limit``.
    """
    x = np.asarray(samples, dtype=np.float64)
    gap, sd = abs(float(x.mean()) - margin), float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if gap == 0.0:
        return None
    if sd == 0.0:
        return MIN_SEEDS
    for n in range(max(2, MIN_SEEDS), limit + 1):
        if stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n) < gap:
            return n
    return limit + 1


def paired_bootstrap(
    method_items: Sequence[Sequence[float]],
    baseline_items: Sequence[Sequence[float]],
    sign: float = 1.0,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, int] | None:
    """95 % paired bootstrap interval over test items of ``sign * mean(method - baseline)``.

    Each argument holds one list of per-item values per seed; items are averaged over seeds first, then
    resampled with replacement. Returns (low, high, items) or ``None`` when the items do not pair up.
    """
    try:
        m = np.asarray(method_items, dtype=np.float64)
        b = np.asarray(baseline_items, dtype=np.float64)
    except ValueError:
        return None
    if m.ndim != 2 or m.shape != b.shape or m.shape[1] == 0:
        return None
    d = sign * (m - b).mean(axis=0)  # (items,)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    low, high = np.quantile(means, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high), len(d)


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict and the numbers behind it (``value`` is the mean difference, ratio or value)."""

    id: str
    statement: str
    verdict: Verdict
    method: float = math.nan
    baseline: float = math.nan
    value: float = math.nan
    low: float = math.nan  # 95 % interval of ``value``
    high: float = math.nan
    n: int = 0
    margin: str = ""  # what ``value`` must clear, e.g. "≥ 0.3 points"
    note: str = ""
    power: str = ""  # for an inconclusive verdict: how many seeds the spread would need
    items: str = ""  # paired bootstrap interval over test items, where the run stored them
    floors: list[dict] = field(default_factory=list)
    parts: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _samples(value: MetricValue) -> list[float]:
    return [float(value)] if isinstance(value, int | float) else [float(v) for v in value]


@dataclass(frozen=True)
class Claim:
    """``method`` compared with ``baseline`` (metric keys of ``metrics.json``); see the module docstring.

    ``direction`` says which way is better for the method: "greater" (accuracy), "less" (error, memory),
    or "either" (difference claims only: the two differ by more than ``margin`` in either direction, e.g.
    "the adapter moved"). ``paired_seed_fraction`` (difference claims) adds the spec rule that the paired
    difference favours the method in at least ``ceil(fraction * n)`` seeds. ``floors`` are preconditions.
    """

    id: str
    statement: str
    method: str
    baseline: str = ""
    margin: float = 0.0
    direction: Literal["greater", "less", "either"] = "greater"
    kind: Literal["difference", "ratio", "threshold", "equivalence"] = "difference"
    strict: bool = False
    profiles: tuple[str, ...] = ("quick", "full")
    paper: str = ""
    unit: str = ""
    paired_seed_fraction: float | None = None
    measurement: Measurement = "seeds"
    floors: tuple[AnyClaim, ...] = ()

    # --------------------------------------------------------------------------------------------------
    def keys(self) -> tuple[str, ...]:
        """The metric keys this claim reads (its floors excluded)."""
        return (self.method,) if self.kind == "threshold" else (self.method, self.baseline)

    def describe_margin(self) -> str:
        unit = self.unit if self.kind != "ratio" else ""
        if self.kind == "equivalence":
            return f"|method − baseline| ≤ {self.margin:g}{unit}"
        if self.kind == "difference" and self.direction == "either":
            return f"|method − baseline| {'>' if self.strict else '≥'} {self.margin:g}{unit}"
        lower_is_better = self.direction == "less" and self.kind != "difference"
        op = ("<" if self.strict else "≤") if lower_is_better else (">" if self.strict else "≥")
        what = {
            "difference": "method − baseline" if self.direction == "greater" else "baseline − method",
            "ratio": "method / baseline",
            "threshold": "method",
        }[self.kind]
        return f"{what} {op} {self.margin:g}{unit}"

    def evaluate(self, metrics: Mapping[str, MetricValue], profile: str | None = None) -> ClaimResult:
        """This claim's verdict on ``metrics``; floors registered for ``profile`` (all when None) apply."""
        own = self._evaluate_own(metrics)
        return apply_floors(own, self.floors, metrics, profile)

    # --------------------------------------------------------------------------------------------------
    def _result(self, verdict: Verdict, note: str = "", **numbers) -> ClaimResult:
        return ClaimResult(
            self.id, self.statement, verdict, margin=self.describe_margin(), note=note, **numbers
        )

    def _evaluate_own(self, metrics: Mapping[str, MetricValue]) -> ClaimResult:
        missing = [k for k in self.keys() if k not in metrics]
        if missing:
            return self._result("inconclusive", f"missing metric {missing[0]}")
        m = _samples(metrics[self.method])
        b = _samples(metrics[self.baseline]) if self.kind != "threshold" else []
        if not m or (self.kind != "threshold" and not b):
            return self._result("inconclusive", "no measurement (empty sweep)")
        numbers = {"method": statistics.fmean(m), "baseline": statistics.fmean(b) if b else math.nan}
        if any(not math.isfinite(v) for v in m + b):
            return self._result("inconclusive", "a measured value is NaN or infinite", **numbers)
        if self.kind == "ratio" and any(v <= 0 for v in b):
            return self._result("inconclusive", "baseline is zero or negative: no ratio", **numbers)
        if self.kind == "ratio" and any(v <= 0 for v in m):
            return self._result("inconclusive", "method value is zero or negative: no log-ratio", **numbers)
        if self.measurement == "exact":
            return self._exact(m, b, numbers)
        if self.kind != "threshold" and len(m) != len(b):
            return self._result("inconclusive", f"unpaired: {len(m)} vs {len(b)} values", **numbers)
        needed = MIN_REPEATS if self.measurement == "repeats" else MIN_SEEDS
        word = {"repeats": "repeats", "seeds": "seeds" if self.kind == "threshold" else "paired seeds"}[
            self.measurement
        ]
        samples = self._transformed(m, b)
        target = math.log(self.margin) if self.kind == "ratio" and self.margin > 0 else self.margin
        if self.kind == "ratio" and self.margin <= 0:
            return self._result("inconclusive", "ratio margin must be positive", **numbers)
        mean, low, high = t_interval(samples)
        shown = _back(self.kind, mean, low, high)
        numbers |= {"value": shown[0], "low": shown[1], "high": shown[2], "n": len(samples)}
        numbers["items"] = self._items(metrics)
        if len(samples) < needed:
            return self._result(
                "inconclusive", f"{len(samples)} {word}; an interval needs at least {needed}", **numbers
            )
        verdict = self._decide(low, high, target)
        note = ""
        if verdict == "held" and self.paired_seed_fraction is not None and self.kind == "difference":
            wins = sum(d > 0 for d in samples)
            needs = math.ceil(self.paired_seed_fraction * len(samples) - 1e-9)
            note = f"favours the method in {wins} of {len(samples)} seeds (needs {needs})"
            if wins < needs:
                verdict = "inconclusive"
        power = ""
        if verdict == "inconclusive" and not note:
            edge = [-target, target] if self.kind == "equivalence" or self.direction == "either" else [target]
            n_needed = [n for n in (seeds_to_resolve(samples, e) for e in edge) if n is not None]
            unit = word.split()[-1]
            if not n_needed:
                power = "the mean sits on the margin: more seeds would not resolve it"
            elif min(n_needed) > POWER_LIMIT:
                power = f"the observed spread would need more than {POWER_LIMIT} {unit}"
            else:
                power = f"the observed spread would need about {min(n_needed)} {unit}"
        return self._result(verdict, note, power=power, **numbers)

    def _transformed(self, m: list[float], b: list[float]) -> list[float]:
        """The per-seed samples the interval is taken over (signed differences, log-ratios or values)."""
        if self.kind == "threshold":
            return m
        if self.kind == "ratio":
            return [math.log(x / y) for x, y in zip(m, b)]
        sign = -1.0 if self.direction == "less" else 1.0
        return [sign * (x - y) for x, y in zip(m, b)]

    def _decide(self, low: float, high: float, target: float) -> Verdict:
        """Compare the interval [low, high] (in the transformed scale) with the margin."""
        if self.kind == "equivalence":
            if -target <= low and high <= target:
                return "held"
            return "not held" if (low > target or high < -target) else "inconclusive"
        if self.kind == "difference" and self.direction == "either":
            clears = (low > target or high < -target) if self.strict else (low >= target or high <= -target)
            inside = -target < low and high < target if self.strict else -target <= low and high <= target
            return "held" if clears else ("not held" if inside and target > 0 else "inconclusive")
        lower_is_better = self.direction == "less" and self.kind != "difference"
        if lower_is_better:
            low, high, target = -high, -low, -target
        if (low > target) if self.strict else (low >= target):
            return "held"
        if (high <= target) if self.strict else (high < target):
            return "not held"
        return "inconclusive"

    def _exact(self, m: list[float], b: list[float], numbers: dict) -> ClaimResult:
        """Deterministic measurements: one value each (repeats must agree), compared without interval."""
        if len(set(m)) > 1 or len(set(b)) > 1:
            return self._result("inconclusive", "an exact measurement varies between repeats", **numbers)
        x, y = m[0], (b[0] if b else math.nan)
        if self.kind == "threshold":
            value = x
        elif self.kind == "ratio":
            value = x / y
        else:
            value = (-1.0 if self.direction == "less" else 1.0) * (x - y)
        target = self.margin
        verdict = self._decide(
            math.log(value) if self.kind == "ratio" else value,
            math.log(value) if self.kind == "ratio" else value,
            math.log(target) if self.kind == "ratio" else target,
        )
        return self._result(verdict, "exact measurement", value=value, low=value, high=value, n=1, **numbers)

    def _items(self, metrics: Mapping[str, MetricValue]) -> str:
        if self.kind not in ("difference", "equivalence"):
            return ""
        mi, bi = metrics.get(self.method + ITEMS_SUFFIX), metrics.get(self.baseline + ITEMS_SUFFIX)
        if mi is None or bi is None:
            return ""
        out = paired_bootstrap(mi, bi, -1.0 if self.direction == "less" else 1.0)  # type: ignore[arg-type]
        return "" if out is None else f"[{out[0]:.4g}, {out[1]:.4g}] over {out[2]} items (paired bootstrap)"


@dataclass(frozen=True)
class Conjunction:
    """One claim stated over several parts ("each of bn-adapt, TENT, EATA on each shifted target").

    ``rule="all"``: held only if every part is held, not held if any part is not held, else inconclusive.
    ``rule="agree"``: two measurements of one quantity (an account and a tracker): held or not held only
    when every part says so, inconclusive as soon as they disagree. Parts registered for other profiles are
    left out; floors apply to the whole claim.
    """

    id: str
    statement: str
    parts: tuple[Claim, ...]
    rule: Literal["all", "agree"] = "all"
    profiles: tuple[str, ...] = ("quick", "full")
    paper: str = ""
    floors: tuple[AnyClaim, ...] = ()

    def keys(self) -> tuple[str, ...]:
        return tuple(k for p in self.parts for k in p.keys())

    def evaluate(self, metrics: Mapping[str, MetricValue], profile: str | None = None) -> ClaimResult:
        parts = [p.evaluate(metrics, profile) for p in self.parts if profile is None or profile in p.profiles]
        verdicts = [r.verdict for r in parts]
        if not parts:
            verdict, note = "inconclusive", "no part registered for this profile"
        elif self.rule == "agree":
            verdict = verdicts[0] if len(set(verdicts)) == 1 else "inconclusive"
            split = {"held", "not held"} <= set(verdicts)
            note = ("the measurements disagree: " if split else "") + _tally(parts)
        elif "not held" in verdicts:
            verdict, note = "not held", _tally(parts)
        else:
            verdict = "held" if all(v == "held" for v in verdicts) else "inconclusive"
            note = _tally(parts)
        result = ClaimResult(
            self.id,
            self.statement,
            verdict,  # type: ignore[arg-type]
            n=min((r.n for r in parts), default=0),
            margin=f"every part ({self.rule})",
            note=note,
            parts=[r.to_dict() for r in parts],
        )
        return apply_floors(result, self.floors, metrics, profile)


AnyClaim = Union[Claim, Conjunction]  # noqa: UP007 (a runtime alias used in dataclass annotations above)


def _tally(parts: Sequence[ClaimResult]) -> str:
    counts = {v: sum(r.verdict == v for r in parts) for v in ("held", "not held", "inconclusive")}
    return ", ".join(f"{n} {v}" for v, n in counts.items() if n) + f" of {len(parts)} parts"


def apply_floors(
    result: ClaimResult, floors: Sequence[AnyClaim], metrics: Mapping[str, MetricValue], profile: str | None
) -> ClaimResult:
    """Evaluate the ``floors`` registered for ``profile``; one not held makes ``result`` inconclusive."""
    checked = [f.evaluate(metrics, profile) for f in floors if profile is None or profile in f.profiles]
    if not checked:
        return result
    failed = [f for f in checked if f.verdict != "held"]
    updates: dict = {"floors": [f.to_dict() for f in checked]}
    if failed:
        why = "; ".join(_floor_reason(f) for f in failed)
        updates |= {"verdict": "inconclusive", "note": why + (f"; {result.note}" if result.note else "")}
        updates["power"] = ""
    return _replace(result, **updates)


def _floor_reason(floor: ClaimResult) -> str:
    """``floor F-bn: measured 28.6 [22.1, 35.2], needs method ≥ 80 %`` (or why it was not measured)."""
    if floor.parts:
        return f"floor {floor.id} {floor.verdict}: {floor.note}"
    if math.isnan(floor.value):
        return f"floor {floor.id}: not measured ({floor.note}), needs {floor.margin}"
    measured = f"measured {_fmt(floor.value)}"
    if not math.isnan(floor.low) and floor.n > 1:
        measured += f" [{_fmt(floor.low)}, {_fmt(floor.high)}]"
    extra = f"; {floor.note}" if floor.note and floor.note != "exact measurement" else ""
    return f"floor {floor.id}: {measured}, needs {floor.margin}{extra}"


def _replace(result: ClaimResult, **changes) -> ClaimResult:
    return ClaimResult(**(asdict(result) | changes))


def _fmt(x: float) -> str:
    return "–" if x != x else f"{x:.4g}"


def _back(kind: str, mean: float, low: float, high: float) -> tuple[float, float, float]:
    """Interval back on the claim's scale (ratios were taken in logs)."""
    if kind == "ratio":
        return math.exp(mean), math.exp(low) if low == low else low, math.exp(high) if high == high else high
    return mean, low, high


def evaluate_claims(
    claims: Sequence[AnyClaim], metrics: Mapping[str, MetricValue], profile: str
) -> list[ClaimResult]:
    """Evaluate the claims registered for ``profile``."""
    return [c.evaluate(metrics, profile) for c in claims if profile in c.profiles]
