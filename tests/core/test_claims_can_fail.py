"""Every registered claim of every experiment can fail: adversarial metrics never give ``held``.

For each claim and each profile it is registered for, metrics are built that satisfy its floors and every
part, then one comparison is broken: the method equal to the baseline (for claims that assert the method is
better), the method worse than the margin, the method's metric missing, an empty sweep. None may come out
held. A positive control checks that the untouched metrics do give ``held``, so the test would notice a
generator that breaks everything (or a claim that could never hold).
"""

from __future__ import annotations

import copy

import pytest

from devicelab import experiments
from devicelab.core.claims import AnyClaim, Claim, Conjunction

PROFILES = ("smoke", "quick", "full")
NOISE = {"seeds": (-0.1, 0.0, 0.1), "repeats": (-0.2, -0.1, 0.0, 0.1, 0.2)}


def _value(base: float, claim: Claim):
    """A measurement of ``base`` with the claim's kind of samples (same noise pattern: pairs are exact)."""
    if claim.measurement == "exact":
        return base
    return [base + e * max(1e-9, abs(base)) * 1e-3 for e in NOISE[claim.measurement]]


def _centre(value) -> float:
    return value if isinstance(value, float | int) else value[len(value) // 2]


def _favourable(claim: Claim, baseline: float) -> float:
    """A method value that clears the claim by a wide margin."""
    if claim.kind == "threshold":
        if claim.direction == "less":
            return claim.margin - 0.5 * abs(claim.margin) if claim.margin else (-1.0 if claim.strict else 0.0)
        return claim.margin + max(10.0, abs(claim.margin))
    if claim.kind == "ratio":
        return baseline * claim.margin * (1.5 if claim.direction == "greater" else 0.5)
    if claim.kind == "equivalence":
        return baseline
    sign = -1.0 if claim.direction == "less" else 1.0
    return baseline + sign * (abs(claim.margin) + 5.0) if claim.margin >= 0 else baseline


def _leaves(claim: AnyClaim) -> list[Claim]:
    return [p for part in claim.parts for p in _leaves(part)] if isinstance(claim, Conjunction) else [claim]


def _satisfy(claim: AnyClaim, metrics: dict, profile: str) -> None:
    """Assign every metric the claim (its floors, its parts) reads so that it holds."""
    for floor in claim.floors:
        if profile in floor.profiles:
            _satisfy(floor, metrics, profile)
    if isinstance(claim, Conjunction):
        for part in claim.parts:
            if profile in part.profiles:
                _satisfy(part, metrics, profile)
        return
    if claim.kind == "threshold":
        metrics.setdefault(claim.method, _value(_favourable(claim, 0.0), claim))
        return
    if claim.method in metrics and claim.baseline not in metrics:  # solve for the baseline
        method = _centre(metrics[claim.method])
        trial = _favourable(claim, 100.0)
        metrics[claim.baseline] = _value(
            method - (trial - 100.0) if claim.kind != "ratio" else method * 100.0 / trial, claim
        )
        return
    metrics.setdefault(claim.baseline, _value(100.0, claim))
    metrics.setdefault(claim.method, _value(_favourable(claim, _centre(metrics[claim.baseline])), claim))


def _asserts_better(claim: Claim) -> bool:
    """Whether the claim says the method beats the baseline (so method == baseline must not hold)."""
    if claim.kind == "difference":
        return claim.direction != "either" and claim.margin >= 0
    if claim.kind == "ratio":
        return claim.margin >= 1 if claim.direction == "greater" else claim.margin <= 1
    return False


def _worse(claim: Claim, metrics: dict) -> None:
    base = 0.0 if claim.kind == "threshold" else _centre(metrics[claim.baseline])
    if claim.kind == "threshold":
        bad = (
            claim.margin * 10 + 1
            if claim.direction == "less"
            else claim.margin - max(10.0, abs(claim.margin))
        )
    elif claim.kind == "ratio":
        bad = base * claim.margin * (0.5 if claim.direction == "greater" else 2.0)
    elif claim.kind == "equivalence" or claim.direction == "either":
        bad = base + abs(claim.margin) + 5.0 if claim.kind == "equivalence" else base
    else:
        sign = -1.0 if claim.direction == "less" else 1.0
        bad = base + sign * (claim.margin - 5.0)
    metrics[claim.method] = _value(bad, claim)


def _cases():
    for name in experiments.names():
        if not experiments.is_implemented(name):
            continue
        for claim in experiments.get_experiment(name).claims:
            for profile in claim.profiles:
                yield pytest.param(claim, profile, id=f"{name}:{claim.id}:{profile}")


CASES = list(_cases())


def test_every_experiment_registers_claims():
    assert {c.values[0].id for c in CASES} >= {"K1", "K2", "Q1", "C1", "C3", "H1a", "H2", "H5"}


@pytest.mark.parametrize(("claim", "profile"), CASES)
def test_claim_holds_on_favourable_metrics(claim, profile):
    metrics: dict = {}
    _satisfy(claim, metrics, profile)
    result = claim.evaluate(metrics, profile)
    assert result.verdict == "held", result


@pytest.mark.parametrize(("claim", "profile"), CASES)
def test_claim_cannot_hold_on_adversarial_metrics(claim, profile):
    good: dict = {}
    _satisfy(claim, good, profile)
    leaves = [leaf for leaf in _leaves(claim) if profile in leaf.profiles]
    assert leaves
    for leaf in leaves:
        attacks = {"worse": _worse, "missing": lambda c, m: m.pop(c.method), "empty": None}
        if _asserts_better(leaf):
            attacks["equal"] = lambda c, m: m.__setitem__(c.method, copy.deepcopy(m[c.baseline]))
        for attack, fn in attacks.items():
            metrics = copy.deepcopy(good)
            if fn is None:
                metrics[leaf.method] = []
            else:
                fn(leaf, metrics)
            result = claim.evaluate(metrics, profile)
            assert result.verdict != "held", f"{claim.id}/{leaf.id} {attack}: {result}"


@pytest.mark.parametrize(("claim", "profile"), [c for c in CASES if c.values[0].floors])
def test_a_broken_floor_makes_the_claim_inconclusive(claim, profile):
    good: dict = {}
    _satisfy(claim, good, profile)
    for floor in claim.floors:
        if profile not in floor.profiles:
            continue
        for leaf in _leaves(floor):
            if profile not in leaf.profiles:
                continue
            metrics = copy.deepcopy(good)
            metrics.pop(leaf.method)
            assert claim.evaluate(metrics, profile).verdict == "inconclusive", f"{claim.id}/{leaf.id}"
