"""Thin Flower apps around a pure :class:`~devicelab.federated.algo.FedAlgorithm`.

A handler decodes the ``Message``, calls the pure function and encodes the reply; nothing else. What the
apps run comes from a *resolver*: in simulation a closure over (algorithm, data function, run config); under
``flwr run`` a task built from ``context.run_config`` and ``context.node_config``
(:mod:`devicelab.federated.tasks`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.common.logger import log as flwr_log
from flwr.serverapp import Grid, ServerApp

from devicelab.federated import records
from devicelab.federated.algo import FedAlgorithm, SimulatedDropout
from devicelab.federated.rounds import FederatedConfig, RunResult, with_thread_count
from devicelab.federated.strategy import DevicelabStrategy

ClientResolver = Callable[[Context], tuple[FedAlgorithm, Callable[[int], Any], FederatedConfig]]
ServerResolver = Callable[[Context], tuple[FedAlgorithm, FederatedConfig]]
ResultSink = Callable[[RunResult, Context], None]

DROPOUT_MARKER = "devicelab-simulated-dropout"
RESULT_PREFIX = "devicelab-result: "


def make_client_app(resolve: ClientResolver, stages: tuple[str, ...] = ("train",)) -> ClientApp:
    """A ``ClientApp`` answering ``train`` (and ``train.<stage>`` for the other ``stages``) and
    ``query.whoami``. The partition id comes from ``context.node_config["partition-id"]``."""
    app = ClientApp()

    def train(msg: Message, context: Context) -> Message:
        algo, data_fn, cfg = resolve(context)
        plan = records.plan_from(msg.content["config"])
        pid = int(context.node_config["partition-id"])
        if cfg.faults.fails(cfg.seed, plan.round, pid):
            raise SimulatedDropout(f"{DROPOUT_MARKER}: partition {pid} drops out of round {plan.round}")
        global_arrays = records.to_numpy(msg.content["arrays"])
        state = records.load_state(context.state)
        data = data_fn(pid)
        reply = with_thread_count(
            cfg.client_threads, lambda: algo.client_update(global_arrays, data, state, plan)
        )
        records.save_state(context.state, reply.state)
        return Message(records.reply_content(reply.arrays, reply.n, reply.metrics), reply_to=msg)

    for stage in stages:
        if stage == "train":
            app.train()(train)
        else:
            app.train(stage)(train)

    @app.query("whoami")
    def whoami(msg: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        return Message(records.whoami_content(pid, records.devicelab_version()), reply_to=msg)

    return app


def make_server_app(resolve: ServerResolver, sink: ResultSink | None = None) -> ServerApp:
    """A ``ServerApp`` that runs :class:`DevicelabStrategy` and hands the :class:`RunResult` to ``sink``.

    It also logs one line ``devicelab-result: {json}`` (status, rounds, failures), which reaches the
    operator through ``flwr run --stream`` or ``flwr log``.
    """
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        algo, cfg = resolve(context)
        strategy = DevicelabStrategy(algo, cfg)
        try:
            result = strategy.run(grid)
        except Exception as e:
            flwr_log(logging.ERROR, "%s%s", RESULT_PREFIX, json.dumps({"status": "error", "error": str(e)}))
            raise
        result.info["ray_node_address"] = _ray_node_address()
        if sink is not None:
            sink(result, context)
        summary = {k: v for k, v in result.summary().items() if k not in ("rounds", "info")}
        summary["final"] = result.rounds[-1].server if result.rounds else {}
        summary["client_errors"] = result.info.get("client_errors", [])
        flwr_log(logging.INFO, "%s%s", RESULT_PREFIX, json.dumps(summary, default=float))

    return app


def _ray_node_address() -> str | None:
    """The address Ray registered this node under, when a Ray simulation runs in this process."""
    try:
        import ray

        if ray.is_initialized():
            return str(ray.nodes()[0]["NodeManagerAddress"])
    except Exception:  # noqa: BLE001 -- informational only
        return None
    return None


def write_result_sink(result: RunResult, context: Context) -> None:
    """Under ``flwr run``: write ``result.json`` and the final arrays into ``run_config["run-dir"]``."""
    from pathlib import Path

    run_dir = str(context.run_config.get("run-dir", ""))
    if run_dir:
        result.write(Path(run_dir))
