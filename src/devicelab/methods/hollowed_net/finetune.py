"""Stage 2: fine-tune the Hollowed Net (LoRA on the kept layers only), and the baselines on the same samples.

Spec §5.2 and §9. Every variant sees the same pre-drawn (k, ε, t) per step, so they differ only in what
trains and what is resident:

- ``hollowed`` (the method): the U-Net with depth-m layers on ``meta``, LoRA on the kept attention
  projections, forward = kept IN layers, then a_m (a constant), then the kept OUT layers.
- ``lora``: LoRA rank r on every attention projection, full U-Net, full forward.
- ``lora-kept`` (ablation): LoRA on exactly the modules ``hollowed`` m trains, full U-Net and full forward.
- ``full-ft``: every U-Net parameter trains.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.core.memory import (
    TrainingAccount,
    account_training_step,
    gradient_bytes,
    optimizer_state_bytes,
    parameter_bytes,
    peak_live_bytes,
    saved_activation_bytes,
)
from devicelab.methods.hollowed_net.hollow import add_lora, hollow_unet_, lora_parameters, lora_target_modules
from devicelab.methods.hollowed_net.layers import layered_forward, ldm_layout
from devicelab.methods.hollowed_net.precompute import PrecomputeStore, noisy_latents

VariantKind = Literal["hollowed", "lora", "lora-kept", "full-ft"]


@dataclass(frozen=True)
class Variant:
    """One fine-tuning configuration: what trains, at which rank, and which depth is hollowed."""

    kind: VariantKind
    rank: int = 4
    m: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "hollowed":
            return f"hollowed-m{self.m}"
        if self.kind == "lora-kept":
            return f"lora-kept-m{self.m}"
        if self.kind == "lora":
            return f"lora-r{self.rank}"
        return "full-ft"

    @classmethod
    def parse(cls, name: str, rank: int = 4) -> Variant:
        """``hollowed-m6``, ``lora-kept-m6``, ``lora-r16``, ``full-ft``."""
        if name == "full-ft":
            return cls("full-ft")
        if name.startswith("hollowed-m"):
            return cls("hollowed", rank, int(name.removeprefix("hollowed-m")))
        if name.startswith("lora-kept-m"):
            return cls("lora-kept", rank, int(name.removeprefix("lora-kept-m")))
        if name.startswith("lora-r"):
            return cls("lora", int(name.removeprefix("lora-r")))
        raise ValueError(f"unknown variant {name!r}; expected hollowed-mM, lora-kept-mM, lora-rR or full-ft")

    @property
    def hollow(self) -> int | None:
        return self.m if self.kind == "hollowed" else None

    @property
    def needs_injected(self) -> bool:
        return self.kind == "hollowed"


@dataclass(frozen=True)
class OptimConfig:
    """AdamW (0.9, 0.999), weight decay 1e-2, eps 1e-8, gradient clipping 1.0, constant lr (spec §8)."""

    lr: float = 1e-3
    full_ft_lr: float = 1e-4
    weight_decay: float = 1e-2
    eps: float = 1e-8
    clip: float = 1.0


def prepare_unet(unet: nn.Module, variant: Variant) -> tuple[nn.Module, list[str]]:
    """Make ``unet`` (full, or already hollowed) trainable for ``variant``; returns (unet, LoRA targets).

    For ``hollowed`` the depth-m modules are moved to ``meta`` here unless they already are (``load_kept``).
    """
    layout = ldm_layout(unet)
    if variant.kind == "full-ft":
        unet.requires_grad_(True)
        return unet, []
    if variant.kind == "hollowed":
        hollow_unet_(unet, variant.m, layout)
    m = variant.m if variant.kind in ("hollowed", "lora-kept") else None
    targets = lora_target_modules(unet, m, layout)
    add_lora(unet, targets, variant.rank)
    return unet, targets


def trainable_parameters(unet: nn.Module, variant: Variant) -> list[nn.Parameter]:
    if variant.kind == "full-ft":
        return [p for p in unet.parameters() if p.requires_grad]
    return lora_parameters(unet)


def make_optimizer(params: list[nn.Parameter], variant: Variant, cfg: OptimConfig) -> torch.optim.Optimizer:
    lr = cfg.full_ft_lr if variant.kind == "full-ft" else cfg.lr
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay, eps=cfg.eps)


def predict(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    step: int,
    gradient_checkpointing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(prediction, target) of one step: ε̂ from the hollowed or the full forward, and ε (or v)."""
    plan = store.plan
    x_t = noisy_latents(scheduler, store.latents, plan, step)  # (B, C, h, w)
    t = plan.timesteps[step]
    ehs = store.text_states.expand(x_t.shape[0], -1, -1)
    injected = None
    if variant.needs_injected:  # a_m may be stored in fp16 (am_dtype); compute in the model's dtype
        injected = store.injected(step).to(unet.conv_out.weight.dtype)
    pred = layered_forward(
        unet,
        x_t,
        t,
        ehs,
        hollow=variant.hollow,
        injected=injected,
        gradient_checkpointing=gradient_checkpointing,
    )
    noise = plan.noise[step].to(pred.dtype)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(store.latents[plan.image_index[step]], noise, t)
    else:
        target = noise
    return pred, target


def training_loss(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    step: int,
    gradient_checkpointing: bool = False,
) -> torch.Tensor:
    pred, target = predict(unet, variant, store, scheduler, step, gradient_checkpointing)
    return F.mse_loss(pred.float(), target.float())


@dataclass
class FinetuneResult:
    losses: list[float]
    account: TrainingAccount | None  # accounted bytes of step ``account_step`` (the 2nd by default)


def finetune(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    cfg: OptimConfig,
    *,
    gradient_checkpointing: bool = False,
    log: Callable[..., None] | None = None,
    log_every: int = 50,
    probe: Callable[[nn.Module, int], dict] | None = None,
    account_step: int | None = 1,
    before_step: Callable[[nn.Module, int], None] | None = None,
) -> FinetuneResult:
    """Train ``unet`` (prepared by :func:`prepare_unet`) for every step of ``store``.

    ``probe(unet, step)`` runs every ``log_every`` steps (e.g. the stale-feature mismatch) and is logged.
    Step ``account_step`` runs under the saved-tensor hook and its memory is accounted (spec §6).
    ``before_step(unet, step)`` runs before each step (e.g. refreshing a_m).
    """
    params = trainable_parameters(unet, variant)
    optimizer = make_optimizer(params, variant, cfg)
    unet.train()
    losses: list[float] = []
    account = None
    for step in range(store.plan.steps):
        if before_step is not None:
            before_step(unet, step)
        if step == account_step:
            saved, loss = saved_activation_bytes(
                unet, lambda s=step: training_loss(unet, variant, store, scheduler, s, gradient_checkpointing)
            )
        else:
            loss = training_loss(unet, variant, store, scheduler, step, gradient_checkpointing)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        optimizer.step()
        if step == account_step:
            account = TrainingAccount(
                weights=parameter_bytes(unet).total,
                gradients=gradient_bytes(unet),
                optimizer=optimizer_state_bytes(optimizer),
                saved_activations=saved,
                inputs=step_input_bytes(store, variant, step),
            )
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log is not None and (step % log_every == 0 or step == store.plan.steps - 1):
            record = {"variant": variant.name, "step": step, "loss": losses[-1]}
            if probe is not None:
                unet.eval()
                record.update(probe(unet, step))
                unet.train()
            log(**record)
    unet.eval()
    return FinetuneResult(losses, account)


def step_input_bytes(store: PrecomputeStore, variant: Variant, step: int) -> int:
    """I of spec §6: the step's latents, ε, text states and (hollowed) the a_m batch."""
    plan = store.plan
    tensors = [store.latents[plan.image_index[step]], plan.noise[step], store.text_states]
    if variant.needs_injected:
        tensors.append(store.injected(step))
    return sum(t.numel() * t.element_size() for t in tensors)


def _after_first_step(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    cfg: OptimConfig,
    checkpointing: bool,
) -> tuple[torch.optim.Optimizer, Callable[[], torch.Tensor], int]:
    """The optimizer after one training step (so its state exists), the loss of the 2nd step and its index:
    what both memory measurements look at (spec §6)."""
    optimizer = make_optimizer(trainable_parameters(unet, variant), variant, cfg)
    unet.train()
    training_loss(unet, variant, store, scheduler, 0, checkpointing).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    step = 1 if store.plan.steps > 1 else 0
    return optimizer, lambda: training_loss(unet, variant, store, scheduler, step, checkpointing), step


def account_step_memory(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    cfg: OptimConfig,
    gradient_checkpointing: bool = False,
) -> TrainingAccount:
    """Accounted bytes of the 2nd training step of ``variant`` (the 1st creates the optimizer state)."""
    optimizer, loss_fn, step = _after_first_step(unet, variant, store, scheduler, cfg, gradient_checkpointing)
    account = account_training_step(unet, optimizer, loss_fn, [])
    return replace(account, inputs=step_input_bytes(store, variant, step))


def tracked_step_bytes(
    unet: nn.Module,
    variant: Variant,
    store: PrecomputeStore,
    scheduler,
    cfg: OptimConfig,
    gradient_checkpointing: bool = False,
    meter: Callable[[Callable[[], Any]], tuple[int, int, Any]] = peak_live_bytes,
) -> int:
    """Peak bytes of one training step by the live-tensor tracker: the cross-check of the account (spec §6).
    ``meter=profiled_peak_bytes`` measures the same step by the CPU allocator's own records instead.

    What the step holds before it starts (all weights, the optimizer state, its inputs) plus the peak of the
    tensors created by its forward, backward and optimizer step (the 2nd step, as the account measures).
    Inputs the step copies (the latent batch) can count twice: a few kB, so the result is an upper bound.
    """
    optimizer, loss_fn, step = _after_first_step(unet, variant, store, scheduler, cfg, gradient_checkpointing)

    def second_step() -> None:
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    peak, _, _ = meter(second_step)
    held = parameter_bytes(unet).total + optimizer_state_bytes(optimizer)
    return held + step_input_bytes(store, variant, step) + peak


def copy_for_variant(base: nn.Module, variant: Variant) -> tuple[nn.Module, list[str]]:
    """A deep copy of ``base`` prepared for ``variant`` (the base stays untouched)."""
    return prepare_unet(copy.deepcopy(base), variant)
