"""Hollowed Net memory benchmark (spec hollowed-net §6, §11): training vs inference, side by side.

For each latent size and variant (``lora-r4``, ``hollowed-m{0,3,6,9}``, ``lora-kept-m6``):

- accounted bytes of one training step (W + G + O + A_saved + I, the 2nd step) and of one no-grad inference
  forward (W_all + peak live activations), in this process; beside them the same step measured by the
  live-tensor tracker and by the CPU allocator's profiled peak (``core.memory.profiled_peak_bytes``);
- measured peak RSS of a fresh subprocess per configuration minus a baseline subprocess with the same imports
  and data but no model step (measuring.md), rounds alternating the order. (GPU ``max_memory_allocated``
  rows are not wired yet: everything here runs on the CPU.)

Memory does not depend on the values of the weights, so the U-Nets are random-init from config dicts:
smoke = a tiny SD-topology U-Net at latent 16², quick = the tiny-sd U-Net at 8² and 32², full = SD-1.5 at
32² on the CPU (256 px).

    python benchmarks/hollowed_net_memory.py --profile quick [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROFILES = {
    "smoke": {
        "config": "tiny-test",
        "latents": [16],
        "variants": ["lora-r4", "hollowed-m0", "hollowed-m3"],
        "rounds": 1,
    },
    "quick": {
        "config": "tiny-sd",
        "latents": [8, 32],
        "variants": ["lora-r4", "hollowed-m0", "hollowed-m3", "hollowed-m6", "hollowed-m9", "lora-kept-m6"],
        "rounds": 5,
    },
    "full": {
        "config": "sd15",
        "latents": [64 if torch.cuda.is_available() else 32],
        "variants": [
            "lora-r4",
            "lora-r128",
            "hollowed-m0",
            "hollowed-m3",
            "hollowed-m6",
            "hollowed-m9",
            "lora-kept-m6",
            "full-ft",
        ],
        "rounds": 5,
    },
}


def unet_config(name: str) -> dict:
    from devicelab.methods.hollowed_net.unet_configs import SD15_UNET_CONFIG, tiny_sd_unet_config

    if name == "sd15":
        return dict(SD15_UNET_CONFIG)
    if name == "tiny-sd":
        return tiny_sd_unet_config()
    return tiny_sd_unet_config(cross_attention_dim=32, sample_size=16)


def save_random_unet(config: dict, folder: Path) -> None:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    UNet2DConditionModel.from_config(config).save_pretrained(str(folder), safe_serialization=True)


def prepare_stores(unet_dir: Path, latent: int, variants: list[str], work: Path) -> None:
    """Pre-compute (k, ε, t, a_m) once per variant with the full U-Net; the probes only read them."""
    from devicelab.methods.hollowed_net.finetune import Variant
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
    from devicelab.methods.hollowed_net.precompute import build_store

    full = load_kept(unet_dir, None)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(2, full.config.in_channels, latent, latent, generator=g)
    text = torch.randn(
        1, 77 if full.config.cross_attention_dim == 768 else 16, full.config.cross_attention_dim, generator=g
    )
    for name in variants:
        v = Variant.parse(name)
        build_store(full, v.hollow, latents, text, ddpm_scheduler(), 2, 1, 0).save(
            work / f"store-{latent}-{name}.safetensors"
        )


def probe(args: argparse.Namespace) -> None:
    """One configuration in this (fresh) process, then its peak RSS as the last JSON line."""
    from devicelab.core.memory import print_peak_rss, reset_peak_rss
    from devicelab.methods.hollowed_net.finetune import OptimConfig, Variant, finetune, prepare_unet
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
    from devicelab.methods.hollowed_net.precompute import PrecomputeStore

    torch.set_num_threads(1)
    store_variant = args.probe if args.probe not in ("baseline", "inference") else "lora-r4"
    store = PrecomputeStore.open(Path(args.work) / f"store-{args.latent}-{store_variant}.safetensors")
    from diffusers import UNet2DConditionModel  # noqa: F401  (every probe imports the same modules)
    from peft import LoraConfig, inject_adapter_in_model  # noqa: F401

    gc.collect()
    reset_peak_rss()  # the import-time peak would otherwise mask the workload
    if args.probe == "baseline":  # same imports and data, no model
        print_peak_rss({"probe": "baseline"})
        return
    if args.probe == "inference":
        unet = load_kept(args.unet_dir, None)
        x = store.latents[:1]
        with torch.no_grad():
            unet(x, torch.tensor([500]), store.text_states)
        print_peak_rss({"probe": "inference"})
        return
    v = Variant.parse(args.probe)
    unet = load_kept(args.unet_dir, v.hollow)  # hollowed weights are never read
    unet, _ = prepare_unet(unet, v)
    finetune(unet, v, store, ddpm_scheduler(), OptimConfig(), account_step=None)
    print_peak_rss({"probe": args.probe})


def accounted(unet_dir: Path, latent: int, variants: list[str], work: Path) -> dict:
    from devicelab.core.memory import profiled_peak_bytes
    from devicelab.methods.hollowed_net.finetune import (
        OptimConfig,
        Variant,
        account_step_memory,
        prepare_unet,
        tracked_step_bytes,
    )
    from devicelab.methods.hollowed_net.hollow import load_kept
    from devicelab.methods.hollowed_net.personalize import inference_account
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
    from devicelab.methods.hollowed_net.precompute import PrecomputeStore

    out = {}
    base = load_kept(unet_dir, None)
    store = PrecomputeStore.open(work / f"store-{latent}-lora-r4.safetensors")
    out["inference"] = inference_account(base, (latent, latent), store.text_states).to_dict()
    out["inference"]["profiler"] = inference_account(
        base, (latent, latent), store.text_states, meter=profiled_peak_bytes
    ).total
    del base
    gc.collect()
    for name in variants:
        v = Variant.parse(name)
        store = PrecomputeStore.open(work / f"store-{latent}-{name}.safetensors")
        unet, _ = prepare_unet(load_kept(unet_dir, v.hollow), v)
        out[name] = account_step_memory(unet, v, store, ddpm_scheduler(), OptimConfig()).to_dict()
        out[name]["tracker"] = tracked_step_bytes(unet, v, store, ddpm_scheduler(), OptimConfig())
        out[name]["profiler"] = tracked_step_bytes(
            unet, v, store, ddpm_scheduler(), OptimConfig(), meter=profiled_peak_bytes
        )
        del unet
        gc.collect()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=tuple(PROFILES), default="quick")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    p.add_argument("--latent", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--unet-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        probe(args)
        return 0

    from devicelab.core.bench import write_bench
    from devicelab.core.memory import measure_peak_rss
    from devicelab.core.tables import markdown_table

    torch.set_num_threads(1)
    prof = PROFILES[args.profile]
    rounds = args.rounds or prof["rounds"]
    variants = prof["variants"]
    rows, record = [], {"profile": args.profile, "unet": prof["config"], "rounds": rounds, "latents": {}}
    with tempfile.TemporaryDirectory(prefix="hollowed-bench-") as tmp:
        work = Path(tmp)
        unet_dir = work / "unet"
        save_random_unet(unet_config(prof["config"]), unet_dir)
        for latent in prof["latents"]:
            prepare_stores(unet_dir, latent, variants, work)
            acc = accounted(unet_dir, latent, variants, work)
            names = ["baseline", "inference", *variants]
            rss: dict[str, list[int]] = {n: [] for n in names}
            for r in range(rounds):  # alternate the order each round
                for name in names if r % 2 == 0 else list(reversed(names)):
                    res = measure_peak_rss(
                        __file__,
                        [
                            "--probe",
                            name,
                            "--latent",
                            str(latent),
                            "--unet-dir",
                            str(unet_dir),
                            "--work",
                            str(work),
                        ],
                    )
                    rss[name].append(res["peak_rss_bytes"])
            base_rss = statistics.median(rss["baseline"])
            infer_rss = statistics.median(rss["inference"]) - base_rss
            infer_acc = acc["inference"]["total"]
            for name in variants:
                train_rss = statistics.median(rss[name]) - base_rss
                rows.append(
                    {
                        "latent": f"{latent}²",
                        "variant": name,
                        "train accounted MB": acc[name]["total"] / 1e6,
                        "infer accounted MB": infer_acc / 1e6,
                        "accounted ratio": acc[name]["total"] / infer_acc,
                        "tracker ratio": acc[name]["tracker"] / infer_acc,
                        "allocator ratio": acc[name]["profiler"] / acc["inference"]["profiler"],
                        "train RSS-base MB": train_rss / 1e6,
                        "infer RSS-base MB": infer_rss / 1e6,
                        "RSS ratio": train_rss / infer_rss if infer_rss > 0 else float("nan"),
                    }
                )
            record["latents"][str(latent)] = {"accounted": acc, "rss_raw": rss}
    record["rows"] = rows
    path = write_bench("hollowed_net_memory", args.profile, record)
    print(markdown_table(rows))
    print(
        f"device: {'GPU ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}; "
        f"written {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
