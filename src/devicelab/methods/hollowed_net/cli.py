"""``devicelab personalize``: Hollowed-Net LoRA personalisation of a local diffusers Stable Diffusion folder.

    devicelab personalize --model DIR --images DIR --prompt "a sks dog" --hollow 6 --out ADAPTER_DIR

The same command runs on the tiny offline model (``$DEVICELAB_DATA/tiny-sd/quick``) and on a user's local
SD-1.5 folder. It prints the accounted training peak beside the accounted inference peak and writes the
adapter in the diffusers LoRA format (``StableDiffusionPipeline.load_lora_weights(OUT)`` loads it).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
from pathlib import Path

import torch

from devicelab.methods.hollowed_net.data import IMAGE_SUFFIXES, load_images, to_model_range


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="devicelab personalize",
        description="Hollowed-Net LoRA personalisation of a local diffusers Stable Diffusion folder: prints "
        "the accounted training and inference memory peaks and writes a diffusers LoRA adapter.",
        formatter_class=_HelpWithDefaults,
    )
    p.add_argument("--model", required=True, type=Path, help="a diffusers Stable Diffusion pipeline folder")
    p.add_argument("--images", required=True, type=Path, help="a folder of instance images (png/jpg)")
    p.add_argument("--prompt", required=True, help='the instance prompt, e.g. "a sks dog"')
    p.add_argument(
        "--hollow", type=int, default=6, help="hollow depth m (0..11 for SD-1.x/2.x); -1 trains plain LoRA"
    )
    p.add_argument("--rank", type=int, default=4, help="LoRA rank r")
    p.add_argument("--steps", type=int, default=500, help="fine-tuning steps")
    p.add_argument("--batch", type=int, default=1, help="images per step")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate (AdamW)")
    p.add_argument("--seed", type=int, default=0, help="seed of noise, timesteps and LoRA initialisation")
    p.add_argument("--resolution", type=int, default=None, help="image size (default: the VAE's sample_size)")
    p.add_argument(
        "--am-dtype",
        choices=("fp32", "fp16"),
        default="fp32",
        help="dtype of the pre-computed activations a_m",
    )
    p.add_argument(
        "--am-storage",
        choices=("disk", "memory"),
        default="disk",
        help="where the pre-computed activations a_m are kept during fine-tuning",
    )
    p.add_argument(
        "--gradient-checkpointing", action="store_true", help="recompute activations in the backward pass"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="adapter folder (default: <images>/../hollowed-lora)"
    )
    p.add_argument("--fuse", action="store_true", help="also write the fused U-Net to OUT/unet-fused")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    return p


def _check_args(args: argparse.Namespace) -> None:
    """Ranges checked before anything is loaded or written; errors name the option and the valid range."""
    for name in ("rank", "steps", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} {getattr(args, name)}: expected at least 1")
    if args.lr <= 0:
        raise ValueError(f"--lr {args.lr}: expected a positive learning rate")
    max_depth = 11
    unet_config = args.model / "unet" / "config.json"
    if unet_config.is_file():  # the model's own depth; load_parts names a missing folder
        config = json.loads(unet_config.read_text())
        down = len(config.get("down_block_types", ())) or 4
        max_depth = down * config.get("layers_per_block", 2) + down - 1
    if not -1 <= args.hollow <= max_depth:
        raise ValueError(
            f"--hollow {args.hollow}: out of range; allowed: 0 .. {max_depth} (hollow depth m of "
            f"{args.model}), or -1 for plain LoRA"
        )


def _instance_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder of images")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"{folder}: no .png/.jpg images")
    return paths


def personalize_command(argv: list[str]) -> int:
    """Entry point of ``devicelab personalize``; returns the exit status."""
    from devicelab.methods.hollowed_net.finetune import OptimConfig, Variant
    from devicelab.methods.hollowed_net.personalize import PersonalizeConfig
    from devicelab.methods.hollowed_net.pipeline import load_parts

    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        _check_args(args)
        parts = load_parts(args.model)
        paths = _instance_images(args.images)
        size = args.resolution or int(parts.vae.config.sample_size)
        images = to_model_range(load_images(paths, size))
        variant = (
            Variant("hollowed", args.rank, args.hollow) if args.hollow >= 0 else Variant("lora", args.rank)
        )
        cfg = PersonalizeConfig(
            steps=args.steps,
            batch=args.batch,
            am_storage=args.am_storage,
            am_dtype=args.am_dtype,
            gradient_checkpointing=args.gradient_checkpointing,
            probe_every=0,
            optim=OptimConfig(lr=args.lr),
        )
        out = args.out or args.images.resolve().parent / "hollowed-lora"
        work = out / ".work"
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"devicelab personalize: error: {e}", file=sys.stderr)
        return 2
    created = not out.exists()
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _personalize(args, parts, images, variant, cfg, size, out, work)
    except BaseException as e:
        shutil.rmtree(out if created else work, ignore_errors=True)  # never leave a half-written adapter
        if isinstance(e, FileNotFoundError | ValueError):
            print(f"devicelab personalize: error: {e}", file=sys.stderr)
            return 2
        raise


def _personalize(args, parts, images, variant, cfg, size: int, out: Path, work: Path) -> int:
    """Fine-tune, write the adapter to ``out`` and print the memory accounting (after the checks above)."""
    from devicelab.methods.hollowed_net.personalize import (
        full_unet_with_adapter,
        inference_account,
        personalize,
        save_result_adapter,
    )
    from devicelab.methods.hollowed_net.pipeline import encode_prompts
    from devicelab.methods.hollowed_net.transfer import base_checksum, save_fused_unet

    paths = _instance_images(args.images)
    print(
        f"personalising {args.model} on {len(paths)} images with {variant.name}, r={args.rank}, "
        f"{args.steps} steps",
        flush=True,
    )
    result = personalize(
        parts,
        images,
        args.prompt,
        variant,
        cfg,
        work,
        log=lambda **r: print(json.dumps(r), flush=True),
        seed=args.seed,
    )
    text = encode_prompts(parts.tokenizer, parts.text_encoder, [args.prompt])
    latent_hw = (size // 2 ** (len(parts.vae.config.block_out_channels) - 1),) * 2
    del parts.text_encoder
    gc.collect()
    save_result_adapter(
        result,
        out,
        {
            "base_checksum": base_checksum(args.model / "unet"),
            "prompt": args.prompt,
            "steps": args.steps,
            "seed": args.seed,
        },
    )
    train = result.train_account
    full = full_unet_with_adapter(parts, result, fuse=True)  # stage 3: transfer back, fuse
    del result.unet
    gc.collect()
    infer = inference_account(full, latent_hw, text)
    if args.fuse:
        save_fused_unet(full, out / "unet-fused")
    for f in work.glob("*"):
        f.unlink()
    work.rmdir()
    print(f"adapter: {out}")
    if train is not None:
        print(
            f"training peak (accounted, step 2): {train.total / 1e6:.1f} MB  "
            f"[W {train.weights / 1e6:.1f}, G {train.gradients / 1e6:.1f}, O {train.optimizer / 1e6:.1f}, "
            f"A_saved {train.saved_activations / 1e6:.1f}, I {train.inputs / 1e6:.2f}]"
        )
    print(
        f"inference peak (accounted, batch 1): {infer.total / 1e6:.1f} MB  "
        f"[W {infer.weights / 1e6:.1f}, activations {infer.peak_activations / 1e6:.1f}]"
    )
    if train is not None:
        print(f"training / inference: {train.total / infer.total:.3f}")
    if result.am_disk_bytes:
        print(f"pre-computed a_m on disk: {result.am_disk_bytes / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(personalize_command(sys.argv[1:]))
