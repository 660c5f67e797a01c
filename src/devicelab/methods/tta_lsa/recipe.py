"""The stages of tta-lsa: per seed, train the source model and the adapter; per (variant, seed), adapt online.

Spec ``tta-lsa.md`` §3.4 (source, then adapter on its cached features, both checkpointed per seed), §3.6 and
§5 (every TTA method × head on the same domains, reset between domains unless ``stream.reset=continual``).
:func:`train_seed_stage` and :func:`evaluate_stage` are the stage functions of
:func:`devicelab.core.stages.run_stages`; an evaluation stage reads its seed's models back from checkpoints.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from devicelab.core.checkpoint import load_model_weights, save_model
from devicelab.core.seeding import child_rng, seed_everything
from devicelab.core.stages import Stage
from devicelab.methods.tta_lsa.adapter import LabelShiftAdapter
from devicelab.methods.tta_lsa.config import parse_variant
from devicelab.methods.tta_lsa.data import Domain, Pools, adapter_source, long_tailed_source, make_domains
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.evaluate import run_stream
from devicelab.methods.tta_lsa.heads import make_head
from devicelab.methods.tta_lsa.model import build_backbone
from devicelab.methods.tta_lsa.training import (
    extract_features,
    images_to_tensor,
    train_adapter,
    train_source,
)
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY, TTAMethod, compute_fisher
from devicelab.metrics import balanced_accuracy, predict

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.tta_lsa.config import TTALSAConfig


def source_model(cfg: TTALSAConfig, ctx: RunContext, pools: Pools, seed: int) -> tuple[torch.nn.Module, dict]:
    """Train (or read back) the source model of one seed; returns it and its metadata (class_counts, ...)."""
    path = ctx.run_dir / "checkpoints" / f"source-seed{seed}"
    model = build_backbone(cfg.source.backbone, pools.num_classes)
    if path.with_suffix(".json").exists():
        weights, meta = load_model_weights(path)
        model.load_state_dict(weights)
        return model.eval(), meta
    idx, counts = long_tailed_source(pools, cfg, seed)
    seed_everything(seed)
    model = build_backbone(cfg.source.backbone, pools.num_classes)
    prior = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
    settings = cfg.source_training
    x = images_to_tensor(pools.source_images[idx])
    y = torch.as_tensor(pools.source_labels[idx])
    history = train_source(
        model,
        x,
        y,
        prior,
        settings,
        seed,
        checkpoint=ctx.checkpoint(f"source-train-seed{seed}"),
        log=lambda **r: ctx.log(seed=seed, **r),
    )
    meta = {
        "arch": cfg.source.backbone,
        "model_config": dataclasses.asdict(model.config),
        "class_counts": counts.tolist(),
        "rho_s": cfg.source.rho,
        "n_max": cfg.source.n_max,
        "seed": seed,
        "loss": cfg.source_training.loss,
        "track": pools.track,
        "final_train_acc": history[-1]["train_acc"] if history else None,
    }
    save_model(path, model, meta)
    return model.eval(), meta


def label_shift_adapter(
    cfg: TTALSAConfig, ctx: RunContext, model: torch.nn.Module, pools: Pools, meta: dict, seed: int
) -> LabelShiftAdapter:
    """Train (or read back) the adapter of one seed on the cached features of its LT adapter set (a held-out
    draw the source model was not trained on, by default; :func:`adapter_source`)."""
    counts = np.asarray(meta["class_counts"], dtype=np.float64)
    rho_max = cfg.adapter.rho_max or max(100.0, 2.0 * cfg.source.rho)
    config = dataclasses.replace(cfg.adapter, rho_max=rho_max)
    torch.manual_seed(seed + 1)
    adapter = LabelShiftAdapter(
        pools.num_classes, model.feature_dim, torch.as_tensor(counts / counts.sum()), config
    )
    path = ctx.run_dir / "checkpoints" / f"adapter-seed{seed}"
    if path.with_suffix(".json").exists():
        weights, _ = load_model_weights(path)
        adapter.load_state_dict(weights)
        return adapter.eval().requires_grad_(False)
    idx, _ = adapter_source(pools, cfg, seed)
    x = images_to_tensor(pools.source_images[idx])
    y = torch.as_tensor(pools.source_labels[idx])
    settings = cfg.adapter_training
    features = extract_features(model, x) if settings.mode == "cached" else None
    history = train_adapter(
        adapter, model, features, y, settings, seed, images=x, log=lambda **r: ctx.log(seed=seed, **r)
    )
    save_model(
        path,
        adapter,
        {
            "adapter_config": config.__dict__,
            "seed": seed,
            "final_loss": history[-1],
            "parameters": sum(p.numel() for p in adapter.parameters()),
        },
    )
    return adapter


@dataclass
class SeedModels:
    """What every variant of one seed adapts: the source model, its adapter, π_s and EATA's Fisher."""

    model: torch.nn.Module
    adapter: LabelShiftAdapter | None
    source_prior: torch.Tensor  # (K,)
    fisher: dict[str, torch.Tensor] | None = None


def build_method(
    method: str, head: str, cfg: TTALSAConfig, seed_models: SeedModels, true_prior: np.ndarray | None = None
) -> TTAMethod:
    """One TTA wrapper with one head (the true prior is only given to oracle heads)."""
    source_prior, fisher = seed_models.source_prior, seed_models.fisher
    estimator = PriorEstimator(source_prior, cfg.tta.estimator, cfg.tta.momentum, cfg.tta.eps)
    oracle_prior = torch.as_tensor(true_prior, dtype=torch.float32) if true_prior is not None else None
    head_module = make_head(
        head, source_prior, adapter=seed_models.adapter, estimator=estimator, true_prior=oracle_prior
    )
    kwargs: dict = {"head": head_module}
    if method != "source" and method != "bn-adapt" and method != "lame":
        kwargs.update(steps=cfg.tta.steps, lr=cfg.tta.lr)
    if method == "eata":
        kwargs.update(d_margin=cfg.tta.eata_d_margin, fisher_alpha=cfg.tta.eata_fisher_alpha, fisher=fisher)
    if method == "sar":
        kwargs.update(rho=cfg.tta.sar_rho)
    if method == "lame":
        kwargs.update(knn=cfg.tta.lame_knn)
    return TTA_REGISTRY.build(method, seed_models.model, **kwargs)


def evaluate_variant(
    method: str, head: str, cfg: TTALSAConfig, seed_models: SeedModels, domains: list[Domain]
) -> dict[str, dict[str, float]]:
    """Online metrics of one (method, head) on every domain, resetting between domains (or not: continual)."""
    results: dict[str, dict[str, float]] = {}
    wrapper = None
    for i, domain in enumerate(domains):
        oracle = domain.prior if head.endswith("oracle") else None
        if wrapper is None or oracle is not None:  # an oracle head is bound to its domain's prior
            wrapper = build_method(method, head, cfg, seed_models, oracle)
        reset = cfg.stream.reset == "domain" or i == 0
        results[domain.key] = run_stream(
            wrapper,
            images_to_tensor(domain.images),
            domain.labels,
            cfg.stream.batch_size,
            domain.prior,
            reset=reset,
        )
    return results


def eata_fisher(
    cfg: TTALSAConfig, model: torch.nn.Module, pools: Pools, source_prior: torch.Tensor, seed: int
) -> dict[str, torch.Tensor]:
    """EATA's Fisher information on ``fisher_samples`` source images (same for every EATA head of a seed)."""
    idx, _ = long_tailed_source(pools, cfg, seed)
    take = child_rng(seed, "fisher").permutation(idx)[: cfg.tta.fisher_samples]
    plain = build_method("eata", "plain", cfg, SeedModels(model, None, source_prior))
    return compute_fisher(plain, images_to_tensor(pools.source_images[take]))


SEED_STAGE = "source-and-adapter"  # the variant name of the per-seed training stages


def train_seed_stage(pools: Pools, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Stage ``source-and-adapter-seedS``: train (or read back) one seed's source model and adapter; and the
    source model's balanced accuracy (%) on the clean test set (the floor of C0–C3)."""
    cfg = ctx.config
    model, meta = source_model(cfg, ctx, pools, stage.seed)
    adapter = label_shift_adapter(cfg, ctx, model, pools, meta, stage.seed)
    result = {
        "adapter_params": float(sum(p.numel() for p in adapter.parameters())),
        "final_train_acc": meta["final_train_acc"],
    }
    if pools.clean_labels is not None:
        predictions = predict(model, images_to_tensor(pools.clean_images)).numpy()
        result["clean_balanced_acc"] = balanced_accuracy(pools.clean_labels, predictions)
    return result


def evaluate_stage(pools: Pools, stage: Stage, ctx: RunContext) -> dict[str, dict[str, float]]:
    """Stage ``VARIANT-seedS``: online metrics of one (method, head) on every domain of the seed."""
    cfg = ctx.config
    method, head = parse_variant(stage.variant)
    model, meta = source_model(cfg, ctx, pools, stage.seed)
    counts = np.asarray(meta["class_counts"], dtype=np.float64)
    source_prior = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
    adapter = label_shift_adapter(cfg, ctx, model, pools, meta, stage.seed)
    fisher = eata_fisher(cfg, model, pools, source_prior, stage.seed) if method == "eata" else None
    seed_models = SeedModels(model, adapter, source_prior, fisher)
    results = evaluate_variant(method, head, cfg, seed_models, make_domains(cfg, pools, stage.seed))
    mean_acc = statistics.fmean(r["acc"] for r in results.values())
    ctx.log(event="variant", seed=stage.seed, variant=stage.variant, mean_acc=mean_acc)
    return results
