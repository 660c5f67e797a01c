"""In-process Flower simulation (Ray backend) of a pure algorithm: tests, quick cross-checks.

``run_simulation`` hides client errors and returns ``None``; the ServerApp therefore hands its
:class:`RunResult` to a sink in this process, and :func:`run_flower_simulation` raises when the result is
missing or its status is not ``ok`` (``specs/flower.md`` §6, ``stack.md`` problem 4).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devicelab.federated import env
from devicelab.federated.algo import FedAlgorithm, FederatedRunError
from devicelab.federated.rounds import FederatedConfig, RunResult


def backend_config(cfg: FederatedConfig, temp_dir: str) -> dict[str, Any]:
    """Ray settings for small machines: one CPU per client actor, a small object store, a private temp dir."""
    return {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": max(1, min(os.cpu_count() or 1, cfg.max_workers)),
            "include_dashboard": False,
            "object_store_memory": 256 * 2**20,
            "_temp_dir": temp_dir,
        },
    }


def start_ray(cfg: FederatedConfig, temp_dir: str) -> None:
    """Start Ray in this process before Flower does (Flower then uses it, and shuts it down at the end).

    Flower's own ``ray.init`` adds a ``runtime_env`` (a ``PYTHONPATH`` the workers inherit anyway); Ray then
    cannot give the client actors the worker processes it prestarts at start-up and spawns new ones, which
    adds one interpreter start per actor to every run (``benchmarks/fed_sim_vs_loop.py``, docs/bench.md)."""
    import ray

    if not ray.is_initialized():
        ray.init(**backend_config(cfg, temp_dir)["init_args"])


def run_flower_simulation(
    algo: FedAlgorithm,
    data_fn: Callable[[int], Any],
    cfg: FederatedConfig,
    *,
    run_dir: Path | None = None,
    verbose: bool = False,
    client_task: Callable[[Any], tuple[FedAlgorithm, Callable[[int], Any], FederatedConfig]] | None = None,
) -> RunResult:
    """Run ``algo`` under ``flwr.simulation.run_simulation`` with ``cfg.num_partitions`` virtual nodes.

    Writes ``result.json`` and ``arrays.safetensors`` into ``run_dir`` when given. Raises
    :class:`FederatedRunError` when the ServerApp produced no result or a client raised an unexpected error.
    ``client_task(context) -> (algo, data_fn, cfg)``, when given, is what the ClientApp builds its side from
    (a picklable object holding configs and paths, so the server's evaluation data never reaches a client);
    by default the clients share ``algo`` and ``data_fn`` with the server.
    """
    env.apply()
    from flwr.simulation import run_simulation

    from devicelab.federated.apps import make_client_app, make_server_app

    if cfg.num_partitions < cfg.sample_size:
        raise FederatedRunError(f"num_partitions={cfg.num_partitions} < clients per round {cfg.sample_size}")
    box: dict[str, RunResult] = {}

    def sink(result: RunResult, context: Any) -> None:
        box["result"] = result

    client_app = make_client_app(
        client_task or (lambda context: (algo, data_fn, cfg)), tuple(getattr(algo, "stages", ("train",)))
    )
    server_app = make_server_app(lambda context: (algo, cfg), sink)
    temp_dir = tempfile.mkdtemp(prefix="dl-ray-")  # short: Ray's socket paths allow ~107 characters
    try:
        start_ray(cfg, temp_dir)
        run_simulation(
            server_app=server_app,
            client_app=client_app,
            num_supernodes=cfg.num_partitions,
            backend_config=backend_config(cfg, temp_dir),
            verbose_logging=verbose,
        )
    finally:
        import ray

        if ray.is_initialized():  # Flower shuts Ray down after a run; not when it failed before that
            ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    if "result" not in box:
        raise FederatedRunError(
            "the Flower simulation ended without a result (the ServerApp failed; see its log)"
        )
    result = box["result"]
    if run_dir is not None:
        result.write(Path(run_dir))
    if result.status != "ok":
        raise FederatedRunError(
            f"Flower simulation finished with status {result.status!r}: "
            f"{'; '.join(result.info.get('client_errors', []))}",
            result,
        )
    return result
