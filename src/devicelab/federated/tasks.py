"""Federated tasks for ``flwr run``: the app resolves its algorithm and data from the run config.

A task is ``"module:function"``; ``function(run_config, node_config)`` returns ``(algorithm, data_fn)``.
``node_config`` is ``None`` on the server. The same ClientApp/ServerApp code then runs in simulation and in
deployment (``specs/flower.md`` §7, §8).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from devicelab.federated.algo import FedAlgorithm
from devicelab.federated.rounds import FederatedConfig

RUN_CONFIG_KEYS = ("task", "num-partitions", "num-rounds", "seed", "timeout-s", "run-dir")


def load_task(spec: str):
    """The task function named ``"module:function"``; a clear error names what is wrong."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"task={spec!r}: expected 'module:function'")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"task={spec!r}: cannot load it ({e})") from None


def federated_config(run_config: Mapping[str, Any], algo: FedAlgorithm) -> FederatedConfig:
    """The run settings from the app's ``[tool.flwr.app.config]``."""
    rounds = int(run_config.get("num-rounds", 0)) or int(getattr(algo, "num_rounds", 1))
    return FederatedConfig(
        num_rounds=rounds,
        num_partitions=int(run_config["num-partitions"]),
        seed=int(run_config.get("seed", 0)),
        timeout_s=float(run_config.get("timeout-s", 600)),
    )


def resolve_client(context) -> tuple[FedAlgorithm, Any, FederatedConfig]:
    run_config, node_config = dict(context.run_config), dict(context.node_config)
    algo, data_fn = load_task(str(run_config["task"]))(run_config, node_config)
    return algo, data_fn, federated_config(run_config, algo)


def resolve_server(context) -> tuple[FedAlgorithm, FederatedConfig]:
    run_config = dict(context.run_config)
    algo, _ = load_task(str(run_config["task"]))(run_config, None)
    return algo, federated_config(run_config, algo)
