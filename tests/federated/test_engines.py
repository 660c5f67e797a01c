"""Loop engine and Flower simulation: same arrays, same sampling, failures tolerated and reported.

One Flower simulation (4 nodes, 3 of them per round, a stage switch, one injected dropout in round 2 and an
unexpected client error in round 3) serves the equivalence, sampling, dropout, hidden-error and Ray-loopback
checks: the run completes every round, and then fails loudly although ``run_simulation`` returned normally.
"""

import dataclasses

import numpy as np
import pytest

from devicelab.federated import FederatedConfig, run_loop, sample_partitions, weighted_average
from devicelab.federated.algo import ClientReply, FederatedRunError
from devicelab.federated.toy import LeastSquaresAlgo, make_partition


def data(pid):
    return make_partition(0, pid)


SEED = 5
DROP_ROUND = 2
DROP_PID = sample_partitions(SEED, DROP_ROUND, range(4), 3)[0]
ERROR_ROUND = 3
ERROR_PID = sample_partitions(SEED, ERROR_ROUND, range(4), 3)[-1]


@dataclasses.dataclass
class FlakyAlgo(LeastSquaresAlgo):
    """Least squares whose client step hits an unexpected error for one partition in round 3."""

    def client_update(self, global_arrays, data, state, plan):
        if (plan.round, data[0]) == (ERROR_ROUND, ERROR_PID):
            raise ValueError("corrupt local file")
        return super().client_update(global_arrays, data, state, plan)


def config(**kw):
    base = dict(
        num_rounds=3,
        num_partitions=4,
        clients_per_round=3,
        seed=SEED,
        fail_at=((DROP_ROUND, DROP_PID),),
        strict_audit=True,
        max_skipped_rounds=0,
    )
    return FederatedConfig(**{**base, **kw})


def run_engine(engine):
    from devicelab.federated.simulation import run_flower_simulation

    run = run_flower_simulation if engine == "flower" else run_loop
    with pytest.raises(FederatedRunError, match="corrupt local file") as err:
        run(FlakyAlgo(seed=SEED), data, config())
    return err.value.result


@pytest.fixture(scope="module")
def flower_result():
    return run_engine("flower")


def test_loop_and_flower_agree(flower_result):
    loop = run_engine("loop")
    init = LeastSquaresAlgo(seed=SEED).init_global(SEED)
    assert flower_result.status == "error" and len(flower_result.rounds) == 3
    assert sorted(flower_result.arrays) == sorted(loop.arrays)
    for k in loop.arrays:
        np.testing.assert_allclose(flower_result.arrays[k], loop.arrays[k], atol=1e-6, rtol=1e-5, err_msg=k)
    assert not np.allclose(loop.arrays["w"], init["w"])  # training happened
    for a, b in zip(loop.rounds, flower_result.rounds):
        assert (a.round, a.stage, a.sampled, a.ok, a.failed) == (b.round, b.stage, b.sampled, b.ok, b.failed)
        assert a.metrics == pytest.approx(b.metrics, rel=1e-6)
    assert [r.stage for r in loop.rounds] == ["train", "train", "bias"]


def test_strategy_samples_like_the_loop(flower_result):
    for r in flower_result.rounds:
        assert r.sampled == sample_partitions(SEED, r.round, range(4), 3)


def test_failures_are_tolerated_counted_and_reported(flower_result):
    assert flower_result.failures == {"failed": 2, "missing": 0, "rejected": 0}
    assert flower_result.rounds[DROP_ROUND - 1].failed == [DROP_PID]
    assert flower_result.rounds[ERROR_ROUND - 1].failed == [ERROR_PID]
    [error] = flower_result.info["client_errors"]  # the dropout is expected; the ValueError is not
    assert "corrupt local file" in error and f"partition {ERROR_PID}" in error


def test_ray_binds_loopback(flower_result):
    assert flower_result.info["ray_node_address"] == "127.0.0.1"


def test_dropped_round_is_weighted_mean_of_the_others():
    algo = LeastSquaresAlgo(seed=SEED)
    before = run_loop(algo, data, config(num_rounds=DROP_ROUND - 1)).arrays
    after = run_loop(algo, data, config(num_rounds=DROP_ROUND)).arrays
    plan = algo.plan(DROP_ROUND)
    replies = []
    for pid in sample_partitions(SEED, DROP_ROUND, range(4), 3):
        if pid != DROP_PID:
            r = algo.client_update(before, data(pid), {}, plan)
            replies.append(ClientReply(r.arrays, r.n, pid=pid))
    expected = weighted_average(before, replies, algo.wire_keys(plan))
    for k in expected:
        np.testing.assert_allclose(after[k], expected[k], rtol=1e-6, err_msg=k)


def test_all_clients_failing_raises():
    cfg = config(clients_per_round=0, fail_at=tuple((1, p) for p in range(4)))
    with pytest.raises(FederatedRunError, match="max_skipped_rounds"):
        run_loop(LeastSquaresAlgo(seed=SEED), data, cfg)
