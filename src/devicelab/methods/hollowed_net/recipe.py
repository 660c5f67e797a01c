"""The three measurements of a hollowed-net run: memory (spec §6), transfer (§5.3) and fidelity (§10.1).

- :func:`memory_section`: accounted bytes of one training step per variant vs one inference forward;
- :func:`transfer_section`: the trained hollowed adapters back into the full U-Net, fused vs unfused (H5);
- :func:`quality_run`: one (variant, subject, seed): fine-tune (:func:`finetune`; none for ``base``), transfer
  back, sample and score;
  :func:`quality_stage` runs it as the stage ``VARIANT-SUBJECT-seedS`` (core.stages).
"""

from __future__ import annotations

import gc
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from devicelab.core.stages import Stage
from devicelab.methods.hollowed_net.data import Subject, subject_images
from devicelab.methods.hollowed_net.evaluators import FidelityScorer
from devicelab.methods.hollowed_net.finetune import (
    Variant,
    account_step_memory,
    copy_for_variant,
    tracked_step_bytes,
)

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.hollowed_net.config import EvalSettings, HollowedNetConfig
    from devicelab.methods.hollowed_net.pipeline import PipelineParts


def memory_section(config: HollowedNetConfig, ctx: RunContext, model_dir: Path) -> dict[str, Any]:
    """Accounted training bytes per variant vs accounted inference bytes, at each latent size (spec §6)."""
    from devicelab.core.memory import profiled_peak_bytes
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.personalize import inference_account
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
    from devicelab.methods.hollowed_net.precompute import build_store

    base = load_kept(model_dir / "unet", None)
    scheduler = ddpm_scheduler()
    text_dim = base.config.cross_attention_dim
    variants = [f"lora-r{r}" for r in config.memory_ranks] + ["full-ft", f"lora-kept-m{config.m}"]
    variants += [f"hollowed-m{m}" for m in config.memory_depths]
    rows, out = [], {}
    for hw in config.memory_latents:
        g = torch.Generator().manual_seed(config.seed)
        latents = torch.randn(2, base.config.in_channels, hw, hw, generator=g)
        text = torch.randn(1, 16, text_dim, generator=g)
        infer = inference_account(base, (hw, hw), text)
        infer_profiled = inference_account(base, (hw, hw), text, meter=profiled_peak_bytes).total
        out[f"infer_{hw}"] = {**infer.to_dict(), "profiler": infer_profiled}
        for name in variants:
            v = Variant.parse(name, config.rank)
            store = build_store(
                base, v.hollow, latents, text, scheduler, 2, config.finetune.batch, config.seed
            )
            unet, _ = copy_for_variant(base, v)
            settings = (config.finetune.optim, config.finetune.gradient_checkpointing)
            account = account_step_memory(unet, v, store, scheduler, *settings)
            tracked = tracked_step_bytes(unet, v, store, scheduler, *settings)
            profiled = tracked_step_bytes(unet, v, store, scheduler, *settings, meter=profiled_peak_bytes)
            del unet
            gc.collect()
            out[f"train_{hw}_{name}"] = {**account.to_dict(), "tracker": tracked, "profiler": profiled}
            rows.append(
                {
                    "latent": f"{hw}²",
                    "variant": name,
                    "train MB": account.total / 1e6,
                    "W": account.weights / 1e6,
                    "G": account.gradients / 1e6,
                    "O": account.optimizer / 1e6,
                    "A_saved": account.saved_activations / 1e6,
                    "I": account.inputs / 1e6,
                    "infer MB": infer.total / 1e6,
                    "train / infer": account.total / infer.total,
                    "tracker / infer": tracked / infer.total,
                    "profiler / infer": profiled / infer_profiled,
                }
            )
    out["rows"] = rows
    return out


def transfer_section(
    config: HollowedNetConfig, model_dir: Path, adapters: list[Path], subject: Subject
) -> dict[str, Any]:
    """H5 on the real path: each adapter trained on the hollowed U-Net (one per seed, spec §5.3) is loaded
    into the full U-Net with diffusers' loader and run unfused, then fused, on the subject's own noised
    latents and prompt. Per adapter: max |fused − unfused|, max |unfused − base| (the transferred adapter is
    live: a transfer that drops it leaves the base output), parameter count and accounted inference bytes
    after fuse against the base; the worst adapter gives the reported value."""
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.personalize import inference_account
    from devicelab.methods.hollowed_net.pipeline import encode_images, encode_prompts, load_parts
    from devicelab.methods.hollowed_net.transfer import fuse_adapter_, load_adapter_into

    parts = load_parts(model_dir)
    latents = encode_images(parts.vae, subject_images(subject, parts.vae.config.sample_size))
    text = encode_prompts(parts.tokenizer, parts.text_encoder, [subject.instance_prompt] * latents.shape[0])
    g = torch.Generator().manual_seed(config.seed)
    t = torch.full((latents.shape[0],), 500)
    noisy = parts.scheduler.add_noise(latents, torch.randn(latents.shape, generator=g), t)
    base = load_kept(parts.unet_dir, None).eval()
    params_base = sum(p.numel() for p in base.parameters())
    hw = tuple(latents.shape[-2:])
    infer_base = inference_account(base, hw, text[:1]).total
    out: dict[str, list[float]] = {
        k: []
        for k in (
            "h5_fuse_max_abs_diff",
            "h5_adapter_effect",
            "h5_param_count_diff",
            "mem_infer_bytes_base_native",
            "mem_infer_bytes_fused",
        )
    }
    with torch.no_grad():
        reference = base(noisy, t, text).sample
        for adapter in adapters:
            full = load_kept(parts.unet_dir, None).eval()
            load_adapter_into(full, adapter)
            unfused = full(noisy, t, text).sample
            fuse_adapter_(full)
            fused = full(noisy, t, text).sample
            out["h5_fuse_max_abs_diff"].append((fused - unfused).abs().max().item())
            out["h5_adapter_effect"].append((unfused - reference).abs().max().item())
            out["h5_param_count_diff"].append(
                float(abs(sum(p.numel() for p in full.parameters()) - params_base))
            )
            out["mem_infer_bytes_base_native"].append(float(infer_base))
            out["mem_infer_bytes_fused"].append(float(inference_account(full, hw, text[:1]).total))
            del full
    # the worst adapter decides (exact measurements): the largest fuse error, the weakest live effect
    worst = {k: max(v) for k, v in out.items()} | {"h5_adapter_effect": min(out["h5_adapter_effect"])}
    return {**worst, "per_adapter": {"adapters": [a.name for a in adapters], **out}}


BASE_VARIANT = "base"  # the base model as it is, no fine-tuning: the reference of the floor F-lora


def quality_run(
    config: HollowedNetConfig,
    ctx: RunContext,
    model_dir: Path,
    subject: Subject,
    variant: str,
    seed: int,
    scorer: FidelityScorer | None,
    drift_prompts: list[str],
) -> dict[str, Any]:
    """Fine-tune one variant on one subject with one seed (``base``: none), sample and score."""
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.pipeline import load_parts
    from devicelab.methods.hollowed_net.sampling import generate

    parts = load_parts(model_dir)
    size = parts.vae.config.sample_size
    images = subject_images(subject, size)
    t0 = time.perf_counter()
    if variant == BASE_VARIANT:
        unet, trained = load_kept(parts.unet_dir, None), {}
    else:
        unet, trained = finetune(config, ctx, parts, images, subject, variant, seed)
    train_s = time.perf_counter() - t0
    ev = config.eval
    prompts = [p["prompt"] for p in subject.eval_prompts[: ev.prompts_per_subject]] or [
        subject.instance_prompt
    ]
    requests = [p.get("requests", {}) for p in subject.eval_prompts[: ev.prompts_per_subject]] or [{}]
    generated = generate(
        unet,
        parts.vae,
        parts.tokenizer,
        parts.text_encoder,
        parts.scheduler,
        prompts,
        ev.images_per_prompt,
        ev.inference_steps,
        ev.guidance,
        seed=seed,
    )
    record: dict[str, Any] = {"train_s": train_s, **trained}
    if scorer is not None:
        real = subject_images(subject, generated.shape[-1])
        record.update(scorer.subject_scores(generated, real))
        all_prompts = [p for p in prompts for _ in range(ev.images_per_prompt)]
        record["clip_t"] = scorer.text_score(generated, all_prompts)
        record["attr_acc"] = scorer.attribute_accuracy(
            generated, [r for r in requests for _ in range(ev.images_per_prompt)]
        )
    record.update(denoise_and_drift(parts, unet, images, subject.instance_prompt, drift_prompts, ev, seed))
    record["eval_s"] = time.perf_counter() - t0 - train_s
    del unet
    gc.collect()
    return record


def finetune(
    config: HollowedNetConfig,
    ctx: RunContext,
    parts: PipelineParts,
    images: torch.Tensor,
    subject: Subject,
    variant: str,
    seed: int,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Personalise ``variant`` on the subject's ``images`` and transfer it back into the full U-Net (fused);
    returns that U-Net and the training record (final loss, a_m bytes on disk, stale-feature mismatch)."""
    from devicelab.methods.hollowed_net.personalize import (
        full_unet_with_adapter,
        personalize,
        save_result_adapter,
    )

    work = ctx.run_dir / "work" / f"{variant}-{subject.subject_id}-seed{seed}"  # this stage's a_m store
    work.mkdir(parents=True, exist_ok=True)
    v = Variant.parse(variant, config.rank)
    result = personalize(
        parts,
        images,
        subject.instance_prompt,
        v,
        config.finetune,
        work,
        log=lambda **r: ctx.log(subject=subject.subject_id, seed=seed, **r),
        seed=seed,
    )
    if v.kind != "full-ft":  # the adapter in the diffusers LoRA format, as `devicelab personalize` writes it
        save_result_adapter(
            result,
            ctx.run_dir / "adapters" / f"{variant}-{subject.subject_id}-seed{seed}",
            {"prompt": subject.instance_prompt, "steps": config.finetune.steps, "seed": seed},
        )
    unet = full_unet_with_adapter(parts, result, fuse=True)
    record = {
        "final_loss": statistics.fmean(result.losses[-20:]),
        "am_disk_bytes": result.am_disk_bytes,
        "mismatch": result.mismatch[-1]["mismatch"] if result.mismatch else None,
    }
    del result.unet
    gc.collect()
    shutil.rmtree(work, ignore_errors=True)
    return unet, record


@dataclass
class FidelityTask:
    """What every fidelity stage reads: the base model, the subjects by id, the scorer, the drift prompts."""

    model_dir: Path
    subjects: dict[str, Subject]
    scorer: FidelityScorer | None
    drift_prompts: list[str]


def quality_stage(task: FidelityTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Stage ``VARIANT-SUBJECT-seedS``: :func:`quality_run` of one variant on one subject with one seed."""
    subject = task.subjects[stage.condition]
    return quality_run(
        ctx.config, ctx, task.model_dir, subject, stage.variant, stage.seed, task.scorer, task.drift_prompts
    )


@torch.no_grad()
def denoise_and_drift(
    parts, unet, images, prompt: str, drift_prompts: list[str], ev: EvalSettings, seed: int
) -> dict[str, float]:
    """Denoising MSE on the subject images at fixed (ε, t); ε-MSE base vs personalised on other prompts."""
    from devicelab.core.seeding import torch_generator
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.pipeline import encode_images, encode_prompts

    g = torch_generator(10_000 + seed, 0)
    z0 = encode_images(parts.vae, images)
    n = ev.denoise_samples
    k = torch.randint(z0.shape[0], (n,), generator=g)
    eps = torch.randn((n, *z0.shape[1:]), generator=g)
    t = torch.randint(parts.scheduler.config.num_train_timesteps, (n,), generator=g)
    x_t = parts.scheduler.add_noise(z0[k], eps, t)
    c = encode_prompts(parts.tokenizer, parts.text_encoder, [prompt]).expand(n, -1, -1)
    denoise = torch.mean((unet(x_t, t, c).sample - eps) ** 2).item()
    out = {"denoise_mse": denoise}
    if drift_prompts:
        base = load_kept(parts.unet_dir, None)
        cd = encode_prompts(parts.tokenizer, parts.text_encoder, drift_prompts)
        x = torch.randn((len(drift_prompts), *z0.shape[1:]), generator=g)
        td = torch.randint(parts.scheduler.config.num_train_timesteps, (len(drift_prompts),), generator=g)
        out["prior_drift"] = torch.mean((unet(x, td, cd).sample - base(x, td, cd).sample) ** 2).item()
    return out
