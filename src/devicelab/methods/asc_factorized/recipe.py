"""Training of one (model, seed[, split]) stage: Adam, P x K x M batches, CE plus the weighted triplet loss.

DCASE2019 task 1A baseline recipe (spec §2.2): Adam lr 1e-3; the full profile keeps the best validation
epoch after the first 50 at a constant rate, quick the last epoch of a cosine-decayed rate (quick recipe,
``FIDELITY.md``). LMF-CNN loss (spec §2.4): ``CE + λ · L_trip(ê)``. Every model sees the same batches for a
seed (:class:`SceneEnvironmentSampler`), so seeds pair across models.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from devicelab.core.checkpoint import load_model_weights, save_model
from devicelab.core.config import ConfigError, to_dict
from devicelab.core.seeding import seed_everything
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.methods.asc_factorized.config import AscFactorizedConfig
from devicelab.methods.asc_factorized.data import SceneTask
from devicelab.methods.asc_factorized.loss import environment_triplet_loss
from devicelab.methods.asc_factorized.model import SceneClassifier, SceneCNN
from devicelab.methods.asc_factorized.sampler import SceneEnvironmentSampler
from devicelab.metrics import accuracy, predict
from devicelab.nn.utils import count_parameters

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

# variant -> (factorised kernels, triplet loss); spec §4: A, B, C, D
BASE_VARIANTS = {
    "baseline": (False, False),
    "factorized": (True, False),
    "lmf": (True, True),
    "baseline-triplet": (False, True),
}
SSN_SUFFIX = "-ssn"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the comparison: kernels, loss and normalisation of a variant name."""

    variant: str
    factorized: bool
    triplet: bool
    norm: str  # "bn" or "ssn"


def model_spec(variant: str) -> ModelSpec:
    """``baseline``, ``factorized``, ``lmf``, ``baseline-triplet``, each optionally with ``-ssn``."""
    base = variant.removesuffix(SSN_SUFFIX)
    if base not in BASE_VARIANTS:
        valid = ", ".join([*BASE_VARIANTS, *(v + SSN_SUFFIX for v in BASE_VARIANTS)])
        raise ConfigError(f"variants/ablations: unknown variant {variant!r}; valid: {valid}")
    factorized, triplet = BASE_VARIANTS[base]
    return ModelSpec(variant, factorized, triplet, "ssn" if variant.endswith(SSN_SUFFIX) else "bn")


def plan_variants(config: AscFactorizedConfig) -> list[str]:
    """The variants and ablations of the config, checked (unknown names and repeats are errors)."""
    variants = [*config.variants, *config.ablations]
    for v in variants:
        model_spec(v)
    if len(set(variants)) != len(variants):
        raise ConfigError(f"variants/ablations repeat: {', '.join(variants)}")
    if not variants:
        raise ConfigError("variants: at least one model is needed")
    return variants


def make_optimizer(
    model: torch.nn.Module, config: AscFactorizedConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Adam at ``config.lr`` (AdamW with ``weight_decay`` > 0) and, for ``lr_schedule="cosine"``, a per-step
    cosine decay from ``lr`` to 0 over ``total_steps`` (quick recipe); constant rate otherwise (spec §2.2)."""
    if config.weight_decay > 0:
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if config.lr_schedule == "constant":
        return optimizer, None
    if config.lr_schedule != "cosine":
        raise ConfigError(f"lr_schedule={config.lr_schedule!r}: expected constant or cosine")
    steps = max(1, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))
    )
    return optimizer, scheduler


def build_cnn(config: AscFactorizedConfig, spec: ModelSpec, num_classes: int) -> SceneCNN:
    """The baseline CNN or the LMF-CNN of ``spec`` with the config's [reconstruction] switches."""
    return SceneCNN(
        num_classes,
        conv=config.factorization if spec.factorized else "full",
        n_mels=config.n_mels,
        k_f=config.k_f,
        k_t=config.k_t,
        dropout=config.dropout,
        norm=spec.norm,  # type: ignore[arg-type]
        ssn_groups=config.ssn_groups,
        embed_point=config.embed_point,
        mid_channels=config.mid_channels,
        inner_act=config.inner_act,
        factor_init=config.factor_init,
    )


def make_train_epoch(
    model: SceneClassifier,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    scenes: torch.Tensor,
    envs: torch.Tensor,
    sampler: SceneEnvironmentSampler,
    config: AscFactorizedConfig,
    triplet: bool,
    seed: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> Callable[[int], dict[str, float]]:
    """``train_epoch(epoch)`` for :func:`devicelab.core.training.fit` on the training clips ``features``
    (with their ``scenes`` and ``envs``); batches come from ``sampler.batches(seed, epoch)``; ``scheduler``
    steps after every batch."""

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        totals = {"loss": 0.0, "ce": 0.0, "triplet": 0.0, "active": 0.0}
        correct = seen = 0
        batches = sampler.batches(seed, epoch)
        for idx in batches:
            ix = torch.from_numpy(idx)
            y = scenes[ix]
            logits, embedding = model.forward_with_embedding(features[ix])
            ce = F.cross_entropy(logits, y)
            loss = ce
            if triplet:
                trip, active = environment_triplet_loss(
                    embedding, y, envs[ix], config.margin, config.mining, config.negative_env
                )
                loss = ce + config.triplet_weight * trip
                totals["triplet"] += float(trip.detach())
                totals["active"] += active
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            totals["loss"] += float(loss.detach())
            totals["ce"] += float(ce.detach())
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        record = {k: v / len(batches) for k, v in totals.items()}
        if not triplet:
            del record["triplet"], record["active"]
        record["train_acc"] = 100.0 * correct / max(1, seen)
        record["lr"] = optimizer.param_groups[0]["lr"]
        return record

    return train_epoch


@torch.no_grad()
def embed(model: SceneClassifier, features: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """Eval-mode embeddings e (N, 100)."""
    model.eval()
    chunks = [
        model.forward_features(features[i : i + batch_size]) for i in range(0, len(features), batch_size)
    ]
    return torch.cat(chunks) if chunks else torch.zeros(0, 100)


def silhouette(embeddings: torch.Tensor, labels: list[str] | np.ndarray) -> float:
    """Silhouette of the L2-normalised embeddings by ``labels`` (NaN with fewer than two labels)."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2 or len(labels) <= len(np.unique(labels)):
        return math.nan
    e = F.normalize(embeddings, dim=1).numpy()
    return float(silhouette_score(e, labels, metric="euclidean"))


def confusion(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[list[int]]:
    """Counts [true][predicted]."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    matrix.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    return matrix.tolist()


def evaluate(model: SceneClassifier, task: SceneTask, seen: np.ndarray, unseen: np.ndarray) -> dict[str, Any]:
    """Seen / unseen accuracy, the gap, accuracy per city, silhouettes of the test embeddings by city and by
    scene, confusion matrices and per-clip correctness (for the paired bootstrap over clips)."""
    out: dict[str, Any] = {}
    k = len(task.scene_names)
    predictions = {}
    for part, idx in (("seen", seen), ("unseen", unseen)):
        ix = torch.as_tensor(idx, dtype=torch.long)
        pred = predict(model, task.features[ix])
        labels = task.scenes[ix]
        predictions[part] = (pred, labels)
        out[f"acc_{part}"] = accuracy(pred, labels)
        out[f"{part}_correct"] = (100.0 * (pred == labels).float()).tolist()
        out[f"confusion_{part}"] = confusion(pred, labels, k)
    out["gap"] = out["acc_unseen"] - out["acc_seen"]
    test = np.concatenate([seen, unseen])
    ix = torch.as_tensor(test, dtype=torch.long)
    pred = torch.cat([predictions["seen"][0], predictions["unseen"][0]])
    labels = task.scenes[ix]
    cities = np.asarray([task.cities[i] for i in test])
    out["per_city_acc"] = {
        city: accuracy(pred[torch.from_numpy(cities == city)], labels[torch.from_numpy(cities == city)])
        for city in sorted(set(cities.tolist()))
    }
    embeddings = embed(model, task.features[ix])
    out["silhouette_city"] = silhouette(embeddings, cities)
    out["silhouette_scene"] = silhouette(embeddings, labels.numpy())
    return out


def _best_epoch(history: list[dict[str, float]], after: int) -> int | None:
    eligible = [h for h in history if h["epoch"] >= after and "val_acc" in h]
    if not eligible:
        return None
    return int(max(eligible, key=lambda h: (h["val_acc"], -h["epoch"]))["epoch"])


def train_stage(task: SceneTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Train one model of one seed on one split, evaluate it on seen and unseen test clips, keep it under
    ``models/``; returns the stage's JSON result (accuracies in %, parameters, diagnostics, curve)."""
    config: AscFactorizedConfig = ctx.config
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    spec = model_spec(stage.variant)
    split = task.splits[stage.condition or config.splits[0]]
    seed_everything(stage.seed)
    train_ix = torch.as_tensor(split.train, dtype=torch.long)
    mean, std = task.band_statistics(split.train)
    model = SceneClassifier(build_cnn(config, spec, len(task.scene_names)), mean, std)
    train_scenes, train_envs = task.scenes[train_ix], task.envs[train_ix]
    sampler = SceneEnvironmentSampler(
        train_scenes.tolist(),
        train_envs.tolist(),
        config.scenes_per_batch,
        config.envs_per_scene,
        config.clips_per_env,
    )
    optimizer, scheduler = make_optimizer(model, config, config.epochs * len(sampler))
    train_epoch = make_train_epoch(
        model,
        optimizer,
        task.features[train_ix],
        train_scenes,
        train_envs,
        sampler,
        config,
        spec.triplet,
        stage.seed,
        scheduler,
    )
    val_ix = torch.as_tensor(split.validation, dtype=torch.long)
    best_path = ctx.run_dir / "models" / f"{stage.name}-best"
    checkpoint = ctx.checkpoint(stage.name)
    restored = checkpoint.loop_state()
    best = {"acc": -math.inf}
    if restored is not None and config.selection == "best":
        epoch = _best_epoch(restored["history"], config.select_after)
        if epoch is not None:
            best["acc"] = restored["history"][epoch]["val_acc"]

    def epoch_with_validation(epoch: int) -> dict[str, float]:
        record = train_epoch(epoch)
        if len(val_ix):
            record["val_acc"] = accuracy(predict(model, task.features[val_ix]), task.scenes[val_ix])
            if (
                config.selection == "best"
                and epoch >= config.select_after
                and record["val_acc"] > best["acc"]
            ):
                best["acc"] = record["val_acc"]
                save_model(best_path, model, {"epoch": epoch, "val_acc": record["val_acc"]})
        return record

    history = fit(
        model,
        optimizer,
        epoch_with_validation,
        config.epochs,
        scheduler=scheduler,
        checkpoint=checkpoint,
        log=ctx.log,
        desc=stage.name,
    )
    chosen_epoch = history[-1]["epoch"]
    if config.selection == "best":
        epoch = _best_epoch(history, config.select_after)
        if epoch is not None and best_path.with_suffix(".safetensors").exists():
            weights, _ = load_model_weights(best_path)
            model.load_state_dict(weights)
            chosen_epoch = epoch
    result: dict[str, Any] = {
        "name": stage.name,
        "variant": stage.variant,
        "split": split.name,
        "seed": stage.seed,
        "params": count_parameters(model),
        "epoch": chosen_epoch,
        **evaluate(model, task, split.test_seen, split.test_unseen),
        "history": history,
        # this invocation's CPU and wall seconds (a resumed stage counts only its last part)
        "time": {"cpu_s": time.process_time() - cpu_start, "wall_s": time.perf_counter() - wall_start},
    }
    if len(val_ix):
        result["val_acc"] = next(h["val_acc"] for h in history if h["epoch"] == chosen_epoch)
    save_model(
        ctx.run_dir / "models" / stage.name,
        model,
        {
            "variant": stage.variant,
            "seed": stage.seed,
            "split": split.name,
            "epoch": chosen_epoch,
            "scene_names": list(task.scene_names),
            "acc_seen": result["acc_seen"],
            "config": to_dict(config),
        },
    )
    return result
