"""Server-side bookkeeping shared by both engines: run config, per-round record, closing a round, results.

The loop engine and the Flower strategy both call :func:`close_round` with the replies they received, so
aggregation, failure accounting and skipping follow the same rules (``specs/flower.md`` §5, §9).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devicelab.federated.algo import (
    Arrays,
    ClientReply,
    FaultPlan,
    FedAlgorithm,
    FederatedRunError,
    RoundPlan,
    average_metrics,
)


@dataclass
class FederatedConfig:
    """How a federated run is driven (the algorithm's own hyper-parameters live in the algorithm)."""

    num_rounds: int
    num_partitions: int
    clients_per_round: int = 0  # 0: every partition trains in every round
    seed: int = 0
    fail_at: tuple[tuple[int, int], ...] = ()
    dropout_prob: float = 0.0
    min_replies: int = 1  # fewer valid replies: the round is skipped, global arrays unchanged
    max_skipped_rounds: int = 3  # more skipped rounds than this: the run raises
    client_threads: int = 1
    strict_audit: bool = False  # tests: a reply that fails the audit raises instead of being rejected
    max_metric_list: int = 0
    timeout_s: float = 600.0  # Flower: per-round wait; a silent node becomes a missing reply
    max_workers: int = 2  # Flower simulation: Ray CPUs (one per client actor)
    server_eval_every: int = 1  # 0: evaluate only after the last round

    def __post_init__(self) -> None:
        if self.num_rounds < 1:
            raise ValueError(f"num_rounds={self.num_rounds}: need at least one round")
        if self.num_partitions < 1:
            raise ValueError(f"num_partitions={self.num_partitions}: need at least one partition")
        if self.clients_per_round > self.num_partitions:
            raise ValueError(
                f"clients_per_round={self.clients_per_round} > num_partitions={self.num_partitions}"
            )
        self.fail_at = tuple((int(r), int(p)) for r, p in self.fail_at)

    @property
    def faults(self) -> FaultPlan:
        return FaultPlan(self.fail_at, self.dropout_prob)

    @property
    def sample_size(self) -> int:
        return self.clients_per_round if self.clients_per_round > 0 else self.num_partitions


@dataclass
class RoundRecord:
    """What happened in one round: who was asked, who answered, what was aggregated and evaluated."""

    round: int
    stage: str
    sampled: list[int]
    ok: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    skipped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # from sending the round's work to the end of aggregation and evaluation


@dataclass
class RunResult:
    """The outcome of a federated run in either engine."""

    arrays: Arrays
    rounds: list[RoundRecord]
    status: str = "ok"
    engine: str = "loop"
    client_states: dict[int, Arrays] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> dict[str, int]:
        return {k: sum(len(getattr(r, k)) for r in self.rounds) for k in ("failed", "missing", "rejected")}

    def summary(self) -> dict[str, Any]:
        """JSON-safe summary (``result.json``): status, rounds, failure counts, per-round records."""
        return {
            "status": self.status,
            "engine": self.engine,
            "num_rounds": len(self.rounds),
            "failures": self.failures,
            "rounds": [asdict(r) for r in self.rounds],
            "info": self.info,
        }

    def write(self, folder: Path) -> None:
        """Write ``result.json`` and ``arrays.safetensors`` into ``folder`` (JSON last)."""
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: np.array(v, order="C", copy=True) for k, v in self.arrays.items()},
            str(folder / "arrays.safetensors"),
        )
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(self.summary(), indent=2, default=float))
        tmp.replace(folder / "result.json")


def close_round(
    algo: FedAlgorithm,
    cfg: FederatedConfig,
    global_arrays: Arrays,
    record: RoundRecord,
    plan: RoundPlan,
    replies: Sequence[ClientReply],
    skipped_so_far: int,
) -> Arrays:
    """Aggregate the valid replies of a round (sorted by partition id) and evaluate; returns the new arrays.

    With fewer than ``cfg.min_replies`` valid replies the round is skipped and the arrays stay as they were;
    more than ``cfg.max_skipped_rounds`` skipped rounds raise :class:`FederatedRunError`.
    """
    valid = sorted(replies, key=lambda r: r.pid)
    record.ok = [r.pid for r in valid]
    if len(valid) < cfg.min_replies:
        record.skipped = True
        if skipped_so_far + 1 > cfg.max_skipped_rounds:
            raise FederatedRunError(
                f"round {record.round}: {len(valid)} valid replies (< min_replies={cfg.min_replies}); "
                f"{skipped_so_far + 1} skipped rounds exceed max_skipped_rounds={cfg.max_skipped_rounds} "
                f"(failed {record.failed}, missing {record.missing}, rejected {record.rejected})"
            )
        new_arrays = global_arrays
    else:
        new_arrays = algo.aggregate(global_arrays, valid, plan)
        record.metrics = average_metrics(valid)
    last = record.round == cfg.num_rounds
    if last or (cfg.server_eval_every > 0 and record.round % cfg.server_eval_every == 0):
        record.server = {k: float(v) for k, v in algo.server_eval(new_arrays, plan).items()}
    return new_arrays


def with_thread_count(n: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with ``torch.set_num_threads(n)``, restoring the previous count afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)
