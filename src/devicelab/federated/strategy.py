"""``DevicelabStrategy``: Flower's FedAvg with a partition map, seeded sampling, per-round plans,
deterministic aggregation by the algorithm, a wire audit and failure accounting (``specs/flower.md`` §5)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from devicelab.federated import records
from devicelab.federated.algo import Arrays, ClientReply, FedAlgorithm, FederatedRunError, round_partitions
from devicelab.federated.rounds import FederatedConfig, RoundRecord, RunResult, close_round

log = logging.getLogger(__name__)


class DevicelabStrategy(FedAvg):
    """FedAvg whose sampling, plans and aggregation come from a pure algorithm, so it matches the loop engine.

    ``run(grid)`` asks every node ``query.whoami`` (partition id, version), then runs ``cfg.num_rounds``
    rounds through Flower's ``Strategy.start`` and returns a :class:`RunResult`.
    """

    def __init__(self, algo: FedAlgorithm, cfg: FederatedConfig):
        if cfg.num_partitions < cfg.sample_size:
            raise FederatedRunError(
                f"num_partitions={cfg.num_partitions} < clients per round {cfg.sample_size}"
            )
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=cfg.sample_size,
            min_available_nodes=cfg.num_partitions,
        )
        self.algo, self.cfg = algo, cfg
        self.node_of: dict[int, int] = {}
        self.global_arrays: Arrays = {}
        self.round_records: list[RoundRecord] = []
        self._pending: dict[int, tuple[RoundRecord, object]] = {}
        self._skipped = 0
        self._client_errors: list[str] = []

    # -- partition map ------------------------------------------------------------------------------------
    def partition_map(self, grid: Grid) -> dict[int, int]:
        """Ask each node for its partition id and version; fail on a repeated id or a version mismatch."""
        deadline = time.monotonic() + self.cfg.timeout_s
        while len(nodes := sorted(grid.get_node_ids())) < self.cfg.num_partitions:
            if time.monotonic() > deadline:
                raise FederatedRunError(
                    f"{len(nodes)} nodes connected after {self.cfg.timeout_s:.0f} s; "
                    f"need num_partitions={self.cfg.num_partitions}"
                )
            time.sleep(0.5)
        messages = [
            Message(
                content=RecordDict({"whoami": ConfigRecord({})}), dst_node_id=n, message_type="query.whoami"
            )
            for n in nodes
        ]
        replies = list(grid.send_and_receive(messages, timeout=self.cfg.timeout_s))
        mine = records.devicelab_version()
        node_of: dict[int, int] = {}
        for msg in replies:
            if msg.has_error():
                raise FederatedRunError(f"node {msg.metadata.src_node_id}: whoami failed: {msg.error.reason}")
            problems, pid, version = records.audit_whoami(msg)
            if problems:
                raise FederatedRunError(f"node {msg.metadata.src_node_id}: {problems[0]}")
            if version != mine:
                raise FederatedRunError(
                    f"node {msg.metadata.src_node_id} runs devicelab {version}, server {mine}"
                )
            if pid in node_of:
                raise FederatedRunError(
                    f"partition id {pid} is served by two nodes ({node_of[pid]}, {msg.metadata.src_node_id})"
                )
            node_of[pid] = msg.metadata.src_node_id
        expected = set(range(self.cfg.num_partitions))
        if set(node_of) != expected:
            raise FederatedRunError(f"partition ids {sorted(node_of)} answered; expected {sorted(expected)}")
        return node_of

    # -- rounds -------------------------------------------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        plan = self.algo.plan(server_round)
        sampled = round_partitions(
            self.algo, self.cfg.seed, server_round, sorted(self.node_of), self.cfg.sample_size
        )
        self._pending[server_round] = (RoundRecord(server_round, plan.stage, sampled), plan)
        self._round_started = time.perf_counter()
        content = RecordDict(
            {"arrays": records.to_record(self.global_arrays), "config": records.plan_record(plan)}
        )
        return [
            Message(content=content, dst_node_id=self.node_of[pid], message_type=plan.message_type)
            for pid in sampled
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        record, plan = self._pending.pop(server_round)
        pid_of = {node: pid for pid, node in self.node_of.items()}
        answered: set[int] = set()
        valid: list[ClientReply] = []
        for msg in replies:
            pid = pid_of.get(msg.metadata.src_node_id, -1)
            answered.add(pid)
            if msg.has_error():
                record.failed.append(pid)
                reason = msg.error.reason
                if "devicelab-simulated-dropout" not in reason:
                    self._client_errors.append(f"round {server_round}, partition {pid}: {reason}")
                continue
            problems, arrays, metrics = records.audit_train_reply(
                msg, self.algo, plan, self.global_arrays, self.cfg.max_metric_list
            )
            if problems:
                if self.cfg.strict_audit:
                    raise FederatedRunError(
                        f"round {server_round}, partition {pid}: reply failed the audit: {problems}"
                    )
                record.rejected.append(pid)
                record.problems.extend(f"partition {pid}: {p}" for p in problems)
                continue
            n = int(metrics.pop("num-examples"))
            valid.append(ClientReply(arrays, n, {k: float(v) for k, v in metrics.items()}, pid=pid))
        record.missing = sorted(set(record.sampled) - answered)
        record.failed.sort()
        self.global_arrays = close_round(
            self.algo, self.cfg, self.global_arrays, record, plan, valid, self._skipped
        )
        self._skipped += record.skipped
        record.wall_s = time.perf_counter() - self._round_started
        self.round_records.append(record)
        log.info(
            "devicelab round %d (%s): ok %s failed %s missing %s rejected %s %s",
            server_round,
            plan.stage,
            record.ok,
            record.failed,
            record.missing,
            record.rejected,
            record.server,
        )
        return records.to_record(self.global_arrays), MetricRecord(record.metrics)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []  # evaluation is centralised (algo.server_eval in close_round)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return None

    # -- whole run ----------------------------------------------------------------------------------------
    def run(self, grid: Grid) -> RunResult:
        """Partition map, then the rounds; ``status`` is ``"error"`` after an unexpected client error."""
        self.node_of = self.partition_map(grid)
        self.global_arrays = dict(sorted(self.algo.init_global(self.cfg.seed).items()))
        self.start(
            grid=grid,
            initial_arrays=records.to_record(self.global_arrays),
            num_rounds=self.cfg.num_rounds,
            timeout=self.cfg.timeout_s,
        )
        status = "error" if self._client_errors else "ok"
        return RunResult(
            self.global_arrays,
            self.round_records,
            status,
            "flower",
            info={"client_errors": self._client_errors, "node_of": self.node_of},
        )
