"""Stage 1: fix (image, ε, t) per training sample and pre-compute the injected activation a_m.

Spec §5.1 [summary: the original U-Net runs on the training image and prompt, intermediate activations go to
storage; reconstruction: the target depends on (ε, t), so both are fixed per sample before training]. For
step s and batch slot b a generator seeded by (seed, s, b) draws the image k, the noise ε and the timestep t;
the full, un-adapted U-Net then computes a_m = the hidden state entering OUT_m without gradient. Samples are
written to one safetensors file read lazily (memory-mapped) during fine-tuning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from devicelab.core.seeding import torch_generator
from devicelab.methods.hollowed_net.layers import layered_forward


@dataclass
class TrainingPlan:
    """The fixed per-sample draws of a fine-tuning run: (S, B) image indices, timesteps and noise."""

    image_index: torch.Tensor  # (S, B) long
    timesteps: torch.Tensor  # (S, B) long
    noise: torch.Tensor  # (S, B, C, h, w)

    @property
    def steps(self) -> int:
        return self.image_index.shape[0]

    @property
    def batch(self) -> int:
        return self.image_index.shape[1]


def draw_training_plan(
    n_images: int,
    steps: int,
    batch: int,
    latent_shape: tuple[int, int, int],
    seed: int,
    num_train_timesteps: int = 1000,
) -> TrainingPlan:
    """k ~ U{images}, ε ~ N(0, I), t ~ U{0..T-1} for every (step, slot), each from generator (seed, s, b)."""
    if n_images < 1:
        raise ValueError("the training set has no images")
    k = torch.empty(steps, batch, dtype=torch.long)
    t = torch.empty(steps, batch, dtype=torch.long)
    eps = torch.empty(steps, batch, *latent_shape)
    for s in range(steps):
        for b in range(batch):
            g = torch_generator(seed, s, b)
            k[s, b] = torch.randint(n_images, (1,), generator=g)
            eps[s, b] = torch.randn(latent_shape, generator=g)
            t[s, b] = torch.randint(num_train_timesteps, (1,), generator=g)
    return TrainingPlan(k, t, eps)


def noisy_latents(scheduler, latents: torch.Tensor, plan: TrainingPlan, step: int) -> torch.Tensor:
    """x_t = add_noise(z0_k, ε, t) for one step's batch: (B, C, h, w)."""
    z0 = latents[plan.image_index[step]]
    return scheduler.add_noise(z0, plan.noise[step].to(z0.dtype), plan.timesteps[step])


@torch.no_grad()
def precompute_injected_activations(
    unet: nn.Module, m: int, latents: torch.Tensor, text_states: torch.Tensor, plan: TrainingPlan, scheduler
) -> torch.Tensor:
    """a_m for every (step, slot): (S, B, C_m, h_m, w_m), from the original weights, no LoRA, no grad."""
    unet.eval()
    out = []
    for s in range(plan.steps):
        x_t = noisy_latents(scheduler, latents, plan, s)
        ehs = text_states.expand(x_t.shape[0], -1, -1)
        out.append(layered_forward(unet, x_t, plan.timesteps[s], ehs, stop_before_out=m))
    return torch.stack(out)


class PrecomputeStore:
    """The pre-computed samples of one run: plan, latents z0, text states and (optionally) a_m.

    ``save(path)`` writes one safetensors file atomically; ``PrecomputeStore.open(path)`` reads it back with
    ``safe_open`` so a_m is fetched one step at a time (``injected(step)``), never all at once.
    """

    def __init__(
        self,
        plan: TrainingPlan,
        latents: torch.Tensor,
        text_states: torch.Tensor,
        injected: torch.Tensor | None = None,
        m: int | None = None,
    ):
        self.plan = plan
        self.latents = latents  # (N, C, h, w)
        self.text_states = text_states  # (1, S_text, D)
        self._injected = injected  # (S, B, ...) in memory, or None when reading from disk / not hollowed
        self._file = None
        self.m = m

    def injected(self, step: int) -> torch.Tensor:
        if self._injected is not None:
            return self._injected[step]
        if self._file is None:
            raise ValueError("this store holds no injected activations (not a hollowed run)")
        return self._file.get_slice("injected")[step : step + 1][0]

    def injected_bytes(self, step: int = 0) -> int:
        a = self.injected(step)
        return a.numel() * a.element_size()

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "image_index": self.plan.image_index,
            "timesteps": self.plan.timesteps,
            "noise": self.plan.noise,
            "latents": self.latents,
            "text_states": self.text_states,
        }
        if self._injected is not None:
            tensors["injected"] = self._injected
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"m": "" if self.m is None else str(self.m)})
        os.replace(tmp, path)
        return path

    @classmethod
    def open(cls, path: str | Path) -> PrecomputeStore:
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"pre-computed activations missing: {path}")
        f = safe_open(str(path), framework="pt")
        keys = set(f.keys())
        for key in ("image_index", "timesteps", "noise", "latents", "text_states"):
            if key not in keys:
                raise ValueError(f"{path}: key {key!r} is missing")
        plan = TrainingPlan(f.get_tensor("image_index"), f.get_tensor("timesteps"), f.get_tensor("noise"))
        meta: Mapping[str, str] = f.metadata() or {}
        store = cls(
            plan,
            f.get_tensor("latents"),
            f.get_tensor("text_states"),
            None,
            int(meta["m"]) if meta.get("m") else None,
        )
        if "injected" in keys:
            store._file = f
        return store


def build_store(
    unet: nn.Module | None,
    m: int | None,
    latents: torch.Tensor,
    text_states: torch.Tensor,
    scheduler,
    steps: int,
    batch: int,
    seed: int,
    am_dtype: torch.dtype = torch.float32,
) -> PrecomputeStore:
    """Draw the plan and, for a hollowed run (``m`` not None), pre-compute a_m with the full ``unet``."""
    plan = draw_training_plan(
        latents.shape[0], steps, batch, tuple(latents.shape[1:]), seed, scheduler.config.num_train_timesteps
    )
    injected = None
    if m is not None:
        if unet is None:
            raise ValueError("pre-computing a_m needs the full U-Net")
        injected = precompute_injected_activations(unet, m, latents, text_states, plan, scheduler).to(
            am_dtype
        )
    return PrecomputeStore(plan, latents, text_states, injected, m)
