"""The plain in-process engine: the same pure functions as the Flower apps, in a for loop.

Used for sweeps (many seeds and held-out domains), where Flower's per-round messaging would dominate.
``tests/federated/test_equivalence.py`` shows that it gives the same arrays as Flower for a fixed seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from devicelab.federated.algo import Arrays, FedAlgorithm, FederatedRunError, audit_reply, round_partitions
from devicelab.federated.rounds import FederatedConfig, RoundRecord, RunResult, close_round, with_thread_count

DataFn = Callable[[int], Any]  # partition id -> that client's local data


def run_loop(
    algo: FedAlgorithm,
    data_fn: DataFn,
    cfg: FederatedConfig,
    *,
    initial_arrays: Arrays | None = None,
    log: Callable[..., None] | None = None,
) -> RunResult:
    """Run ``cfg.num_rounds`` rounds of ``algo`` in this process; returns the final arrays and round records.

    A client that the fault plan fails withholds its reply (counted as ``failed``), as a
    ``SimulatedDropout`` does under Flower. A client step that raises is also counted as ``failed`` and the
    round goes on; after the last round :class:`FederatedRunError` (carrying the result) reports every such
    error, as the Flower engine does. Client state persists per partition across rounds.
    """
    arrays = dict(sorted((initial_arrays or algo.init_global(cfg.seed)).items()))
    states: dict[int, Arrays] = {}
    records: list[RoundRecord] = []
    skipped = 0
    errors: list[str] = []
    first_error: Exception | None = None
    partitions = list(range(cfg.num_partitions))
    for rnd in range(1, cfg.num_rounds + 1):
        t0 = time.perf_counter()
        plan = algo.plan(rnd)
        sampled = round_partitions(algo, cfg.seed, rnd, partitions, cfg.sample_size)
        record = RoundRecord(rnd, plan.stage, sampled)
        replies = []
        for pid in sampled:
            if cfg.faults.fails(cfg.seed, rnd, pid):
                record.failed.append(pid)
                continue
            try:
                data = data_fn(pid)
                state = states.get(pid, {})
                reply = with_thread_count(
                    cfg.client_threads, partial(algo.client_update, arrays, data, state, plan)
                )
            except Exception as e:  # noqa: BLE001 -- counted like a Flower error reply, raised after the run
                record.failed.append(pid)
                errors.append(f"round {rnd}, partition {pid}: {type(e).__name__}: {e}")
                first_error = first_error or e
                continue
            reply.pid = pid
            problems = audit_reply(
                algo,
                plan,
                arrays,
                reply.arrays,
                {**reply.metrics, "num-examples": reply.n},
                cfg.max_metric_list,
            )
            if problems:
                if cfg.strict_audit:
                    raise FederatedRunError(
                        f"round {rnd}, partition {pid}: reply failed the audit: {problems}"
                    )
                record.rejected.append(pid)
                record.problems.extend(f"partition {pid}: {p}" for p in problems)
                continue
            states[pid] = reply.state
            replies.append(reply)
        arrays = close_round(algo, cfg, arrays, record, plan, replies, skipped)
        skipped += record.skipped
        record.wall_s = time.perf_counter() - t0
        records.append(record)
        if log is not None:
            log(
                engine="loop",
                round=rnd,
                stage=plan.stage,
                failed=record.failed,
                missing=record.missing,
                rejected=record.rejected,
                skipped=record.skipped,
                **record.metrics,
                **record.server,
            )
    result = RunResult(
        arrays,
        records,
        "error" if errors else "ok",
        "loop",
        client_states=states,
        info={"client_errors": errors},
    )
    if errors:
        raise FederatedRunError(
            f"loop run finished with client errors: {'; '.join(errors)}", result
        ) from first_error
    return result
