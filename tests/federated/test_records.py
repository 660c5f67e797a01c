"""numpy <-> ArrayRecord round trip, the reply audit on records, integer buffers through aggregation."""

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from devicelab.federated import ClientReply, RoundPlan, weighted_average
from devicelab.federated.records import (
    audit_train_reply,
    plan_from,
    plan_record,
    reply_content,
    to_numpy,
    to_record,
)
from devicelab.federated.toy import LeastSquaresAlgo


def arrays():
    rng = np.random.default_rng(0)
    return {
        "a": rng.normal(size=(3, 4)).astype(np.float32),
        "count": np.asarray(np.int64(7)),
        "d": rng.normal(size=(5,)),
        "scalar": np.asarray(np.float32(1.5)),
        "t": np.asfortranarray(rng.normal(size=(2, 3)).astype(np.float32)),
    }


def test_round_trip_is_bit_exact():
    src = arrays()
    back = to_numpy(to_record(src))
    assert list(back) == sorted(src)
    for k, v in src.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert back[k].tobytes() == np.ascontiguousarray(v).tobytes(), k


def test_raw_ndarray_record_fails_and_to_record_wraps():
    with pytest.raises(TypeError):
        ArrayRecord({"x": np.zeros(3)})  # the pitfall that to_record exists for
    rec = to_record({"x": np.zeros(3)})
    assert isinstance(rec["x"], Array)


def test_plan_round_trip():
    plan = RoundPlan(4, "ifa", 3, {"lambda-c": 1.0, "flag": True})
    assert plan_from(plan_record(plan)) == plan
    assert plan.message_type == "train.ifa"
    with pytest.raises(ValueError, match="round"):
        RoundPlan.from_config({"stage": "train", "seed": 0})


def test_int_buffers_survive_aggregation():
    g = {"w": np.zeros(2, np.float32), "n": np.asarray(np.int64(0))}
    replies = [
        ClientReply({"w": np.ones(2, np.float32), "n": np.asarray(np.int64(5))}, 1, pid=0),
        ClientReply({"w": 3 * np.ones(2, np.float32), "n": np.asarray(np.int64(9))}, 3, pid=1),
    ]
    out = to_numpy(to_record(weighted_average(g, replies)))
    assert out["n"].dtype == np.int64 and out["n"].shape == () and int(out["n"]) == 5
    np.testing.assert_allclose(out["w"], 2.5)


def _reply(content: RecordDict) -> Message:
    return Message(content=content, dst_node_id=1, message_type="train")


def test_audit_rejects_unexpected_content():
    algo = LeastSquaresAlgo()
    plan = algo.plan(1)
    g = algo.init_global(0)
    good = {k: g[k] for k in algo.wire_keys(plan)}
    problems, _, _ = audit_train_reply(_reply(reply_content(good, 10, {"train-loss": 0.5})), algo, plan, g)
    assert problems == []
    extra_array = {**good, "features": np.zeros((4, 8), np.float32)}
    problems, _, _ = audit_train_reply(_reply(reply_content(extra_array, 10, {})), algo, plan, g)
    assert any("unexpected arrays" in p for p in problems)
    problems, _, _ = audit_train_reply(_reply(reply_content(good, 10, {"labels-seen": 3.0})), algo, plan, g)
    assert any("unexpected metric" in p for p in problems)
    listy = RecordDict(
        {"arrays": to_record(good), "metrics": MetricRecord({"num-examples": 10, "train-loss": [0.1, 0.2]})}
    )
    problems, _, _ = audit_train_reply(_reply(listy), algo, plan, g)
    assert any("list" in p for p in problems)
    second = RecordDict(
        {
            "arrays": to_record(good),
            "metrics": MetricRecord({"num-examples": 10}),
            "extra": ConfigRecord({"user": "x"}),
        }
    )
    problems, _, _ = audit_train_reply(_reply(second), algo, plan, g)
    assert any("records" in p for p in problems)
    wrong_shape = {**good, "w": np.zeros(7, np.float32)}
    problems, _, _ = audit_train_reply(_reply(reply_content(wrong_shape, 10, {})), algo, plan, g)
    assert any("shape" in p for p in problems)
