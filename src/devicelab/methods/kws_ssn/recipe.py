"""The BC-ResNet training recipe (arXiv 2106.04140 §4.1; official ``main.py`` and ``utils.py``).

Per iteration: augment the waveforms (background noise + shift, silence noise), log-mel, optional
SpecAugment, cross-entropy, SGD (momentum 0.9, weight decay 1e-3 on every parameter) with a linear warm-up
to the peak learning rate and a cosine decay to 0, both per iteration. The reported number is the
last-epoch test accuracy; no checkpoint is selected.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.audio.augment import BackgroundNoiseMixer, spec_augment
from devicelab.audio.features import MFCC, LogMel
from devicelab.core.checkpoint import save_model
from devicelab.core.config import ConfigError, to_dict
from devicelab.core.seeding import child_rng, seed_everything, torch_generator
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.data.datasets.speech_commands import LABELS_12
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.data import KwsTask
from devicelab.methods.kws_ssn.vtlp import VtlpLogMel
from devicelab.metrics import accuracy, per_class_accuracy, predict
from devicelab.nn.bcresnet import BCResNet
from devicelab.nn.honk import HONK_CONFIGS, HonkResNet
from devicelab.nn.utils import count_parameters

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

# SpecAugment frequency-mask parameter by tau (official main.py); time parameter 20
FREQ_MASK_PARAM = {1.0: 0, 1.5: 1, 2.0: 3, 3.0: 5, 6.0: 7, 8.0: 7}
TIME_MASK_PARAM = 20
BCRESNET_VARIANTS = ("ssn", "bn", "bn-wide", "ssn-affine-all", "ssn-instance")


def build_bcresnet(config: KwsSsnConfig, variant: str) -> BCResNet:
    """The BC-ResNet of one variant: "ssn", "bn", "bn-wide", "ssn-affine-all", "ssn-instance"."""
    common = {
        "tau": config.tau,
        "num_classes": 12,
        "ssn_groups": config.ssn_groups,
        "dropout": config.dropout,
    }
    if variant == "ssn":
        return BCResNet(norm="ssn", ssn_affine=config.ssn_affine, ssn_stats=config.ssn_stats, **common)
    if variant == "bn":
        return BCResNet(norm="bn", **common)
    if variant == "bn-wide":
        return BCResNet(norm="bn", base_width=config.wide_base_width, **common)
    if variant == "ssn-affine-all":
        return BCResNet(norm="ssn", ssn_affine="all", ssn_stats=config.ssn_stats, **common)
    if variant == "ssn-instance":
        return BCResNet(norm="ssn", ssn_affine=config.ssn_affine, ssn_stats="instance", **common)
    raise ValueError(f"unknown variant {variant!r}; valid: ssn, bn, bn-wide, ssn-affine-all, ssn-instance")


class HonkInput(nn.Module):
    """MFCC (N, 1, 40, T) -> honk layout (N, 1, T, 40) in front of a res8/res15 model."""

    def __init__(self, model: HonkResNet):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features.transpose(2, 3))


def warmup_cosine_lr(iteration: int, total_iterations: int, warmup_iterations: int, peak_lr: float) -> float:
    """LR of 1-based ``iteration``: linear 0 -> peak over the warm-up, then cosine to 0 (main.py)."""
    if iteration < warmup_iterations:
        return peak_lr * iteration / warmup_iterations
    progress = (iteration - warmup_iterations) / max(1, total_iterations - warmup_iterations)
    return 0.5 * peak_lr * (1.0 + math.cos(math.pi * progress))


def step_lr(iteration: int, steps: Sequence[int], peak_lr: float) -> float:
    """Honk's schedule: ``peak_lr`` divided by 10 at each step boundary."""
    return peak_lr * 0.1 ** sum(iteration >= s for s in steps)


def use_specaugment(config: KwsSsnConfig) -> bool:
    if config.specaugment == "auto":
        return config.tau >= 1.5
    if config.specaugment not in ("on", "off"):
        raise ValueError(f"specaugment={config.specaugment!r}: expected auto, on or off")
    return config.specaugment == "on"


@dataclass
class TrainSpec:
    """One training run's pieces: model, front end, schedule and batch size."""

    model: nn.Module
    frontend: nn.Module
    batch_size: int
    epochs: int
    weight_decay: float
    lr_at: Callable[[int, int], float]  # (iteration, iterations_per_epoch) -> lr
    freq_mask_param: int = 0
    vtlp: VtlpLogMel | None = None  # training features with a random warp factor per clip (vtlp.py)
    vtlp_range: tuple[float, float] = (1.0, 1.0)


def bcresnet_spec(config: KwsSsnConfig, variant: str) -> TrainSpec:
    def lr_at(iteration: int, per_epoch: int) -> float:
        return warmup_cosine_lr(
            iteration, per_epoch * config.epochs, round(per_epoch * config.warmup_epochs), config.lr
        )

    freq_param = FREQ_MASK_PARAM.get(float(config.tau), 7) if use_specaugment(config) else 0
    frontend = LogMel()
    vtlp_range = vtlp_bounds(config)
    return TrainSpec(
        build_bcresnet(config, variant),
        frontend,
        config.batch_size,
        config.epochs,
        config.weight_decay,
        lr_at,
        freq_param,
        VtlpLogMel(frontend, *vtlp_range) if vtlp_range != (1.0, 1.0) else None,
        vtlp_range,
    )


def vtlp_bounds(config: KwsSsnConfig) -> tuple[float, float]:
    """The VTLP warp range ``[low, high]`` of the config (``vtlp: []`` is off: (1, 1))."""
    if not config.vtlp:
        return (1.0, 1.0)
    if len(config.vtlp) != 2 or not 0.0 < config.vtlp[0] <= config.vtlp[1]:
        raise ConfigError(f"vtlp={config.vtlp}: expected [] or [low, high] with 0 < low <= high")
    return (float(config.vtlp[0]), float(config.vtlp[1]))


def honk_spec(config: KwsSsnConfig, model_name: str, norm: str, groups: int) -> TrainSpec:
    """res8 / res15 on MFCC-40 with honk's step schedule (spec §2.4)."""
    model = HonkResNet(model_name, 12, norm=norm, ssn_groups=groups, uneven_bands="split")

    def lr_at(iteration: int, per_epoch: int) -> float:
        return step_lr(iteration, config.honk_lr_steps, config.lr)

    return TrainSpec(
        HonkInput(model), MFCC(), config.honk_batch_size, config.honk_epochs, config.honk_weight_decay, lr_at
    )


def make_optimizer(model: nn.Module, config: KwsSsnConfig, weight_decay: float) -> torch.optim.SGD:
    """SGD with momentum and weight decay on all parameters (SSN affine included), lr set per iteration."""
    return torch.optim.SGD(model.parameters(), lr=0.0, momentum=config.momentum, weight_decay=weight_decay)


def make_train_epoch(
    spec: TrainSpec,
    optimizer: torch.optim.Optimizer,
    waves: torch.Tensor,
    labels: torch.Tensor,
    mixer: BackgroundNoiseMixer,
    seed: int,
) -> Callable[[int], dict[str, float]]:
    """``train_epoch(epoch)`` for :func:`devicelab.core.training.fit`; the batch order and augmentation of
    an epoch come from generators keyed by (seed, epoch), so a resumed epoch is identical."""
    n = waves.shape[0]
    per_epoch = math.ceil(n / spec.batch_size)

    def train_epoch(epoch: int) -> dict[str, float]:
        spec.model.train()
        order = torch.randperm(n, generator=torch_generator(seed, epoch))
        rng = child_rng(seed, "augment", epoch)
        total_loss, correct = 0.0, 0
        lr = 0.0
        for b in range(per_epoch):
            idx = order[b * spec.batch_size : (b + 1) * spec.batch_size]
            x, y = mixer(waves[idx], labels[idx], rng, train=True), labels[idx]
            with torch.no_grad():
                if spec.vtlp is not None:  # one warp factor per clip, after the noise draws
                    alphas = torch.from_numpy(rng.uniform(*spec.vtlp_range, size=len(idx))).float()
                    features = spec.vtlp(x, alphas).unsqueeze(1)
                else:
                    features = spec.frontend(x).unsqueeze(1)  # (B, 1, F, T)
                if spec.freq_mask_param:
                    features = spec_augment(features, spec.freq_mask_param, TIME_MASK_PARAM, rng)
            lr = spec.lr_at(epoch * per_epoch + b + 1, per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = spec.model(features)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        return {"loss": total_loss / n, "train_acc": 100.0 * correct / n, "lr": lr}

    return train_epoch


@torch.no_grad()
def compute_features(frontend: nn.Module, waves: torch.Tensor, batch_size: int = 200) -> torch.Tensor:
    """Front-end features (N, 1, F, T) of waveforms (N, samples)."""
    chunks = [frontend(waves[i : i + batch_size]).unsqueeze(1) for i in range(0, waves.shape[0], batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros(0)


def eval_features(task: KwsTask, frontend: nn.Module, name: str) -> torch.Tensor:
    """Features of evaluation set ``name`` (``validation``, ``test``, ``channel``, ``real``), from the task's
    cache when the run filled it (:func:`cache_eval_features`), else computed here."""
    key = (type(frontend).__name__, name)
    if key in task.features:
        return task.features[key]
    return compute_features(frontend, task.eval_sets()[name].waves)


def cache_eval_features(task: KwsTask, config: KwsSsnConfig) -> None:
    """Compute the evaluation sets' features once for every front end the models use (log-mel for BC-ResNet,
    MFCC for res8/res15), so the stages (forked after this) do not each recompute them."""
    frontends = {"bcresnet": LogMel(), "honk": MFCC()}
    families = {"bcresnet" if m.family == "bcresnet" else "honk" for m in plan_models(config)}
    for family in sorted(families):
        frontend = frontends[family]
        for name, clips in task.eval_sets().items():
            task.features[(type(frontend).__name__, name)] = compute_features(frontend, clips.waves)


@dataclass(frozen=True)
class ModelChoice:
    """One model of the comparison: a BC-ResNet variant, or res8/res15 with SSN or BN (spec §2.4)."""

    family: str  # "bcresnet", "res15" or "res8"
    norm: str  # a BC-ResNet variant ("ssn", "bn-wide", ...), or "ssn" / "bn" for res8/res15
    groups: int = 0  # res8/res15 SSN groups of the S sweep (0: config.honk_ssn_groups)

    @property
    def variant(self) -> str:
        """The stage variant: ``ssn``, ``bn-wide``, ``res15-ssn``, ``res15-ssn-s8``."""
        if self.family == "bcresnet":
            return self.norm
        return f"{self.family}-{self.norm}" + (f"-s{self.groups}" if self.groups else "")

    def metric_key(self) -> str:
        """Key part of this model's metrics: ``ssn``, ``bn_wide``, ``res15_ssn``, ``res15_ssn_s8``."""
        return self.variant.replace("-", "_")


def plan_models(config: KwsSsnConfig) -> list[ModelChoice]:
    """The models the config asks for: variants, ablations, then res8/res15 with SSN, BN and the S sweep."""
    for variant in [*config.variants, *config.ablations]:
        if variant not in BCRESNET_VARIANTS:
            raise ConfigError(
                f"variants/ablations: unknown variant {variant!r}; valid: {', '.join(BCRESNET_VARIANTS)}"
            )
    for model in config.honk_models:
        if model not in HONK_CONFIGS:
            raise ConfigError(f"honk_models: unknown model {model!r}; valid: {', '.join(HONK_CONFIGS)}")
    models = [ModelChoice("bcresnet", v) for v in [*config.variants, *config.ablations]]
    for model in config.honk_models:
        models += [ModelChoice(model, "ssn"), ModelChoice(model, "bn")]
        models += [ModelChoice(model, "ssn", s) for s in config.honk_s_sweep if s != config.honk_ssn_groups]
    variants = [m.variant for m in models]
    if len(set(variants)) != len(variants):
        raise ConfigError(f"variants repeat: {', '.join(variants)}")
    return models


def train_spec(config: KwsSsnConfig, model: ModelChoice) -> TrainSpec:
    if model.family == "bcresnet":
        return bcresnet_spec(config, model.norm)
    return honk_spec(config, model.family, model.norm, model.groups or config.honk_ssn_groups)


def train_stage(task: KwsTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Train one model with the recipe, evaluate it on every set and keep it under ``models/``; the stage's
    JSON result (accuracies in %, parameters, per-class accuracy, training curve)."""
    config: KwsSsnConfig = ctx.config
    choice = {m.variant: m for m in plan_models(config)}[stage.variant]
    seed_everything(stage.seed)
    spec = train_spec(config, choice)
    # channels-last weights: the same numbers on oneDNN's faster CPU path (about 1.5x for BC-ResNet's
    # depthwise convolutions); the saved state dict is made contiguous again
    spec.model = spec.model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(spec.model, config, spec.weight_decay)
    mixer = BackgroundNoiseMixer(
        task.noises,
        noise_prob=config.noise_prob,
        max_amplitude=config.noise_amplitude,
        silence_max_amplitude=config.silence_noise_amplitude,
        max_shift_ms=config.shift_ms,
    )
    train_epoch = make_train_epoch(spec, optimizer, task.train.waves, task.train.labels, mixer, stage.seed)
    val_features = eval_features(task, spec.frontend, "validation")

    def epoch_with_validation(epoch: int) -> dict[str, float]:
        record = train_epoch(epoch)
        record["val_acc"] = accuracy(predict(spec.model, val_features), task.validation.labels)
        return record

    history = fit(
        spec.model,
        optimizer,
        epoch_with_validation,
        spec.epochs,
        checkpoint=ctx.checkpoint(stage.name),
        log=ctx.log,
        desc=stage.name,
    )
    test_pred = predict(spec.model, eval_features(task, spec.frontend, "test"))
    result: dict[str, Any] = {
        "name": stage.name,
        "family": choice.family,
        "variant": choice.norm,
        "seed": stage.seed,
        "groups": choice.groups,
        "params": count_parameters(spec.model),
        "test_acc": accuracy(test_pred, task.test.labels),
        "val_acc": history[-1]["val_acc"],
        "per_class_acc": per_class_accuracy(test_pred, task.test.labels, len(LABELS_12)),
        # per test clip, 100 if right: the claims' paired bootstrap over clips reads it (core.claims)
        "test_correct": (100.0 * (test_pred == task.test.labels).float()).tolist(),
        "history": history,
    }
    if task.channel is not None:
        result["channel_acc"] = accuracy(
            predict(spec.model, eval_features(task, spec.frontend, "channel")), task.channel.labels
        )
    if task.real is not None:
        real_pred = predict(spec.model, eval_features(task, spec.frontend, "real"))
        result["real_unknown_frac"] = float((real_pred == 1).float().mean())
        result["real_pred"] = [LABELS_12[int(c)] for c in real_pred]  # the confusion row of the report
    spec.model = spec.model.to(memory_format=torch.contiguous_format)
    save_model(
        ctx.run_dir / "models" / stage.name,
        spec.model,
        {
            "family": choice.family,
            "variant": choice.norm,
            "seed": stage.seed,
            "groups": choice.groups,
            "test_acc": result["test_acc"],
            "config": to_dict(config),
        },
    )
    return result
