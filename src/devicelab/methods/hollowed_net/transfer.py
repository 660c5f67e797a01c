"""Stage 3: transfer the LoRA trained on the hollowed U-Net back into the full U-Net, losslessly.

Spec §5.3 [paper: "transferred back into the original U-Net ... without additional memory overhead"]: the
keys of ``get_peft_model_state_dict`` of the hollowed U-Net exist as-is in the full U-Net (the hollowed
modules kept their paths), hollowed layers get ΔW = 0, and ``fuse_lora`` + ``unload_lora`` give back the
original architecture with W ← W + (α/r)·BA.

The adapter is saved in the diffusers LoRA format (``pytorch_lora_weights.safetensors`` with ``unet.`` keys),
which ``StableDiffusionPipeline.load_lora_weights(dir)`` loads, plus ``hollowed_net.json`` (r, α, targets, m,
base checksum).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicelab.methods.hollowed_net.hollow import add_lora

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
METADATA_NAME = "hollowed_net.json"


def has_active_adapter(unet: nn.Module) -> bool:
    return any("lora_" in n for n, _ in unet.named_parameters())


def adapter_state_dict(unet: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA weights of ``unet`` with peft's keys (``...to_q.lora_A.weight``), on the CPU, contiguous."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(unet).items()}


def base_checksum(unet_dir: str | Path | None) -> str | None:
    """sha256 of the base U-Net's weight file names and sizes plus its config (cheap; identifies the base)."""
    if unet_dir is None:
        return None
    unet_dir = Path(unet_dir)
    h = hashlib.sha256((unet_dir / "config.json").read_bytes())
    for f in sorted(unet_dir.glob("*.safetensors")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def save_adapter(unet: nn.Module, out_dir: str | Path, metadata: dict[str, Any]) -> Path:
    """Write the adapter of ``unet`` in the diffusers pipeline LoRA format plus ``hollowed_net.json``.

    ``metadata`` holds at least ``rank``, ``alpha`` and ``targets``. Files are written under temporary names
    and renamed, so a failure leaves no half-written adapter.
    """
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers

    for key in ("rank", "alpha", "targets"):
        if key not in metadata:
            raise KeyError(f"adapter metadata is missing {key!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = convert_state_dict_to_diffusers(adapter_state_dict(unet))
    lora_config = {
        "r": int(metadata["rank"]),
        "lora_alpha": float(metadata["alpha"]),
        "target_modules": list(metadata["targets"]),
        "init_lora_weights": "gaussian",
    }
    tmp = out_dir / f".partial-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        tmp,
        unet_lora_layers=state,
        unet_lora_adapter_metadata=lora_config,
        weight_name=LORA_WEIGHT_NAME,
        safe_serialization=True,
    )
    (tmp / METADATA_NAME).write_text(json.dumps({**metadata, "targets": list(metadata["targets"])}, indent=2))
    for name in (LORA_WEIGHT_NAME, METADATA_NAME):
        os.replace(tmp / name, out_dir / name)
    tmp.rmdir()
    return out_dir / LORA_WEIGHT_NAME


def read_adapter_metadata(adapter_dir: str | Path) -> dict[str, Any]:
    path = Path(adapter_dir) / METADATA_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing (not a devicelab adapter folder)")
    meta = json.loads(path.read_text())
    for key in ("rank", "alpha", "targets"):
        if key not in meta:
            raise KeyError(f"{path}: key {key!r} is missing")
    return meta


def transfer_state_dict(
    full_unet: nn.Module, state: dict[str, torch.Tensor], targets: list[str], rank: int, alpha: float
) -> tuple[list[str], list[str]]:
    """Attach an adapter on ``targets`` to the full U-Net and load ``state`` (peft keys) into it.

    Returns the (missing, unexpected) LoRA keys; both are empty for a lossless transfer.
    """
    from peft.utils import set_peft_model_state_dict

    add_lora(full_unet, targets, rank, alpha)
    result = set_peft_model_state_dict(full_unet, state)
    missing = [k for k in result.missing_keys if "lora_" in k]
    return missing, list(result.unexpected_keys)


def load_adapter_into(full_unet: nn.Module, adapter_dir: str | Path, adapter_name: str = "default") -> None:
    """Load a saved adapter into a full U-Net with diffusers' own loader (``load_lora_adapter``)."""
    full_unet.load_lora_adapter(
        str(adapter_dir), weight_name=LORA_WEIGHT_NAME, prefix="unet", adapter_name=adapter_name
    )


def fuse_adapter_(unet: nn.Module) -> nn.Module:
    """W ← W + (α/r)·BA in place, then drop the LoRA modules: the original architecture, no extra cost."""
    unet.fuse_lora()
    unet.unload_lora()
    return unet


def save_fused_unet(unet: nn.Module, out_dir: str | Path) -> None:
    """``save_pretrained`` of a U-Net; refuses one with an active, unfused adapter (spec §16)."""
    if has_active_adapter(unet):
        raise ValueError(
            "refusing save_pretrained on a U-Net with an active LoRA adapter: the checkpoint would "
            "hold base_layer/lora keys that from_pretrained leaves on meta; fuse_adapter_() first "
            "or save the adapter alone with save_adapter()"
        )
    unet.save_pretrained(str(out_dir), safe_serialization=True)
