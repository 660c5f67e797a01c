"""One fed-ua stage: a variant trained with one seed and evaluated at the users' own thresholds (spec §7).

Variants: ``fedua`` (random codewords, c from the config), ``naive``, ``fedaws``, ``central`` (pooled softmax,
trained through :func:`devicelab.core.training.fit`), ``fedua-c<c>`` (the code-length curve) and
``feduv-bch<n>`` (BCH codewords). Federated variants run on the plain loop engine;
:func:`flower_check_stage` repeats FedUA for a few rounds under Flower and compares the arrays and the
warm-up TPRs.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from devicelab.core.config import ConfigError
from devicelab.core.seeding import seed_everything, torch_generator
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.federated import FederatedConfig, LocalTraining, RunResult, load_arrays, run_loop
from devicelab.federated.algo import RoundPlan
from devicelab.methods.fed_ua.algorithms import FedAwS, FedUA, NaiveFedAvg, PositiveOnlyFedAvg, random_crop
from devicelab.methods.fed_ua.config import FedUAConfig
from devicelab.methods.fed_ua.data import SpeakerTask
from devicelab.methods.fed_ua.evaluate import (
    batched,
    enrolment_thresholds,
    score_function,
    score_sets,
    verification_metrics,
)
from devicelab.methods.fed_ua.export import save_model_arrays
from devicelab.methods.fed_ua.model import ModelConfig, SoftmaxModel
from devicelab.methods.fed_ua.privacy import aggregate_recovery, codeword_recovery

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

VARIANT_PATTERN = re.compile(r"^(fedua|naive|fedaws|central|fedua-c\d+|feduv-bch\d+|fedua-posneg)$")


def check_variant(variant: str) -> None:
    if not VARIANT_PATTERN.match(variant):
        raise ConfigError(
            f"variant {variant!r}: expected fedua, naive, fedaws, central, fedua-c<c>, feduv-bch<n> "
            "or fedua-posneg"
        )


def make_algorithm(variant: str, cfg: FedUAConfig, seed: int, task: SpeakerTask) -> PositiveOnlyFedAvg:
    """The federated algorithm of ``variant`` with the shared model size, schedule and user pool."""
    check_variant(variant)
    common: dict[str, Any] = dict(
        train=LocalTraining(cfg.lr, 0.0, 0.0, cfg.batch_size, cfg.local_epochs),
        rounds=cfg.rounds,
        seed=seed,
        original_users=task.original_users,
        late_users=task.late_users,
        join_round=cfg.join_round if task.late_users else 0,
        fraction=cfg.fraction,
        q=cfg.q,
        crop_frames=cfg.train_crop_frames,
        local_examples=cfg.local_examples,
    )
    size = dict(n_mels=cfg.n_mels, channels=cfg.channels, embed_dim=cfg.embed_dim)
    users = task.original_users + task.late_users
    if variant == "naive":
        return NaiveFedAvg(model=ModelConfig(head="softmax", out_dim=users, **size), **common)
    if variant == "fedaws":
        return FedAwS(
            model=ModelConfig(head="fedaws", out_dim=users, **size),
            positive_margin=cfg.fedaws_margin,
            spread_nu=cfg.fedaws_nu,
            spread_lr=cfg.fedaws_lr,
            privacy_exempt=True,
            **common,
        )
    codebook, c, extra = cfg.codebook, cfg.code_length, {}
    if variant.startswith("fedua-c"):
        codebook, c = "random", int(variant.removeprefix("fedua-c"))
    elif variant.startswith("feduv-bch"):
        codebook, c = "bch", int(variant.removeprefix("feduv-bch"))
        if c != cfg.bch_n:
            raise ConfigError(f"variant {variant}: bch_n={cfg.bch_n} in the config")
    elif variant == "fedua-posneg":
        extra = dict(loss_kind="pos+neg", privacy_exempt=True)
    elif codebook == "bch":
        c = cfg.bch_n
    return FedUA(
        model=ModelConfig(head="codeword", out_dim=c, output_norm=cfg.output_norm, **size),
        codebook=codebook,
        code_length=c,
        bch_k=cfg.bch_k,
        max_users=max(users, 2),
        loss_kind=extra.pop("loss_kind", cfg.loss),
        **extra,
        **common,
    )


def run_federated(
    algo: PositiveOnlyFedAvg,
    task: SpeakerTask,
    cfg: FedUAConfig,
    engine: str = "loop",
    log: Any = None,
) -> RunResult:
    """Train ``algo`` on every training user and run the warm-up, on the loop or the Flower engine."""
    fcfg = FederatedConfig(
        num_rounds=algo.num_rounds,
        num_partitions=len(task.users),
        seed=algo.seed,
        client_threads=cfg.client_threads,
        server_eval_every=0,
        strict_audit=True,
        max_workers=2,
    )
    if engine == "flower":
        from devicelab.federated.simulation import run_flower_simulation

        return run_flower_simulation(algo, task.client_data, fcfg)
    return run_loop(algo, task.client_data, fcfg, log=log)


def privacy_probe(algo: FedUA, arrays: dict, states: dict, task: SpeakerTask) -> dict[str, float]:
    """Bits of v_u recovered from (a) one client's unmasked ΔW, (b) the weighted aggregate of a round."""
    plan = RoundPlan(algo.rounds, "train", algo.seed)
    sampled = algo.partitions_for(algo.seed, algo.rounds, list(range(algo.original_users)), 0)
    deltas, weights, codewords = [], [], []
    for pid in sampled:
        reply = algo.client_update(arrays, task.client_data(pid), states.get(pid, {}), plan)
        deltas.append(reply.arrays["output.weight"] - arrays["output.weight"])
        weights.append(reply.n)
        codewords.append(reply.state["codeword"])
    return {
        "recovery_single": float(np.mean([codeword_recovery(d, v) for d, v in zip(deltas, codewords)])),
        "recovery_aggregate": aggregate_recovery(deltas, weights, codewords),
        "recovery_users_per_round": float(len(sampled)),
    }


def federated_stage(
    variant: str, cfg: FedUAConfig, task: SpeakerTask, seed: int, log: Any = None, models: Path | None = None
) -> dict:
    """Train one federated variant and evaluate it at every user's own threshold; FedUA models are kept in
    ``models`` (for ``devicelab export``)."""
    algo = make_algorithm(variant, cfg, seed, task)
    t0 = time.perf_counter()
    result = run_federated(algo, task, cfg, log=log)
    wall = time.perf_counter() - t0
    if models is not None and variant == "fedua":
        save_model_arrays(models, f"fedua-seed{seed}", result.arrays, algo.model)
    model = algo.new_model()
    load_arrays(model, result.arrays)
    model.eval()
    users = len(task.users)
    thresholds = np.array([float(result.client_states[u]["threshold"]) for u in range(users)])
    score = score_function(algo, model, result.client_states, users)
    out = verification_metrics(score_sets(score, task, thresholds), task.original_users)
    warm = result.rounds[-1].metrics.get("warmup-tpr", float("nan"))
    out |= {"warmup_tpr": warm, "train_wall_s": wall, "failures": result.failures}
    out["train_loss_last"] = next(
        (r.metrics["train-loss"] for r in reversed(result.rounds) if "train-loss" in r.metrics), float("nan")
    )
    if isinstance(algo, FedUA) and variant == "fedua" and cfg.privacy_probe:
        out |= privacy_probe(algo, result.arrays, result.client_states, task)
    return out


def band_mask(x: torch.Tensor, width: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one random band of 0..``width`` mel channels per example of a (N, F, T) batch (frequency masking
    of SpecAugment, Park et al. 2019) [reconstruction: centralised baseline recipe]; ``width`` 0: ``x``."""
    if width <= 0:
        return x
    n, bands = x.shape[0], x.shape[1]
    size = torch.randint(0, width + 1, (n, 1), generator=generator)
    start = (torch.rand(n, 1, generator=generator) * (bands - size + 1)).long()
    band = torch.arange(bands)[None, :]
    keep = ~((band >= start) & (band < start + size))
    return x * keep[:, :, None].to(x.dtype)


def central_stage(cfg: FedUAConfig, task: SpeakerTask, stage: Stage, ctx: RunContext) -> dict:
    """Centralised softmax over all training users, pooled; cosine scoring against enrolment means."""
    seed_everything(stage.seed)
    users = len(task.users)
    model = SoftmaxModel(ModelConfig(head="softmax", out_dim=users, n_mels=cfg.n_mels, channels=cfg.channels,
                                     embed_dim=cfg.embed_dim))  # fmt: skip
    x = torch.cat([u.train for u in task.users])
    y = torch.cat([torch.full((len(u.train),), i, dtype=torch.long) for i, u in enumerate(task.users)])
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.central_lr, momentum=0.9, weight_decay=cfg.central_weight_decay
    )
    sched = None
    if cfg.central_schedule == "cosine":  # stepped once per epoch, to 0 after the last one
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.central_epochs)

    def epoch(e: int) -> dict[str, float]:
        order = torch.randperm(len(y), generator=torch_generator(stage.seed, e))
        total, seen = 0.0, 0
        gen = torch_generator(stage.seed, e, 1)
        for start in range(0, len(y), cfg.central_batch_size):
            idx = order[start : start + cfg.central_batch_size]
            batch = random_crop(x[idx].float(), cfg.train_crop_frames, gen)  # training only
            batch = band_mask(batch, cfg.central_band_mask, gen)
            loss = F.cross_entropy(model(batch), y[idx], label_smoothing=cfg.central_label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + float(loss.detach()) * len(idx), seen + len(idx)
        if sched is not None:
            sched.step()
        return {"loss": total / seen}

    t0 = time.perf_counter()
    history = fit(model, opt, epoch, cfg.central_epochs, scheduler=sched,
                  checkpoint=ctx.checkpoint(stage.name), log=ctx.log, desc=stage.name)  # fmt: skip
    model.eval()
    embed = model.embedding
    means, thresholds = enrolment_thresholds(embed, task, cfg.q)
    out = verification_metrics(
        score_sets(lambda v: F.normalize(embed(v), dim=1) @ means.T, task, thresholds), task.original_users
    )
    train_acc = float(np.mean(batched(model, x).argmax(1) == y.numpy()))
    return out | {"train_wall_s": time.perf_counter() - t0, "train_loss_last": history[-1]["loss"],
                  "train_acc": train_acc}  # fmt: skip


def train_stage(task: SpeakerTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Stage function: ``stage.variant`` with ``stage.seed``."""
    cfg: FedUAConfig = ctx.config
    if stage.variant == "central":
        return central_stage(cfg, task, stage, ctx)
    log = lambda **r: ctx.log(variant=stage.variant, seed=stage.seed, **r)  # noqa: E731
    return federated_stage(stage.variant, cfg, task, stage.seed, log=log, models=ctx.run_dir / "models")


def engines_difference(cfg: FedUAConfig, task: SpeakerTask, seed: int, rounds: int) -> dict[str, float]:
    """FedUA for ``rounds`` rounds + warm-up under the loop and under Flower: the largest |Δ| of the arrays
    and of the per-user warm-up thresholds and TPRs (spec §8, engine equivalence)."""
    out = {}
    runs = {}
    for engine in ("loop", "flower"):
        algo = make_algorithm("fedua", cfg, seed, task)
        algo.rounds, algo.late_users, algo.join_round = rounds, 0, 0
        algo.original_users = len(task.users)
        t0 = time.perf_counter()
        runs[engine] = run_federated(algo, task, cfg, engine=engine)
        out[f"flower_check_{engine}_s"] = time.perf_counter() - t0
    a, b = runs["loop"], runs["flower"]
    out["flower_max_abs_diff"] = max(
        float(np.max(np.abs(a.arrays[k].astype(np.float64) - b.arrays[k].astype(np.float64))))
        for k in a.arrays
    )
    warm_a = [r.metrics.get("warmup-tpr") for r in a.rounds]
    warm_b = [r.metrics.get("warmup-tpr") for r in b.rounds]
    out["flower_warmup_tpr_equal"] = float(warm_a == warm_b)
    return out


def flower_check_stage(task: SpeakerTask, stage: Stage, ctx: RunContext) -> dict[str, float]:
    """The cross-check of spec §6 on the first ``flower_check_users`` users."""
    cfg: FedUAConfig = ctx.config
    return engines_difference(
        cfg, task.restricted(cfg.flower_check_users), stage.seed, cfg.flower_check_rounds
    )
