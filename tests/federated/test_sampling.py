"""Seeded client sampling: a pure function of (seed, round, available, k)."""

from devicelab.federated import sample_partitions, stream_rng
from devicelab.federated.algo import FaultPlan


def test_pure_function_of_seed_and_round():
    a = [sample_partitions(3, r, range(10), 4) for r in range(1, 6)]
    b = [sample_partitions(3, r, list(reversed(range(10))), 4) for r in range(1, 6)]
    assert a == b
    assert all(len(s) == 4 and s == sorted(set(s)) for s in a)
    assert len({tuple(s) for s in a}) > 1  # rounds differ
    assert sample_partitions(4, 1, range(10), 4) != sample_partitions(
        3, 1, range(10), 4
    ) or sample_partitions(4, 2, range(10), 4) != sample_partitions(3, 2, range(10), 4)


def test_all_when_k_is_zero_or_large():
    assert sample_partitions(0, 1, [2, 0, 1], 0) == [0, 1, 2]
    assert sample_partitions(0, 1, [2, 0, 1], 5) == [0, 1, 2]


def test_streams_are_independent_and_reproducible():
    assert stream_rng(0, 1, 2, "data").random() == stream_rng(0, 1, 2, "data").random()
    assert stream_rng(0, 1, 2, "data").random() != stream_rng(0, 1, 2, "u").random()
    assert stream_rng(0, 1, 2, "data").random() != stream_rng(0, 1, 3, "data").random()


def test_fault_plan():
    plan = FaultPlan(fail_at=((2, 1),))
    assert plan.fails(0, 2, 1) and not plan.fails(0, 1, 1) and not plan.fails(0, 2, 0)
    drop = FaultPlan(dropout_prob=0.5)
    decisions = [drop.fails(7, r, p) for r in range(1, 20) for p in range(4)]
    assert decisions == [drop.fails(7, r, p) for r in range(1, 20) for p in range(4)]
    assert 0 < sum(decisions) < len(decisions)
