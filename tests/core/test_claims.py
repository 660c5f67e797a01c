import math

from devicelab.core.claims import Claim, evaluate_claims, format_metric, metric_mean


def test_difference_claim_over_seeds():
    claim = Claim("K1", "SSN beats BN", method="ssn.acc", baseline="bn.acc", margin=0.3)
    held = claim.evaluate({"ssn.acc": [96.6, 96.8], "bn.acc": [96.2, 96.4]})
    assert held.verdict == "held" and math.isclose(held.value, 0.4)
    assert claim.evaluate({"ssn.acc": [96.5], "bn.acc": [96.4]}).verdict == "not held"


def test_strict_and_lower_is_better():
    strict = Claim("K2", "", method="a", baseline="b", margin=0.0, strict=True)
    assert strict.evaluate({"a": 1.0, "b": 1.0}).verdict == "not held"
    eer = Claim("E", "lower EER", method="a", baseline="b", margin=0.5, direction="less")
    assert eer.evaluate({"a": 4.0, "b": 5.0}).verdict == "held"


def test_ratio_claim():
    mem = Claim(
        "H1", "uses at most 60 %", method="m", baseline="b", margin=0.6, kind="ratio", direction="less"
    )
    assert mem.evaluate({"m": 50, "b": 100}).verdict == "held"
    assert mem.evaluate({"m": 70, "b": 100}).verdict == "not held"


def test_missing_metric_is_not_measured_and_profiles_filter():
    c = Claim("K3", "", method="x", baseline="y", margin=0.5, profiles=("full",))
    assert c.evaluate({"x": 1.0}).verdict == "not measured"
    assert evaluate_claims([c], {"x": 1, "y": 0}, "quick") == []


def test_formatting():
    assert metric_mean([1, 2, 3]) == 2
    assert format_metric([1.0, 3.0], 1) == "2.0 ± 1.4 (n=2)"


def test_paired_seed_rule():
    c = Claim("C1", "", method="a", baseline="b", margin=1.0, paired_seed_fraction=2 / 3)
    # mean difference 2.0 but only one seed of three favours the method
    lopsided = c.evaluate({"a": [10.0, 0.0, 0.0], "b": [2.0, 1.0, 1.0]})
    assert lopsided.value == 2.0 and lopsided.verdict == "not held"
    assert "1 of 3 seeds (needs 2)" in lopsided.note
    assert c.evaluate({"a": [3.0, 3.0, 0.0], "b": [1.0, 1.0, 1.0]}).verdict == "held"


def test_threshold_claim_needs_no_baseline():
    c = Claim(
        "H5", "lossless", method="max_abs_diff", baseline="", margin=1e-4, direction="less", kind="threshold"
    )
    assert c.evaluate({"max_abs_diff": 7e-7}).verdict == "held"
    assert c.evaluate({"max_abs_diff": 1e-3}).verdict == "not held"
    assert c.evaluate({}).verdict == "not measured"
