"""Pre-train the tiny text-to-image model on glyph-world, once, into a diffusers pipeline folder.

Spec §10.1 [reconstruction]: first the VAE (L1 + 1e-6·KL), then ``scaling_factor`` = 1/std of the world's
latents, then the text encoder and U-Net jointly with 10% caption dropout (for classifier-free guidance). The
result is a ``StableDiffusionPipeline.save_pretrained`` folder (safetensors only) under
``$DEVICELAB_DATA/tiny-sd/<profile>/`` with ``manifest.json`` written last; the work folder keeps
checkpoints so an interrupted build resumes. Gate: the attribute classifiers must read the requested shape
and colour in at least ``gate_min_accuracy`` of base-prompt samples, or the build fails loudly.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from devicelab.core.checkpoint import TrainingCheckpoint
from devicelab.core.experiment import QualityGateError
from devicelab.core.paths import portable_path
from devicelab.core.progress import progress
from devicelab.core.seeding import torch_generator
from devicelab.methods.hollowed_net.data import load_images, read_captioned, to_model_range
from devicelab.methods.hollowed_net.pipeline import TinySDConfig, build_tiny_pipeline


class GateFailedError(QualityGateError):
    """tiny-sd missed its quality gate, or its evaluators cannot read an attribute above chance."""


@dataclass(frozen=True)
class PretrainConfig:
    """Budget of the one-time tiny-sd build [reconstruction: sized to minutes on 2 CPU cores]."""

    # 200 steps left the VAE at L1 0.41 (images in [-1, 1]); a probe: 0.43 / 0.30 / 0.20 at 100 / 300 / 600.
    # At 2000 constant-lr steps (L1 0.085) the attribute classifier read the shape of only 52 % of the VAE's
    # own reconstructions of validation images (92 % of the originals): the VAE capped the gate.
    vae_steps: int = 6000
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_schedule: Literal["constant", "cosine"] = "cosine"  # [reconstruction] the spec gives no VAE schedule
    # 800 steps: loss 0.095, gate shape 0.12 (chance) / colour 0.52; 3000: 0.061, 0.27 / 0.81 (fails);
    # 6000: 0.048, 0.67 / 1.00 (passes; the VAE's reconstructions read 0.70 / 0.98)
    unet_steps: int = 6000
    unet_batch: int = 32
    unet_lr: float = 1e-3
    caption_dropout: float = 0.1
    max_images: int = 10000
    checkpoint_every: int = 100
    gate_samples: int = 64
    gate_inference_steps: int = 25
    gate_guidance: float = 5.0
    gate_min_accuracy: float = 0.6
    gate_action: Literal["fail", "warn"] = "fail"  # spec; "warn": keep the model, record the failed gate
    seed: int = 0


def read_vocab_words(corpus_dir: Path, captions: list[str]) -> list[str]:
    """Words of glyph-world's ``vocab.json`` (a word list or word -> id map) plus every caption word."""
    words = {w for c in captions for w in c.lower().split()}
    path = corpus_dir / "vocab.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("words"), list | dict):
            data = data["words"]
        if isinstance(data, dict):
            words |= {str(k).lower() for k in data}
        elif isinstance(data, list):
            words |= {str(w).lower() for w in data}
        else:
            raise ValueError(f"{path}: expected a word list or a word -> id mapping")
    return sorted(w for w in words if w.isalpha() and w.isascii())


def _loop(
    steps: int,
    ckpt: TrainingCheckpoint,
    model,
    optimizer,
    step_fn: Callable[[int], float],
    every: int,
    desc: str,
) -> list[float]:
    loop = ckpt.restore(model, optimizer)
    start, losses = (int(loop["step"]) + 1, list(loop["losses"])) if loop else (0, [])
    for s in progress(range(start, steps), desc=desc, total=steps - start):
        losses.append(step_fn(s))
        if (s + 1) % every == 0 or s == steps - 1:
            ckpt.save(model, optimizer, loop={"step": s, "losses": losses})
    return losses


def _cosine(step: int, steps: int) -> float:
    """Cosine decay from 1 to 0 over ``steps``."""
    return 0.5 * (1.0 + math.cos(math.pi * step / steps))


def _keep_stage_if_same_key(ckpt: TrainingCheckpoint, key_file: Path, key: str, log: Callable[[str], None]):
    """Delete a stage checkpoint written under another key; record ``key`` for the one about to be written."""
    if ckpt.exists() and (not key_file.is_file() or key_file.read_text() != key):
        log(f"discarding the {key_file.stem} checkpoint of an interrupted build with another config")
        for f in (ckpt.file, ckpt.previous_file):
            f.unlink(missing_ok=True)
    key_file.write_text(key)


def pretrain_tiny_sd(
    corpus_dir: str | Path,
    out_dir: str | Path,
    cfg: PretrainConfig | None = None,
    evaluators_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
    config_hash: str | None = None,
    vae_key: str | None = None,
) -> dict[str, Any]:
    """Build the tiny-sd pipeline folder ``out_dir`` from glyph-world ``corpus_dir`` (resumable, atomic).

    Each stage's checkpoint in the work folder is resumed only by a build with the same key: the U-Net's by
    ``config_hash`` (the whole config), the VAE's by ``vae_key`` (what the VAE depends on; default
    ``config_hash``), so a build that changes only the U-Net schedule keeps a finished VAE."""
    cfg = cfg or PretrainConfig()
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    work = out_dir.with_name(f".{out_dir.name}.work")
    work.mkdir(parents=True, exist_ok=True)
    for stage, key in (("vae", vae_key or config_hash), ("unet", config_hash)):
        _keep_stage_if_same_key(TrainingCheckpoint(work / stage), work / f"{stage}.key", str(key), log)
    t0 = time.perf_counter()
    rows = read_captioned(corpus_dir / "base" / "train")[: cfg.max_images]
    captions = [r.text for r in rows]
    images = to_model_range(load_images([r.path for r in rows], TinySDConfig().image_size))  # (N, 3, 32, 32)
    pipe = build_tiny_pipeline(read_vocab_words(corpus_dir, captions), work / "tokenizer", seed=cfg.seed)
    vae, text_encoder, unet, tokenizer, scheduler = (
        pipe.vae,
        pipe.text_encoder,
        pipe.unet,
        pipe.tokenizer,
        pipe.scheduler,
    )
    n = images.shape[0]
    log(
        f"tiny-sd: {n} images, vocabulary {len(tokenizer)} tokens, U-Net "
        f"{sum(p.numel() for p in unet.parameters()) / 1e6:.2f} M parameters"
    )

    # 1. VAE ------------------------------------------------------------------------------------------------
    vae.train()
    vae_opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)

    def vae_step(s: int) -> float:
        g = torch_generator(cfg.seed, 1, s)
        x = images[torch.randint(n, (cfg.vae_batch,), generator=g)]
        if cfg.vae_schedule == "cosine":
            for group in vae_opt.param_groups:
                group["lr"] = cfg.vae_lr * max(_cosine(s, cfg.vae_steps), 0.02)
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        loss = F.l1_loss(vae.decode(z).sample, x) + 1e-6 * post.kl().mean()
        vae_opt.zero_grad(set_to_none=True)
        loss.backward()
        vae_opt.step()
        return loss.item()

    vae_losses = _loop(
        cfg.vae_steps,
        TrainingCheckpoint(work / "vae"),
        vae,
        vae_opt,
        vae_step,
        cfg.checkpoint_every,
        "tiny-sd vae",
    )
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([vae.encode(images[i : i + 256]).latent_dist.mean for i in range(0, n, 256)])
    scaling = 1.0 / latents.std().item()
    vae.register_to_config(scaling_factor=scaling)
    latents = latents * scaling  # (N, 4, 8, 8)

    # 2. text encoder + U-Net -------------------------------------------------------------------------------
    ids_all = tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    empty_ids = tokenizer(
        [""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    joint = torch.nn.ModuleDict({"unet": unet, "text_encoder": text_encoder}).train()
    opt = torch.optim.AdamW(joint.parameters(), lr=cfg.unet_lr, weight_decay=1e-2)
    T = scheduler.config.num_train_timesteps

    def unet_step(s: int) -> float:
        g = torch_generator(cfg.seed, 2, s)
        idx = torch.randint(n, (cfg.unet_batch,), generator=g)
        ids = ids_all[idx].clone()
        drop = torch.rand(cfg.unet_batch, generator=g) < cfg.caption_dropout
        ids[drop] = empty_ids
        z0 = latents[idx]
        eps = torch.randn(z0.shape, generator=g)
        t = torch.randint(T, (cfg.unet_batch,), generator=g)
        lr_scale = min(1.0, (s + 1) / 50) * _cosine(s, cfg.unet_steps)
        for group in opt.param_groups:
            group["lr"] = cfg.unet_lr * max(lr_scale, 0.05)
        pred = unet(scheduler.add_noise(z0, eps, t), t, text_encoder(ids)[0]).sample
        loss = F.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(joint.parameters(), 1.0)
        opt.step()
        return loss.item()

    unet_losses = _loop(
        cfg.unet_steps,
        TrainingCheckpoint(work / "unet"),
        joint,
        opt,
        unet_step,
        cfg.checkpoint_every,
        "tiny-sd unet",
    )
    joint.eval().requires_grad_(False)

    # 3. gate -----------------------------------------------------------------------------------------------
    gate = None
    if evaluators_dir is not None:
        gate = gate_accuracy(pipe, corpus_dir, evaluators_dir, cfg)
        log(
            f"tiny-sd gate: shape {gate['shape']:.2f}, colour {gate['color']:.2f} "
            f"(required ≥ {cfg.gate_min_accuracy}; the VAE's own reconstructions: shape "
            f"{gate['vae_reconstruction']['shape']:.2f}, colour {gate['vae_reconstruction']['color']:.2f})"
        )

    tmp = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    manifest = {
        "artefact": "tiny-sd",
        "config_hash": config_hash,
        "config": asdict(cfg),
        "corpus": portable_path(corpus_dir),
        "images": n,
        "build_seconds": round(time.perf_counter() - t0, 1),
        "vae_scaling_factor": scaling,
        "final_loss": {"vae": vae_losses[-1], "unet": sum(unet_losses[-50:]) / len(unet_losses[-50:])},
        "gate": gate,
        "unet_parameters": sum(p.numel() for p in unet.parameters()),
    }
    gate_failed = gate is not None and min(gate["shape"], gate["color"]) < cfg.gate_min_accuracy
    manifest["gate_passed"] = None if gate is None else not gate_failed
    if gate_failed and cfg.gate_action == "warn":
        log(
            f"WARNING: tiny-sd failed its gate (shape {gate['shape']:.2f}, colour {gate['color']:.2f} < "
            f"{cfg.gate_min_accuracy}); kept because gate_action=warn"
        )
    elif gate_failed:
        (work / "gate_failed.json").write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(tmp, ignore_errors=True)
        raise GateFailedError(
            f"tiny-sd gate failed: the attribute classifiers read shape {gate['shape']:.2f} and colour "
            f"{gate['color']:.2f} in base-prompt samples (required ≥ {cfg.gate_min_accuracy}); "
            f"give the build more steps (unet_steps={cfg.unet_steps}); details in {work / 'gate_failed.json'}"
        )
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    shutil.rmtree(work, ignore_errors=True)
    log(f"tiny-sd built in {manifest['build_seconds']} s: {out_dir}")
    return manifest


@torch.no_grad()
def gate_accuracy(pipe, corpus_dir: Path, evaluators_dir: str | Path, cfg: PretrainConfig) -> dict[str, Any]:
    """Shape and colour accuracy of the attribute classifiers on samples of base validation prompts, and on
    the VAE's reconstructions of the same prompts' real images (the ceiling the VAE sets on the gate)."""
    from devicelab.methods.hollowed_net.evaluators import FidelityScorer
    from devicelab.methods.hollowed_net.sampling import generate

    scorer = FidelityScorer(evaluators_dir)
    rows = read_captioned(corpus_dir / "base" / "val")[: cfg.gate_samples]
    images = generate(
        pipe.unet,
        pipe.vae,
        pipe.tokenizer,
        pipe.text_encoder,
        pipe.scheduler,
        [r.text for r in rows],
        images_per_prompt=1,
        steps=cfg.gate_inference_steps,
        guidance=cfg.gate_guidance,
        seed=cfg.seed,
    )
    real = to_model_range(load_images([r.path for r in rows], TinySDConfig().image_size))
    reconstructed = pipe.vae.decode(pipe.vae.encode(real).latent_dist.mean).sample.clamp(-1, 1)
    out: dict[str, Any] = {"vae_reconstruction": {}}
    for a in ("shape", "color"):
        requests = [{a: r.attributes.get(a)} for r in rows]
        out[a] = scorer.attribute_accuracy(images, requests)
        out["vae_reconstruction"][a] = scorer.attribute_accuracy(reconstructed, requests)
    return out
