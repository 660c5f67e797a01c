"""A tiny numpy algorithm (federated least squares) for tests and the loopback deployment check.

Each partition holds a linear-regression problem with its own input shift; clients run a few gradient steps
on a seeded mini-batch order. It exercises every part of the protocol (integer arrays, client state, a second
stage, seeded randomness) without torch start-up cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from devicelab.federated.algo import Arrays, ClientReply, RoundPlan, stream_rng, weighted_average


@dataclass
class LeastSquaresAlgo:
    """Federated least squares: ``w`` (float), ``b`` (float) and a ``rounds_seen`` integer array.

    Stage ``"train"`` updates ``w`` and ``b``; after ``train_rounds`` the stage ``"bias"`` updates ``b``
    only (its replies carry only ``b``), like fed-dg's adapter stage.
    """

    dim: int = 4
    train_rounds: int = 2
    lr: float = 0.1
    local_steps: int = 3
    batch: int = 8
    seed: int = 0
    name: str = "least-squares"
    metric_keys: frozenset[str] = frozenset({"train-loss"})
    stages: tuple[str, ...] = ("train", "bias")

    def init_global(self, seed: int) -> Arrays:
        rng = np.random.default_rng(seed)
        return {
            "b": np.zeros((1,), np.float32),
            "rounds_seen": np.zeros((1,), np.int64),
            "w": rng.normal(size=(self.dim,)).astype(np.float32),
        }

    def plan(self, round: int) -> RoundPlan:
        return RoundPlan(round, "train" if round <= self.train_rounds else "bias", self.seed)

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        return {"w", "b", "rounds_seen"} if plan.stage == "train" else {"b"}

    def client_update(self, global_arrays: Arrays, data: Any, state: Arrays, plan: RoundPlan) -> ClientReply:
        pid, x, y = data  # partition id, (N, dim), (N,)
        w, b = global_arrays["w"].astype(np.float64), float(global_arrays["b"][0])
        rng = stream_rng(plan.seed, plan.round, pid, "data")
        loss = 0.0
        for _ in range(self.local_steps):
            idx = rng.choice(len(x), size=min(self.batch, len(x)), replace=False)
            err = x[idx] @ w + b - y[idx]
            loss = float(np.mean(err**2))
            if plan.stage == "train":
                w = w - self.lr * 2 * x[idx].T @ err / len(idx)
            b = b - self.lr * 2 * float(np.mean(err))
        arrays = {"b": np.array([b], np.float32)}
        if plan.stage == "train":
            arrays["w"] = w.astype(np.float32)
            arrays["rounds_seen"] = global_arrays["rounds_seen"] + 1
        visits = int(state.get("visits", np.zeros(1, np.int64))[0]) + 1 if state else 1
        return ClientReply(
            arrays,
            len(x),
            {"train-loss": loss},
            state={"pid": np.array([pid], np.int64), "visits": np.array([visits], np.int64)},
        )

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays:
        return weighted_average(global_arrays, replies, self.wire_keys(plan))

    def server_eval(self, arrays: Arrays, plan: RoundPlan) -> dict[str, float]:
        _, x, y = make_partition(self.seed, 4, self.dim, 64)
        return {"mse": float(np.mean((x @ arrays["w"] + arrays["b"][0] - y) ** 2))}


def make_partition(seed: int, pid: int, dim: int = 4, n: int = 32) -> tuple[int, np.ndarray, np.ndarray]:
    """Partition ``pid``'s data: inputs shifted by ``pid``, targets from one linear model plus noise."""
    w_true = np.linspace(-1, 1, dim)
    rng = np.random.default_rng([seed, pid])
    n_i = n + 8 * (pid % 3)  # unequal sizes so weights matter
    x = rng.normal(loc=0.1 * pid, size=(n_i, dim))
    y = x @ w_true + 0.5 + 0.01 * rng.normal(size=n_i)
    return pid, x, y


def make_task(
    run_config: dict[str, Any], node_config: dict[str, Any] | None = None
) -> tuple[LeastSquaresAlgo, Any]:
    """The deployment task (``devicelab.federated.toy:make_task``): algorithm and data function from the app's
    run config; ``run_config["fail"] = true`` makes the server raise (a test of failure reporting)."""
    if run_config.get("fail") and node_config is None:
        raise RuntimeError("toy task: the server was asked to fail")
    algo = LeastSquaresAlgo(
        seed=int(run_config.get("seed", 0)), train_rounds=int(run_config.get("train-rounds", 2))
    )
    return algo, lambda pid: make_partition(algo.seed, pid, algo.dim)
