"""Conversions between numpy dicts and Flower records, node state (de)serialisation, and the reply audit.

``to_record`` is the one place that builds an ``ArrayRecord``: ``ArrayRecord({name: np.ndarray})`` raises
``TypeError`` (and only at run time, inside an app), so every array is wrapped in ``Array``
(``specs/flower.md`` §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from devicelab.federated.algo import Arrays, FedAlgorithm, RoundPlan, audit_reply

STATE_KEY = "devicelab-state"


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """An ``ArrayRecord`` of ``arrays`` (sorted keys; 0-d and integer arrays kept bit-exact)."""
    return ArrayRecord(
        {k: Array(np.array(arrays[k], order="C", copy=True)) for k in sorted(arrays)}
    )  # not ascontiguousarray: it turns 0-d into 1-d


def to_numpy(record: ArrayRecord) -> Arrays:
    """The numpy dict of an ``ArrayRecord`` (sorted keys)."""
    return {k: record[k].numpy() for k in sorted(record.keys())}


def plan_record(plan: RoundPlan) -> ConfigRecord:
    """The train config sent to clients: the round plan as scalars."""
    return ConfigRecord(plan.to_config())


def plan_from(config: ConfigRecord) -> RoundPlan:
    """Inverse of :func:`plan_record`."""
    return RoundPlan.from_config(dict(config))


def load_state(state: RecordDict) -> Arrays:
    """The client state kept in a node's ``context.state`` (empty before the first round)."""
    if STATE_KEY not in state.array_records:
        return {}
    return to_numpy(state.array_records[STATE_KEY])


def save_state(state: RecordDict, arrays: Mapping[str, np.ndarray]) -> None:
    """Store the client state in ``context.state`` (it persists on the node across rounds)."""
    state[STATE_KEY] = to_record(arrays)


def reply_content(arrays: Mapping[str, np.ndarray], n: int, metrics: Mapping[str, float]) -> RecordDict:
    """A train reply: one ``ArrayRecord`` and exactly one ``MetricRecord`` (with ``num-examples``)."""
    return RecordDict(
        {
            "arrays": to_record(arrays),
            "metrics": MetricRecord({"num-examples": int(n), **{k: float(v) for k, v in metrics.items()}}),
        }
    )


def audit_train_reply(
    msg: Message, algo: FedAlgorithm, plan: RoundPlan, global_arrays: Arrays, max_metric_list: int = 0
) -> tuple[list[str], Arrays, dict[str, Any]]:
    """Check a train reply against the declared schema; returns (problems, arrays, metrics).

    Exactly one ``ArrayRecord`` named ``arrays`` and one ``MetricRecord`` named ``metrics``, no other record;
    then the array keys, shapes and metric keys of :func:`devicelab.federated.algo.audit_reply`.
    """
    content = msg.content
    problems = []
    names = set(content.keys())
    if names != {"arrays", "metrics"}:
        problems.append(f"records {sorted(names)} != ['arrays', 'metrics']")
    if len(content.metric_records) != 1:
        problems.append(f"{len(content.metric_records)} MetricRecords (exactly one expected)")
    if content.config_records:
        problems.append(f"unexpected ConfigRecords {sorted(content.config_records)}")
    if len(content.array_records) != 1 or "arrays" not in content.array_records:
        problems.append(f"ArrayRecords {sorted(content.array_records)} (exactly one named 'arrays' expected)")
    arrays = to_numpy(content.array_records["arrays"]) if "arrays" in content.array_records else {}
    metrics: dict[str, Any] = (
        dict(content.metric_records["metrics"]) if "metrics" in content.metric_records else {}
    )
    problems += audit_reply(algo, plan, global_arrays, arrays, metrics, max_metric_list)
    return problems, arrays, metrics


def devicelab_version() -> str:
    """The installed devicelab version, which every node of a deployment must share."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("devicelab")
    except PackageNotFoundError:
        return "0+unknown"


def whoami_content(partition_id: int, version: str) -> RecordDict:
    """The reply to ``query.whoami``: the node's partition id and devicelab version."""
    return RecordDict({"whoami": ConfigRecord({"partition-id": int(partition_id), "version": version})})


def audit_whoami(msg: Message) -> tuple[list[str], int, str]:
    """Check a ``query.whoami`` reply (only its two scalar fields); returns (problems, pid, version)."""
    content = msg.content
    if set(content.keys()) != {"whoami"} or "whoami" not in content.config_records:
        return [f"whoami reply: records {sorted(content.keys())} != ['whoami']"], -1, ""
    rec = dict(content.config_records["whoami"])
    if set(rec) != {"partition-id", "version"}:
        return [f"whoami reply: fields {sorted(rec)} != ['partition-id', 'version']"], -1, ""
    return [], int(rec["partition-id"]), str(rec["version"])
