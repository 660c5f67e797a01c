"""One fed-dg sub-run: an algorithm trained leave-one-domain-out, loop or Flower engine (spec §3, §6).

:func:`lodo_stage` is the stage function of the sweep (method x held-out domain x seed);
:func:`flower_check_stage` repeats the first FedFD sub-run under both engines and measures their difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from devicelab.core.stages import Stage
from devicelab.federated import FederatedConfig, run_loop
from devicelab.methods.fed_dg.algorithms import (
    FedAvg,
    FedBN,
    FedFD,
    FedProx,
    FedSR,
    LocalTraining,
    ModelConfig,
    adapter_alphas,
)
from devicelab.methods.fed_dg.algorithms import evaluate as evaluate_modes
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import DomainSource, LodoSplit
from devicelab.methods.fed_dg.export import save_fedfd_arrays

if TYPE_CHECKING:
    from devicelab.core.run import RunContext


def model_config(cfg: FedDGConfig, fedsr: bool = False) -> ModelConfig:
    return ModelConfig(
        cfg.backbone,
        10,
        tuple(cfg.widths),
        cfg.ifa,
        cfg.local_stats,
        cfg.u_dist,
        cfg.div_layers,
        cfg.bn_momentum,
        cfg.bn_eps,
        cfg.fedsr_z_dim if fedsr else 0,
        cfg.init_weights,
    )


def make_algorithm(
    method: str,
    cfg: FedDGConfig,
    seed: int,
    num_classes: int,
    eval_data: tuple[torch.Tensor, torch.Tensor] | None,
) -> FedAvg:
    """One of fedavg, fedprox, fedbn, fedsr, fedfd with the shared backbone, optimiser and rounds."""
    model = model_config(cfg, fedsr=method == "fedsr")
    model = ModelConfig(**{**model.__dict__, "num_classes": num_classes})
    train = LocalTraining(cfg.lr, cfg.momentum, cfg.weight_decay, cfg.batch_size, cfg.local_epochs)
    common = dict(model=model, train=train, rounds=cfg.rounds, seed=seed, eval_data=eval_data)
    if method == "fedavg":
        return FedAvg(**common)
    if method == "fedprox":
        return FedProx(**common, mu=cfg.prox_mu)
    if method == "fedbn":
        return FedBN(**common)
    if method == "fedsr":
        return FedSR(**common, a_l2r=cfg.fedsr_a_l2r, a_cmi=cfg.fedsr_a_cmi)
    if method == "fedfd":
        return FedFD(
            **common,
            lambda_c=cfg.lambda_c,
            div_views=cfg.div_views,
            p_div=cfg.p_div,
            ifa_rounds=cfg.ifa_rounds,
            ifa_schedule=cfg.ifa_schedule,
            ifa_lr=cfg.ifa_lr,
            ifa_optimizer=cfg.ifa_optimizer,
            global_var=cfg.global_var,
        )
    raise ValueError(f"unknown method {method!r}; valid: fedavg, fedprox, fedbn, fedsr, fedfd")


def run_one(
    method: str,
    cfg: FedDGConfig,
    source: DomainSource,
    held_out: str,
    seed: int,
    log: Callable[..., None] | None = None,
    engine: str = "loop",
    rounds: int | None = None,
    ifa_rounds: int | None = None,
) -> dict[str, Any]:
    """Train ``method`` with ``held_out`` unseen and return its accuracies (%) under every inference mode,
    plus the final arrays (key ``"_arrays"``, not JSON)."""
    normalize = "imagenet" if cfg.backbone == "resnet18" else "unit"
    split = LodoSplit(source, held_out, cfg.train_per_domain, cfg.test_per_domain, seed, normalize=normalize)
    test_x, test_y = split.test_set()
    num_classes = source.num_classes()
    algo = make_algorithm(method, cfg, seed, num_classes, (test_x, test_y))
    if rounds is not None:
        algo.rounds = rounds
    if ifa_rounds is not None and isinstance(algo, FedFD):
        algo.ifa_rounds = ifa_rounds
    fcfg = FederatedConfig(
        num_rounds=algo.num_rounds,
        num_partitions=split.num_clients,
        seed=seed,
        client_threads=cfg.client_threads,
        server_eval_every=cfg.eval_every,
        strict_audit=True,
    )
    t0 = time.perf_counter()
    if engine == "flower":
        from devicelab.federated.simulation import run_flower_simulation

        # clients build their side from configs and the source's folder; the test set stays with the server
        task = ClientTask(
            method, cfg, source, held_out, seed, algo.rounds, getattr(algo, "ifa_rounds", 0), fcfg
        )
        result = run_flower_simulation(algo, split.client_data, fcfg, client_task=task)
    else:
        result = run_loop(
            algo,
            split.client_data,
            fcfg,
            log=(lambda **r: log(method=method, held_out=held_out, seed=seed, **r)) if log else None,
        )
    wall = time.perf_counter() - t0
    final = result.rounds[-1].server
    out: dict[str, Any] = {
        "wall_s": wall,
        "failures": result.failures,
        "_arrays": result.arrays,
        "curve": [r.server.get("acc-global") for r in result.rounds],
        "round_wall_s": [r.wall_s for r in result.rounds],
    }
    out.update({k.removeprefix("acc-"): v for k, v in final.items()})
    if isinstance(algo, FedFD) and algo.ifa_rounds > 0:  # the adapter's mixing weights, before and after
        out["alpha_ifa_init"] = adapter_alphas(algo, result.arrays, test_x, initial=True)
        out["alpha_ifa"] = adapter_alphas(algo, result.arrays, test_x)
    if isinstance(algo, FedBN):
        weights = {p: len(split.client_data(p)) for p in result.client_states}
        merged = algo.merge_client_bn(result.arrays, result.client_states, weights)
        accs = evaluate_modes(algo, merged, test_x, test_y, ("global", "instance"))
        out["avg"], out["ttbn"] = accs["global"], accs["instance"]
    return out


@dataclass
class ClientTask:
    """What a Flower client builds its side of one sub-run from: the config, the domain source (a folder or
    the parameters of generated domains, never tensors), the held-out domain, the seed and the method. The
    algorithm is built without the server's evaluation data; partitions load lazily, once per process."""

    method: str
    cfg: FedDGConfig
    source: DomainSource
    held_out: str
    seed: int
    rounds: int
    ifa_rounds: int
    fcfg: FederatedConfig
    _built: tuple | None = field(default=None, repr=False)

    def __call__(self, context: Any) -> tuple[FedAvg, Callable[[int], Any], FederatedConfig]:
        if self._built is None:
            normalize = "imagenet" if self.cfg.backbone == "resnet18" else "unit"
            split = LodoSplit(
                self.source,
                self.held_out,
                self.cfg.train_per_domain,
                self.cfg.test_per_domain,
                self.seed,
                normalize=normalize,
            )
            algo = make_algorithm(self.method, self.cfg, self.seed, self.source.num_classes(), None)
            algo.rounds = self.rounds
            if isinstance(algo, FedFD):
                algo.ifa_rounds = self.ifa_rounds
            self._built = (algo, split.client_data, self.fcfg)
        return self._built

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_built": None}  # travels as configs; built again where it lands


# metric key -> (method run, inference mode)
METRIC_SOURCES: dict[str, tuple[str, str]] = {
    "fedavg": ("fedavg", "global"),
    "fedavg_ttbn": ("fedavg", "instance"),
    "fedavg_ttbn_batch": ("fedavg", "testbatch"),
    "fedfd": ("fedfd", "global"),
    "fedfd_a": ("fedfd", "ifa"),
    "fedfd_a_adapter_init": ("fedfd", "ifa-init"),  # control of the adapter's precondition (F-adapter)
    "fedfd_ttbn": ("fedfd", "instance"),
    "fedfd_ttbn_batch": ("fedfd", "testbatch"),
    "fedprox": ("fedprox", "global"),
    "fedsr": ("fedsr", "global"),
    "fedbn_ttbn": ("fedbn", "ttbn"),
    "fedbn_avg": ("fedbn", "avg"),
}


def lodo_stage(source: DomainSource, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Stage function: ``stage.variant`` trained with ``stage.condition`` held out; FedFD models are kept."""
    cfg: FedDGConfig = ctx.config
    method, held_out, seed = stage.variant, stage.condition, stage.seed
    out = run_one(method, cfg, source, held_out, seed, log=ctx.log, engine=cfg.engine)
    arrays = out.pop("_arrays")
    if method == "fedfd":
        save_fedfd_arrays(
            ctx.run_dir / "models",
            f"fedfd-{held_out}-seed{seed}",
            arrays,
            {"held_out": held_out, "seed": seed, "num_classes": source.num_classes()},
        )
    return out


def flower_check_stage(source: DomainSource, stage: Stage, ctx: RunContext) -> dict[str, float]:
    """Repeat FedFD for ``flower_check_rounds`` rounds (the last one an IFA round) under both engines; the
    largest array difference and the wall-time ratio (``specs/flower.md`` §6)."""
    cfg: FedDGConfig = ctx.config
    rounds = max(cfg.flower_check_rounds - 1, 1)
    outs = {}
    for engine in ("loop", "flower"):
        t0 = time.perf_counter()
        outs[engine] = run_one(
            "fedfd", cfg, source, stage.condition, stage.seed, engine=engine, rounds=rounds, ifa_rounds=1
        )
        outs[engine]["t"] = time.perf_counter() - t0
    a, b = outs["loop"]["_arrays"], outs["flower"]["_arrays"]
    diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a)
    return {
        "flower_max_abs_diff": diff,
        "flower_check_wall_ratio": outs["flower"]["t"] / outs["loop"]["t"],
    }
