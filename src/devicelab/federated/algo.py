"""The framework-free side of federated learning: algorithm protocol, replies, plans, randomness, averaging.

Nothing here imports ``flwr``. Both engines (:mod:`devicelab.federated.loop` and the Flower apps) call these
functions in the same order with the same seeds, so they produce the same arrays (``specs/flower.md`` §2, §5).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

Arrays = dict[str, np.ndarray]
Scalar = int | float | str | bool


class SimulatedDropout(RuntimeError):
    """Raised by a client that the fault plan tells to drop out of a round (counted as ``failed``)."""


class FederatedRunError(RuntimeError):
    """A federated run that cannot go on or that failed: no valid replies, too many skipped rounds, a failed
    audit, an unexpected client error. ``result`` holds the run's result when there is one."""

    def __init__(self, message: str, result: Any = None):
        super().__init__(message)
        self.result = result


# ----------------------------------------------------------------------------------------------------------
# Plans and replies


@dataclass(frozen=True)
class RoundPlan:
    """What the server asks of the clients in one round: the stage (``"train"``, ``"ifa"``, ...) and switches.

    The plan travels as a ``ConfigRecord`` of scalars (:meth:`to_config` / :meth:`from_config`).
    """

    round: int
    stage: str = "train"
    seed: int = 0
    switches: Mapping[str, Scalar] = field(default_factory=dict)

    def to_config(self) -> dict[str, Scalar]:
        out: dict[str, Scalar] = {"round": self.round, "stage": self.stage, "seed": self.seed}
        out.update({f"switch.{k}": v for k, v in sorted(self.switches.items())})
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RoundPlan:
        for key in ("round", "stage", "seed"):
            if key not in config:
                raise ValueError(f"round plan: missing key {key!r} in the train config")
        switches = {k.removeprefix("switch."): v for k, v in config.items() if k.startswith("switch.")}
        return cls(int(config["round"]), str(config["stage"]), int(config["seed"]), switches)

    @property
    def message_type(self) -> str:
        """Flower message type of this stage: ``"train"`` or ``"train.<stage>"``."""
        return message_type(self.stage)


def message_type(stage: str) -> str:
    """``"train"`` for the main stage, ``"train.<stage>"`` for any other (``@app.train(stage)``)."""
    return "train" if stage == "train" else f"train.{stage}"


@dataclass
class ClientReply:
    """A client's answer to one round: arrays to aggregate, its sample count, scalar metrics, and the state
    that stays on the client (FedBN's BN layers, ...). ``pid`` is filled in by the engine."""

    arrays: Arrays
    n: int
    metrics: dict[str, float] = field(default_factory=dict)
    state: Arrays = field(default_factory=dict)
    pid: int = -1


@runtime_checkable
class FedAlgorithm(Protocol):
    """A federated algorithm as pure functions (``specs/flower.md`` §5). Arrays are dicts with sorted keys."""

    name: str
    metric_keys: frozenset[str]

    def init_global(self, seed: int) -> Arrays: ...

    def plan(self, round: int) -> RoundPlan: ...

    def client_update(
        self, global_arrays: Arrays, data: Any, state: Arrays, plan: RoundPlan
    ) -> ClientReply: ...

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays: ...

    def server_eval(self, arrays: Arrays, plan: RoundPlan) -> dict[str, float]: ...

    def wire_keys(self, plan: RoundPlan) -> set[str]: ...


# ----------------------------------------------------------------------------------------------------------
# Randomness: every draw from np.random.default_rng([seed, round, pid, stream])

SERVER_PID = 2**31 - 1  # the "partition id" of draws made by the server (sampling)


def stream_id(stream: str) -> int:
    """The fixed integer of a named random stream (``zlib.crc32`` of its name)."""
    return zlib.crc32(stream.encode())


def stream_rng(seed: int, round: int, pid: int, stream: str) -> np.random.Generator:
    """The generator of one (seed, round, partition, stream): the same in every engine, process and worker."""
    return np.random.default_rng([int(seed), int(round), int(pid), stream_id(stream)])


def torch_generator(seed: int, round: int, pid: int, stream: str) -> torch.Generator:
    """A ``torch.Generator`` seeded from :func:`stream_rng` (shuffles and random tensors of client steps)."""
    import torch

    g = torch.Generator()
    g.manual_seed(int(stream_rng(seed, round, pid, stream).integers(0, 2**62)))
    return g


def sample_partitions(seed: int, round: int, available: Sequence[int], k: int) -> list[int]:
    """The partition ids that train in ``round``: ``k`` of ``available`` (all when ``k <= 0``), sorted.

    A pure function of (seed, round, available, k); Flower's own sampling uses the unseeded ``random`` module.
    """
    pool = sorted(int(p) for p in available)
    if k <= 0 or k >= len(pool):
        return pool
    idx = stream_rng(seed, round, SERVER_PID, "sample").choice(len(pool), size=k, replace=False)
    return sorted(pool[i] for i in idx)


def round_partitions(algo: Any, seed: int, round: int, available: Sequence[int], k: int) -> list[int]:
    """The partition ids asked in ``round``: ``algo.partitions_for(seed, round, available, k)`` when the
    algorithm defines it (a pool that grows as users join, a stage every node answers), else
    :func:`sample_partitions`. Both engines call this, so they ask the same partitions."""
    hook = getattr(algo, "partitions_for", None)
    if hook is None:
        return sample_partitions(seed, round, available, k)
    return sorted(int(p) for p in hook(seed, round, sorted(int(p) for p in available), k))


@dataclass(frozen=True)
class FaultPlan:
    """Injected client failures, the same in both engines (``specs/flower.md`` §9).

    ``fail_at``: (round, partition id) pairs that fail; ``dropout_prob``: each client fails with this
    probability, decided by the stream ``"drop"``.
    """

    fail_at: tuple[tuple[int, int], ...] = ()
    dropout_prob: float = 0.0

    def fails(self, seed: int, round: int, pid: int) -> bool:
        if (int(round), int(pid)) in {(int(r), int(p)) for r, p in self.fail_at}:
            return True
        return self.dropout_prob > 0 and stream_rng(seed, round, pid, "drop").random() < self.dropout_prob


# ----------------------------------------------------------------------------------------------------------
# Aggregation


def weighted_average(
    global_arrays: Arrays, replies: Sequence[ClientReply], keys: set[str] | None = None
) -> Arrays:
    """FedAvg of the replies' arrays weighted by sample count, renormalised over the replies given.

    Floating-point arrays are averaged in float64 and cast back; integer arrays (``num_batches_tracked``)
    are copied from the first reply (replies come sorted by partition id). Keys outside ``keys`` (default:
    the keys of the replies) keep their global value.
    """
    if not replies:
        raise FederatedRunError("weighted_average: no replies to average")
    keys = set(replies[0].arrays) if keys is None else set(keys)
    total = float(sum(r.n for r in replies))
    if total <= 0:
        raise FederatedRunError("weighted_average: the replies carry no examples (num-examples sums to 0)")
    out = dict(global_arrays)
    for key in sorted(keys):
        first = replies[0].arrays[key]
        if np.issubdtype(first.dtype, np.floating):
            acc = np.zeros(first.shape, dtype=np.float64)
            for r in replies:
                acc += (r.n / total) * r.arrays[key].astype(np.float64)
            out[key] = acc.astype(first.dtype)
        else:
            out[key] = first.copy()
    return dict(sorted(out.items()))


def average_metrics(replies: Sequence[ClientReply]) -> dict[str, float]:
    """The sample-weighted mean of each client metric over the replies."""
    total = float(sum(r.n for r in replies)) or 1.0
    keys = sorted({k for r in replies for k in r.metrics})
    return {k: sum(r.n * float(r.metrics.get(k, 0.0)) for r in replies) / total for k in keys}


# ----------------------------------------------------------------------------------------------------------
# Wire audit (the part that does not depend on Flower's records)


def audit_reply(
    algo: FedAlgorithm,
    plan: RoundPlan,
    global_arrays: Arrays,
    arrays: Mapping[str, np.ndarray],
    metrics: Mapping[str, Any],
    max_metric_list: int = 0,
) -> list[str]:
    """The problems of one train reply against the declared schema (empty list: the reply is valid).

    Array keys must equal ``algo.wire_keys(plan)`` with the global shapes; metric keys must lie in
    ``algo.metric_keys`` plus ``"num-examples"``, as scalars (lists up to ``max_metric_list`` long).
    """
    problems = []
    expected = algo.wire_keys(plan)
    extra, missing = sorted(set(arrays) - expected), sorted(expected - set(arrays))
    if extra:
        problems.append(f"unexpected arrays: {extra[:5]}")
    if missing:
        problems.append(f"missing arrays: {missing[:5]}")
    for key in sorted(set(arrays) & expected):
        if key in global_arrays and tuple(arrays[key].shape) != tuple(global_arrays[key].shape):
            problems.append(
                f"array {key}: shape {tuple(arrays[key].shape)} != {tuple(global_arrays[key].shape)}"
            )
    allowed = set(algo.metric_keys) | {"num-examples"}
    for key, value in metrics.items():
        if key not in allowed:
            problems.append(f"unexpected metric {key!r}")
        elif isinstance(value, list | tuple | np.ndarray):
            if len(value) > max_metric_list:
                problems.append(f"metric {key!r} is a list of {len(value)} (at most {max_metric_list})")
        elif not isinstance(value, int | float | np.number) or isinstance(value, bool):
            problems.append(f"metric {key!r} is not a number")
    if "num-examples" not in metrics:
        problems.append("missing metric 'num-examples'")
    return problems
