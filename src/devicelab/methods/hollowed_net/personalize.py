"""End-to-end personalisation of a local diffusers Stable Diffusion folder: the three stages of Hollowed Net.

1. pre-compute (full original U-Net, no grad): fixed (k, ε, t) per sample and a_m, written to disk;
   then the full U-Net is freed;
2. fine-tune LoRA on the U-Net loaded with only its kept weights (hollowed modules never get storage);
3. transfer the adapter back into the full U-Net (diffusers LoRA format; optionally fused).

The baselines (``lora-rR``, ``lora-kept-mM``, ``full-ft``) run through the same function on the same samples.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from devicelab.core.config import ranged
from devicelab.core.memory import InferenceAccount, TrainingAccount, account_inference, parameter_bytes
from devicelab.methods.hollowed_net.finetune import OptimConfig, Variant, finetune, prepare_unet
from devicelab.methods.hollowed_net.hollow import load_kept
from devicelab.methods.hollowed_net.layers import layered_forward
from devicelab.methods.hollowed_net.pipeline import PipelineParts, encode_images, encode_prompts
from devicelab.methods.hollowed_net.precompute import PrecomputeStore, build_store, noisy_latents
from devicelab.methods.hollowed_net.transfer import adapter_state_dict, save_adapter, transfer_state_dict

AM_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass(frozen=True)
class PersonalizeConfig:
    """How a personalisation fine-tunes: steps, batch, where a_m lives, probes and the optimiser (spec §8)."""

    steps: int = ranged(200, low=1)
    batch: int = ranged(1, low=1)
    am_storage: Literal["disk", "memory"] = "disk"
    am_dtype: Literal["fp32", "fp16"] = "fp32"
    gradient_checkpointing: bool = False
    refresh_every: int = 0  # re-compute a_m with the current LoRA every K steps (needs the full weights)
    probe_every: int = 50  # stale-feature mismatch every K steps (0: off; needs a reference full U-Net)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class PersonalizeResult:
    variant: str
    unet: nn.Module  # the trained U-Net (hollowed or full, adapter active)
    targets: list[str]
    losses: list[float]
    train_account: TrainingAccount | None
    am_disk_bytes: int
    wall_s: float
    mismatch: list[dict[str, float]] = field(default_factory=list)


def subject_latents(parts: PipelineParts, images: torch.Tensor) -> torch.Tensor:
    """z0 of the instance images (N, 3, H, W) in [-1, 1]: (N, C, h, w)."""
    return encode_images(parts.vae, images)


def _free(*objs: Any) -> None:
    del objs
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def personalize(
    parts: PipelineParts,
    images: torch.Tensor,
    prompt: str,
    variant: Variant,
    cfg: PersonalizeConfig,
    work_dir: Path,
    log: Callable[..., None] | None = None,
    seed: int = 0,
) -> PersonalizeResult:
    """Fine-tune ``variant`` on the instance ``images`` (N, 3, H, W in [-1, 1]) with ``prompt``; ``seed``
    fixes the (k, ε, t) of every step and the LoRA init."""
    if cfg.am_dtype not in AM_DTYPES:
        raise ValueError(f"am_dtype={cfg.am_dtype!r}: expected one of {', '.join(AM_DTYPES)}")
    if cfg.am_storage not in ("disk", "memory"):
        raise ValueError(f"am_storage={cfg.am_storage!r}: expected 'disk' or 'memory'")
    t0 = time.perf_counter()
    latents = subject_latents(parts, images)
    text_states = encode_prompts(parts.tokenizer, parts.text_encoder, [prompt])  # (1, S, D)
    am_disk_bytes = 0
    if variant.kind == "hollowed":
        full = load_kept(parts.unet_dir, None)
        store = build_store(
            full,
            variant.m,
            latents,
            text_states,
            parts.scheduler,
            cfg.steps,
            cfg.batch,
            seed,
            AM_DTYPES[cfg.am_dtype],
        )
        if cfg.am_storage == "disk":
            path = store.save(Path(work_dir) / f"precompute-{variant.name}-seed{seed}.safetensors")
            am_disk_bytes = path.stat().st_size
            store = PrecomputeStore.open(path)
        if cfg.refresh_every == 0:
            _free(full)
            full = None
        unet = load_kept(parts.unet_dir, variant.m)  # hollowed modules stay on meta: never read from disk
    else:
        full = None
        unet = load_kept(parts.unet_dir, None)
        store = build_store(None, None, latents, text_states, parts.scheduler, cfg.steps, cfg.batch, seed)
    torch.manual_seed(seed)  # the gaussian LoRA init
    unet, targets = prepare_unet(unet, variant)
    mismatch: list[dict[str, float]] = []
    probe = None
    if variant.kind == "hollowed" and cfg.probe_every > 0:
        probe = MismatchProbe(parts, store, variant, targets, seed)

        def probe_fn(u: nn.Module, step: int) -> dict[str, float]:
            rec = {"step": step, "mismatch": probe(u)}
            mismatch.append(rec)
            return {"mismatch": rec["mismatch"]}

    refresh = None
    if variant.kind == "hollowed" and cfg.refresh_every > 0:
        refresh = InjectedRefresher(full, store, variant, targets, parts.scheduler, cfg.refresh_every)
    result = finetune(
        unet,
        variant,
        store,
        parts.scheduler,
        cfg.optim,
        gradient_checkpointing=cfg.gradient_checkpointing,
        log=log,
        log_every=cfg.probe_every or 50,
        probe=probe_fn if probe else None,
        before_step=refresh,
    )
    if full is not None:
        _free(full)
    return PersonalizeResult(
        variant.name,
        unet,
        targets,
        result.losses,
        result.account,
        am_disk_bytes,
        time.perf_counter() - t0,
        mismatch,
    )


class InjectedRefresher:
    """``refresh_every=K`` (spec §5.2): every K steps, re-compute a_m for the next K samples with the current
    LoRA transferred into the full U-Net. The full weights stay resident: such runs are not memory runs."""

    def __init__(
        self,
        full: nn.Module,
        store: PrecomputeStore,
        variant: Variant,
        targets: list[str],
        scheduler,
        every: int,
    ):
        self.full, self.store, self.variant, self.targets = full, store, variant, targets
        self.scheduler, self.every = scheduler, every
        self.refreshes = 0
        if store._injected is None:  # disk store: bring a_m into memory so it can be replaced
            store._injected = torch.stack([store.injected(s) for s in range(store.plan.steps)])
        self._attached = False

    @torch.no_grad()
    def __call__(self, unet: nn.Module, step: int) -> None:
        if step == 0 or step % self.every:
            return
        state = adapter_state_dict(unet)
        if not self._attached:
            transfer_state_dict(self.full, state, self.targets, self.variant.rank, self.variant.rank)
            self._attached = True
        else:
            from peft.utils import set_peft_model_state_dict

            set_peft_model_state_dict(self.full, state)
        self.full.eval()
        plan = self.store.plan
        for s in range(step, min(step + self.every, plan.steps)):
            x_t = noisy_latents(self.scheduler, self.store.latents, plan, s)
            ehs = self.store.text_states.expand(x_t.shape[0], -1, -1)
            a_m = layered_forward(self.full, x_t, plan.timesteps[s], ehs, stop_before_out=self.variant.m)
            self.store._injected[s] = a_m.to(self.store._injected.dtype)
        self.refreshes += 1


class MismatchProbe:
    """‖ε̂_full − ε̂_hollow‖ / ‖ε̂_full‖ on a fixed probe batch (spec §5.2: the stale-feature mismatch).

    ε̂_full runs the full U-Net with the current LoRA transferred in; ε̂_hollow injects the a_m that the
    un-adapted U-Net computed. It needs the full weights, so runs with the probe are not memory runs.
    """

    def __init__(
        self,
        parts: PipelineParts,
        store: PrecomputeStore,
        variant: Variant,
        targets: list[str],
        seed: int,
        probes: int = 4,
    ):
        self.variant = variant
        self.steps = list(range(min(probes, store.plan.steps)))
        self.store = store
        self.scheduler = parts.scheduler
        self.full = load_kept(parts.unet_dir, None)
        self.rank = variant.rank
        self.targets = targets
        self._attached = False

    @torch.no_grad()
    def __call__(self, hollowed_unet: nn.Module) -> float:
        state = adapter_state_dict(hollowed_unet)
        if not self._attached:
            transfer_state_dict(self.full, state, self.targets, self.rank, self.rank)
            self._attached = True
        else:
            from peft.utils import set_peft_model_state_dict

            set_peft_model_state_dict(self.full, state)
        num = den = 0.0
        for s in self.steps:
            x_t = noisy_latents(self.scheduler, self.store.latents, self.store.plan, s)
            t = self.store.plan.timesteps[s]
            ehs = self.store.text_states.expand(x_t.shape[0], -1, -1)
            full = layered_forward(self.full, x_t, t, ehs)
            hollow = layered_forward(
                hollowed_unet,
                x_t,
                t,
                ehs,
                hollow=self.variant.m,
                injected=self.store.injected(s).to(x_t.dtype),
            )
            num += (full - hollow).pow(2).sum().item()
            den += full.pow(2).sum().item()
        return (num / den) ** 0.5 if den else 0.0


def full_unet_with_adapter(parts: PipelineParts, result: PersonalizeResult, fuse: bool) -> nn.Module:
    """Stage 3: the full U-Net with the trained adapter transferred in (or the full-ft U-Net itself)."""
    if result.variant == "full-ft":
        return result.unet
    state = adapter_state_dict(result.unet)
    full = load_kept(parts.unet_dir, None)
    rank = _rank_of(state)
    missing, unexpected = transfer_state_dict(full, state, result.targets, rank, rank)
    if missing or unexpected:
        raise RuntimeError(
            f"adapter transfer is not one to one: missing {missing[:1]}, unexpected {unexpected[:1]}"
        )
    if fuse:
        from devicelab.methods.hollowed_net.transfer import fuse_adapter_

        fuse_adapter_(full)
    return full.eval()


def _rank_of(state: dict[str, torch.Tensor]) -> int:
    for k, v in state.items():
        if k.endswith("lora_A.weight"):
            return int(v.shape[0])
    raise ValueError("the adapter state dict has no lora_A weights")


def inference_account(
    unet: nn.Module,
    latent_hw: tuple[int, int],
    text_states: torch.Tensor,
    batch: int = 1,
    meter: Callable[[Callable[[], Any]], tuple[int, int, Any]] | None = None,
) -> InferenceAccount:
    """Accounted inference bytes of one no-grad forward at ``latent_hw`` (weights + peak live activations;
    ``meter=profiled_peak_bytes``: the allocator's peak of that forward instead of the live-tensor one)."""
    c = unet.config
    x = torch.randn(batch, c.in_channels, *latent_hw, generator=torch.Generator().manual_seed(0))
    t = torch.full((batch,), 500, dtype=torch.long)
    ehs = text_states.expand(batch, -1, -1)
    if meter is None:
        return account_inference(unet, lambda: unet(x, t, ehs).sample)
    with torch.no_grad():
        peak, _, _ = meter(lambda: unet(x, t, ehs).sample)
    return InferenceAccount(weights=parameter_bytes(unet).total, peak_activations=peak)


def save_result_adapter(result: PersonalizeResult, out_dir: Path, extra: dict[str, Any]) -> Path:
    """Write the trained adapter (diffusers LoRA format + ``hollowed_net.json``); α = r (spec §8)."""
    variant = Variant.parse(result.variant)
    rank = _rank_of(adapter_state_dict(result.unet))
    meta = {
        "rank": rank,
        "alpha": rank,
        "targets": result.targets,
        "m": variant.m if variant.kind == "hollowed" else None,
        "variant": result.variant,
        **extra,
    }
    return save_adapter(result.unet, out_dir, meta)
