"""``devicelab export hollowed-net RUN --out DIR``: a trained adapter of a finished run, ready for diffusers.

The folder holds ``pytorch_lora_weights.safetensors`` (the diffusers pipeline LoRA format, loadable with
``pipe.load_lora_weights(DIR)``) and ``hollowed_net.json`` (rank, α, targets, m, prompt, seed) with
``base_checksum``, the identity of the base U-Net the adapter belongs to. Before writing, the adapter is
loaded into that base U-Net with diffusers' own loader, so an export that would not load is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicelab.core.config import ConfigError, load_config_yaml
from devicelab.methods.hollowed_net.config import HollowedNetConfig
from devicelab.methods.hollowed_net.transfer import (
    LORA_WEIGHT_NAME,
    METADATA_NAME,
    base_checksum,
    load_adapter_into,
    read_adapter_metadata,
)


def run_base_unet(run_dir: Path, config: HollowedNetConfig) -> Path:
    """The U-Net folder of the base model a run fine-tuned (its ``run.json`` profile picks the cache)."""
    from devicelab.methods.hollowed_net.artefacts import artefact_dir

    if config.base == "random-tiny":
        return run_dir / "model" / "unet"
    if config.base == "tiny-sd":
        profile = json.loads((run_dir / "run.json").read_text()).get("profile", "quick")
        return artefact_dir("tiny-sd", profile) / "unet"
    return Path(config.base) / "unet"


def export_run(run_dir: str | Path, options: Mapping[str, Any]) -> Path:
    """Copy one trained adapter (``options``: ``out``, ``variant``, ``seed``, ``subject``) with its base
    checksum into ``options["out"]``; returns the weight file."""
    from devicelab.methods.hollowed_net.hollow import load_kept

    run_dir = Path(run_dir)
    if not options.get("out"):
        raise ConfigError("hollowed-net export writes an adapter folder: give --out DIR")
    config = load_config_yaml(HollowedNetConfig, run_dir / "config.yaml")
    variant = options.get("variant") or f"hollowed-m{config.m}"
    seed = config.seed if options.get("seed") is None else int(options["seed"])
    adapters = run_dir / "adapters"
    subject = options.get("subject")
    pattern = f"{variant}-{subject or '*'}-seed{seed}"
    found = sorted(adapters.glob(pattern)) if adapters.is_dir() else []
    if not found:
        have = ", ".join(sorted(p.name for p in adapters.iterdir())) if adapters.is_dir() else "none"
        raise FileNotFoundError(f"{run_dir}: no trained adapter {pattern} (adapters: {have})")
    source = found[0]
    meta = read_adapter_metadata(source)
    unet_dir = run_base_unet(run_dir, config)
    if not (unet_dir / "config.json").is_file():
        raise FileNotFoundError(f"{unet_dir}: the run's base U-Net is not there (build it first)")
    load_adapter_into(load_kept(unet_dir, None), source)  # refuses an adapter that would not load
    out = Path(options["out"])
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy2(source / LORA_WEIGHT_NAME, tmp / LORA_WEIGHT_NAME)
    meta = {
        **meta,
        "base_checksum": base_checksum(unet_dir),
        "exported_from": f"{run_dir.name}/{source.name}",
    }
    (tmp / METADATA_NAME).write_text(json.dumps(meta, indent=2))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out / LORA_WEIGHT_NAME
