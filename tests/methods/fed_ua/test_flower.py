"""FedUA under Flower (simulation): every message in both directions carries only model arrays and declared
scalars, never a codeword, threshold, score or embedding; and the loop engine gives the same arrays and the
same per-user warm-up TPRs (spec §8: privacy on the wire, engine equivalence)."""

import numpy as np
import pytest

from devicelab.federated import FederatedConfig, apps, run_loop
from devicelab.federated.records import to_numpy
from devicelab.federated.simulation import run_flower_simulation
from devicelab.federated.strategy import DevicelabStrategy
from devicelab.methods.fed_ua.algorithms import FedUA
from devicelab.methods.fed_ua.codes import simulated_codeword
from devicelab.methods.fed_ua.data import synthetic_task
from devicelab.methods.fed_ua.model import ModelConfig
from devicelab.methods.fed_ua.privacy import ALLOWED_METRICS, contains_slice, wire_problems

pytestmark = pytest.mark.slow

USERS, C, D, SEED = 8, 16, 8, 4
SENT, RECEIVED = [], []


class RecordingGrid:
    """The server's grid, recording every message it sends and every reply it receives."""

    def __init__(self, grid):
        self._grid = grid

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *args, **kwargs):
        messages = list(messages)
        SENT.extend(messages)
        replies = list(self._grid.send_and_receive(messages, *args, **kwargs))
        RECEIVED.extend(replies)
        return replies


class RecordingStrategy(DevicelabStrategy):
    def run(self, grid):
        return super().run(RecordingGrid(grid))


def make_algo():
    return FedUA(original_users=USERS, rounds=3, fraction=0.5, code_length=C, seed=SEED,
                 model=ModelConfig(out_dim=C, channels=8, embed_dim=D))  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    task = synthetic_task(USERS, 0, 2, seed=1)
    cfg = FederatedConfig(4, USERS, seed=SEED, strict_audit=True)
    loop_algo = make_algo()
    warm_loop = {}
    original = loop_algo.client_update

    def spy(global_arrays, data, state, plan):
        reply = original(global_arrays, data, state, plan)
        if plan.stage == "warmup":
            warm_loop[data.pid] = reply.metrics["warmup-tpr"]
        return reply

    loop_algo.client_update = spy
    loop = run_loop(loop_algo, task.client_data, cfg)
    mp = pytest.MonkeyPatch()
    mp.setattr(apps, "DevicelabStrategy", RecordingStrategy)
    try:
        flower = run_flower_simulation(make_algo(), task.client_data, cfg)
    finally:
        mp.undo()
    return loop, warm_loop, flower


def test_engines_agree_on_arrays_and_warmup(runs):
    loop, warm_loop, flower = runs
    assert flower.status == "ok" and flower.failures == {"failed": 0, "missing": 0, "rejected": 0}
    assert [r.ok for r in flower.rounds] == [r.ok for r in loop.rounds]
    assert len(flower.rounds[-1].ok) == USERS and flower.rounds[-1].stage == "warmup"
    for key in loop.arrays:
        np.testing.assert_allclose(flower.arrays[key], loop.arrays[key], atol=1e-6, rtol=1e-5)
    pid_of = {node: pid for pid, node in flower.info["node_of"].items()}
    warm_flower = {
        pid_of[m.metadata.src_node_id]: m.content["metrics"]["warmup-tpr"]
        for m in RECEIVED
        if "metrics" in m.content and "warmup-tpr" in m.content["metrics"]
    }
    assert warm_flower == warm_loop and len(warm_flower) == USERS


def test_no_message_carries_a_codeword_threshold_or_embedding(runs):
    loop, _, flower = runs
    codewords = [simulated_codeword(SEED, pid, C) for pid in range(USERS)]
    assert all(np.array_equal(loop.client_states[p]["codeword"], codewords[p]) for p in range(USERS))
    thresholds = [float(loop.client_states[p]["threshold"]) for p in range(USERS)]
    shapes = {k: v.shape for k, v in flower.arrays.items()}
    model_keys = set(shapes)
    assert SENT and RECEIVED
    for msg in SENT:  # server -> client: global arrays and scalar configs only
        content = msg.content
        for record in content.array_records.values():
            assert set(record.keys()) == model_keys
            assert not wire_problems(to_numpy(record), {}, codewords, D, C, shapes)
        for record in content.config_records.values():
            assert all(isinstance(v, int | float | str | bool) for v in record.values())
            assert not any(isinstance(v, float) and v in thresholds for v in record.values())
    n_train = n_warm = 0
    for msg in RECEIVED:  # client -> server
        content = msg.content
        if "whoami" in content.config_records:
            assert set(content.config_records["whoami"].keys()) == {"partition-id", "version"}
            continue
        assert set(content.keys()) == {"arrays", "metrics"}
        arrays, metrics = to_numpy(content["arrays"]), dict(content["metrics"])
        assert set(metrics) <= ALLOWED_METRICS
        assert not any(v in thresholds for k, v in metrics.items() if k != "num-examples")
        if "warmup-tpr" in metrics:
            n_warm += 1
            assert arrays == {}  # the warm-up reply carries counts only
        else:
            n_train += 1
            assert set(arrays) == model_keys
        assert not wire_problems(arrays, metrics, codewords, D, C, shapes)
        # shapes equal the global model shapes: no (N, d) embedding or (N, c) output can ride along
        assert all(arrays[k].shape == shapes[k] for k in arrays)
    assert n_train == 3 * 4 and n_warm == USERS
    assert set(flower.arrays) == model_keys  # the server's result holds only model keys


def test_slice_scan_finds_planted_codewords():
    """The scanner used above can fail: a planted codeword, strided or negated, is found."""
    v = simulated_codeword(0, 0, C)
    carrier = np.zeros(5 * C + 3, np.float32)
    carrier[3::5][:C] = -v
    assert contains_slice(carrier, v)
    assert wire_problems({"w": carrier.reshape(1, -1)}, {"tau": 0.3}, [v], D, C)
