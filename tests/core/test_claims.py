"""The verdict contract: intervals, inconclusive, floors, conjunctions (docs/contract.md, "Claims")."""

import math

import pytest
from scipy import stats

from devicelab.core.claims import (
    Claim,
    Conjunction,
    evaluate_claims,
    metric_mean,
    paired_bootstrap,
    seeds_to_resolve,
    t_interval,
)


def test_t_interval_matches_scipy():
    x = [1.0, 2.5, 1.7, 3.1]
    mean, low, high = t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=mean, scale=stats.sem(x))
    assert math.isclose(low, ref[0]) and math.isclose(high, ref[1])


def test_difference_held_when_the_whole_interval_clears_the_margin():
    claim = Claim("K1", "SSN beats BN", method="ssn", baseline="bn", margin=0.3)
    result = claim.evaluate({"ssn": [96.6, 96.8, 96.7], "bn": [96.2, 96.4, 96.3]})
    assert result.verdict == "held" and math.isclose(result.value, 0.4)
    assert result.low >= 0.3 and result.n == 3


def test_a_mean_above_the_margin_with_a_wide_interval_is_inconclusive():
    # the old rule (mean ≥ margin) said "held" for this: kws-ssn K1 at +13.8 with a spread ten times larger
    claim = Claim("K1", "", method="ssn", baseline="bn", margin=0.3)
    result = claim.evaluate({"ssn": [34.0, 50.0, 43.0], "bn": [28.0, 26.0, 31.0]})
    assert result.value > 0.3 and result.low < 0.3
    assert result.verdict == "inconclusive"
    assert "would need about" in result.power


def test_not_held_when_the_whole_interval_falls_short():
    claim = Claim("K2", "", method="ssn", baseline="wide", margin=0.0, strict=True)
    result = claim.evaluate({"ssn": [42.0, 43.0, 41.0], "wide": [52.0, 53.5, 52.5]})
    assert result.verdict == "not held" and result.high < 0


def test_fewer_than_three_seeds_is_inconclusive_and_says_why():
    claim = Claim("K1", "", method="a", baseline="b", margin=0.3)
    result = claim.evaluate({"a": [96.6, 96.8], "b": [90.2, 90.4]})
    assert result.verdict == "inconclusive" and "needs at least 3" in result.note
    assert claim.evaluate({"a": 99.0, "b": 1.0}).verdict == "inconclusive"


def test_lower_is_better_difference_and_ratio():
    eer = Claim("E", "lower EER", method="a", baseline="b", margin=0.5, direction="less")
    assert eer.evaluate({"a": [4.0, 4.1, 3.9], "b": [5.0, 5.1, 4.9]}).verdict == "held"
    mem = Claim("H", "≤ 60 %", method="m", baseline="b", margin=0.6, kind="ratio", direction="less")
    assert mem.evaluate({"m": [50, 51, 49], "b": [100, 100, 100]}).verdict == "held"
    assert mem.evaluate({"m": [70, 71, 69], "b": [100, 100, 100]}).verdict == "not held"


def test_ratio_with_a_zero_baseline_never_holds():
    # the old rule gave ∞ ≥ margin: held
    claim = Claim("H1b", "", method="m", baseline="b", margin=1.5, kind="ratio", measurement="exact")
    result = claim.evaluate({"m": 10.0, "b": 0.0})
    assert result.verdict == "inconclusive" and "zero" in result.note


def test_exact_measurements_compare_without_interval():
    c = Claim("H5", "", method="d", margin=1e-4, direction="less", kind="threshold", measurement="exact")
    assert c.evaluate({"d": 7e-7}).verdict == "held"
    assert c.evaluate({"d": 1e-3}).verdict == "not held"
    assert c.evaluate({}).verdict == "inconclusive"
    assert c.evaluate({"d": [1e-6, 2e-6]}).verdict == "inconclusive"  # an exact count that varies
    ratio = Claim(
        "R", "", method="m", baseline="b", margin=1.1, kind="ratio", direction="less", measurement="exact"
    )
    assert ratio.evaluate({"m": 107.0, "b": 100.0}).verdict == "held"
    assert ratio.evaluate({"m": 111.0, "b": 100.0}).verdict == "not held"


def test_noisy_measurements_need_five_repeats():
    c = Claim(
        "T", "", method="t", baseline="b", margin=1.0, kind="ratio", direction="less", measurement="repeats"
    )
    four = {"t": [0.5, 0.51, 0.49, 0.5], "b": [1.0] * 4}
    assert c.evaluate(four).verdict == "inconclusive"
    five = {"t": [0.5, 0.51, 0.49, 0.5, 0.5], "b": [1.0] * 5}
    assert c.evaluate(five).verdict == "held"


def test_missing_metric_nan_and_empty_sweep_are_inconclusive():
    c = Claim("K3", "", method="x", baseline="y", margin=0.5, profiles=("full",))
    assert c.evaluate({"x": [1.0, 2.0, 3.0]}).verdict == "inconclusive"
    assert c.evaluate({"x": [], "y": []}).verdict == "inconclusive"
    assert c.evaluate({"x": [1, math.nan, 2], "y": [0, 0, 0]}).verdict == "inconclusive"
    assert evaluate_claims([c], {"x": 1, "y": 0}, "quick") == []


def test_paired_seed_rule_is_an_extra_condition():
    c = Claim("C1", "", method="a", baseline="b", margin=1.0, paired_seed_fraction=2 / 3)
    assert c.evaluate({"a": [3.0, 3.1, 2.9], "b": [1.0, 1.0, 1.0]}).verdict == "held"
    lopsided = c.evaluate({"a": [10.0, 0.0, 0.0], "b": [2.0, 1.0, 1.0]})
    assert lopsided.verdict == "inconclusive"


def test_equivalence_and_either_direction():
    gate = Claim("G", "control", method="frozen", baseline="plain", margin=1.0, kind="equivalence")
    assert gate.evaluate({"frozen": [50.1, 50.0, 49.9], "plain": [50.0, 50.1, 50.0]}).verdict == "held"
    assert gate.evaluate({"frozen": [56.6, 56.0, 57.0], "plain": [50.0, 50.1, 50.0]}).verdict == "not held"
    moved = Claim(
        "M", "adapter moved", method="a", baseline="init", margin=0.0, direction="either", strict=True
    )
    assert moved.evaluate({"a": [48.0, 47.5, 48.2], "init": [50.0, 50.1, 50.0]}).verdict == "held"
    assert moved.evaluate({"a": [50.0, 49.0, 51.0], "init": [50.0, 50.0, 50.0]}).verdict == "inconclusive"


def test_a_failed_floor_makes_the_claim_inconclusive_with_the_measured_value():
    floor = Claim("F", "BN learned", method="bn", margin=80.0, kind="threshold", measurement="seeds")
    claim = Claim("K1", "", method="ssn", baseline="bn", margin=0.3, floors=(floor,))
    metrics = {"ssn": [42.0, 43.0, 44.0], "bn": [28.0, 28.5, 29.0]}
    result = claim.evaluate(metrics, "quick")
    assert result.verdict == "inconclusive"
    assert result.note.startswith("floor F: measured 28.5") and "needs method ≥ 80" in result.note
    learned = {"ssn": [92.0, 93.0, 94.0], "bn": [88.0, 88.5, 89.0]}
    assert claim.evaluate(learned, "quick").verdict == "held"
    assert claim.evaluate({"ssn": [92.0] * 3}, "quick").verdict == "inconclusive"  # floor metric missing


def test_floors_registered_for_other_profiles_are_skipped():
    floor = Claim("F", "", method="bn", margin=80.0, kind="threshold", profiles=("full",))
    claim = Claim("K1", "", method="ssn", baseline="bn", margin=0.3, floors=(floor,))
    assert claim.evaluate({"ssn": [5.0, 5.1, 5.2], "bn": [1.0, 1.1, 1.2]}, "quick").verdict == "held"


def _part(target: str) -> Claim:
    return Claim(f"C1/{target}", "", method=f"lsa/{target}", baseline=f"plain/{target}", margin=2.0)


def test_conjunction_is_held_only_if_every_part_is_held():
    c1 = Conjunction("C1", "each target", parts=(_part("uniform"), _part("backward")))
    good = [10.0, 10.5, 9.5]
    plain = [1.0, 1.0, 1.0]
    both = {"lsa/uniform": good, "plain/uniform": plain, "lsa/backward": good, "plain/backward": plain}
    assert c1.evaluate(both).verdict == "held"
    one_fails = dict(both, **{"lsa/backward": [1.0, 1.1, 0.9]})
    result = c1.evaluate(one_fails)
    assert result.verdict == "not held" and len(result.parts) == 2
    one_missing = {k: v for k, v in both.items() if "backward" not in k}
    assert c1.evaluate(one_missing).verdict == "inconclusive"


def test_agreement_rule_is_inconclusive_when_measurements_disagree():
    account = Claim(
        "acc", "", method="a", baseline="i", margin=1.1, kind="ratio", direction="less", measurement="exact"
    )
    tracker = Claim(
        "trk", "", method="t", baseline="i", margin=1.1, kind="ratio", direction="less", measurement="exact"
    )
    h1a = Conjunction("H1a", "", parts=(account, tracker), rule="agree")
    assert h1a.evaluate({"a": 107.0, "t": 108.0, "i": 100.0}).verdict == "held"
    disagree = h1a.evaluate({"a": 107.0, "t": 110.5, "i": 100.0})
    assert disagree.verdict == "inconclusive" and "disagree" in disagree.note


def test_paired_bootstrap_over_items_is_reported_beside_the_seed_interval():
    claim = Claim("K1", "", method="a", baseline="b", margin=0.0)
    items_a = [[1, 1, 0, 1] * 50]
    items_b = [[1, 0, 0, 1] * 50]
    result = claim.evaluate({"a": [0.75], "b": [0.5], "a@items": items_a, "b@items": items_b})
    assert result.verdict == "inconclusive"  # one seed: the seed interval decides, and it has none
    assert "over 200 items" in result.items
    low, high, n = paired_bootstrap(items_a, items_b)
    assert n == 200 and low < 0.25 < high and low > 0


def test_seeds_to_resolve():
    assert seeds_to_resolve([1.0, 2.0, 3.0], 2.0) is None  # mean on the margin
    n = seeds_to_resolve([1.0, 3.0, 2.0], 0.0)
    assert n is not None and n >= 3
    assert stats.t.ppf(0.975, n - 1) / math.sqrt(n) < 2.0


def test_metric_mean():
    assert metric_mean([1, 2, 3]) == 2 and metric_mean(4) == 4.0 and math.isnan(metric_mean([]))


@pytest.mark.parametrize("bad", [[], [math.inf, 1.0, 2.0]])
def test_threshold_over_empty_or_infinite_values_is_inconclusive(bad):
    c = Claim("H1c", "", method="r", margin=1.0, direction="less", kind="threshold")
    assert c.evaluate({"r": bad}).verdict == "inconclusive"
