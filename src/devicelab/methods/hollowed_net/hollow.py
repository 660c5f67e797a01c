"""Removing the hollowed weights and placing LoRA on the kept layers only.

Spec §5.2 [reconstruction]: the hollowed modules keep their paths but live on the ``meta`` device with no
storage, so the trained LoRA state dict of the hollowed U-Net has exactly the keys of the full U-Net's adapter
and transfers back one to one. LoRA targets are the kept attention projections (``to_q``, ``to_k``, ``to_v``,
``to_out.0``: the diffusers DreamBooth LoRA script's defaults), as one full-match regex for peft.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

from devicelab.methods.hollowed_net.layers import (
    ATTENTION_PROJECTIONS,
    UNetLayout,
    check_sd_topology,
    ldm_layout,
)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def hollowed_keys(unet: nn.Module, m: int, layout: UNetLayout | None = None) -> list[str]:
    """The state-dict keys that hollow depth ``m`` removes (weights under a hollowed module path)."""
    layout = layout or ldm_layout(unet)
    prefixes = layout.hollowed_prefixes(m)
    return sorted(k for k in unet.state_dict() if _under(k, prefixes))


def hollow_unet_(unet: nn.Module, m: int, layout: UNetLayout | None = None) -> list[str]:
    """Move the hollowed modules of ``unet`` to ``meta`` in place (their storage is freed); returns keys."""
    layout = layout or ldm_layout(unet)
    keys = hollowed_keys(unet, m, layout)
    for path in layout.hollowed_prefixes(m):
        unet.get_submodule(path).to("meta")
    return keys


def unet_weight_files(unet_dir: str | Path) -> list[Path]:
    """The safetensors weight file(s) of a diffusers ``unet/`` folder; refuses ``.bin``-only folders."""
    unet_dir = Path(unet_dir)
    if not (unet_dir / "config.json").is_file():
        raise FileNotFoundError(f"{unet_dir / 'config.json'} is missing (not a diffusers unet folder)")
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"):
        if (unet_dir / name).is_file():
            return [unet_dir / name]
    for index in (
        "diffusion_pytorch_model.safetensors.index.json",
        "diffusion_pytorch_model.fp16.safetensors.index.json",
    ):
        if (unet_dir / index).is_file():
            shards = sorted(set(json.loads((unet_dir / index).read_text())["weight_map"].values()))
            missing = [s for s in shards if not (unet_dir / s).is_file()]
            if missing:
                raise FileNotFoundError(f"{unet_dir / index}: shard {missing[0]} is missing")
            return [unet_dir / s for s in shards]
    if any(unet_dir.glob("*.bin")):
        raise ValueError(
            f"{unet_dir}: only .bin (pickle) weights found; devicelab reads safetensors only — "
            "convert the folder with diffusers' save_pretrained(safe_serialization=True)"
        )
    raise FileNotFoundError(f"{unet_dir}: no diffusion_pytorch_model*.safetensors weights")


def load_kept(
    unet_dir: str | Path,
    m: int | None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Load a diffusers U-Net with only the kept weights of depth ``m`` ever read (spec §5.2).

    The skeleton is built on ``meta``; only non-hollowed keys are read through ``safe_open`` and assigned,
    so the hollowed modules never get storage. ``m=None`` loads every weight. The missing keys must equal
    the hollowed keys exactly, otherwise the folder is refused naming the first stray key.
    """
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open

    unet_dir = Path(unet_dir)
    files = unet_weight_files(unet_dir)
    config = json.loads((unet_dir / "config.json").read_text())
    if m is not None:
        check_sd_topology(config, str(unet_dir / "config.json"))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    layout = ldm_layout(unet)
    hollowed = set(hollowed_keys(unet, m, layout)) if m is not None else set()
    expected = set(unet.state_dict())
    state = {}
    for f in files:
        with safe_open(str(f), framework="pt", device=str(device)) as sf:
            for key in sf.keys():
                if key in hollowed:
                    continue
                if key not in expected:
                    raise ValueError(f"{f}: unexpected weight {key!r} for this unet/config.json")
                state[key] = sf.get_tensor(key).to(dtype)
    result = unet.load_state_dict(state, strict=False, assign=True)
    missing = set(result.missing_keys)
    if missing != hollowed:
        stray = sorted(missing - hollowed) or sorted(hollowed - missing)
        raise ValueError(f"{unet_dir}: weight {stray[0]!r} is missing from {files[0].name}")
    return unet.eval()


def meta_free(unet: nn.Module, prefixes: tuple[str, ...]) -> bool:
    """True when every parameter and buffer under ``prefixes`` is on ``meta`` (holds no storage)."""
    named = [*unet.named_parameters(), *unet.named_buffers()]
    return all(t.device.type == "meta" for n, t in named if _under(n, prefixes))


def attention_projections(unet: nn.Module) -> list[str]:
    """Module paths of every attention projection (``...attn1.to_q``, ``...attn2.to_out.0``, ...)."""
    ends = tuple("." + p for p in ATTENTION_PROJECTIONS)
    return sorted(n for n, mod in unet.named_modules() if n.endswith(ends) and isinstance(mod, nn.Linear))


def lora_target_modules(unet: nn.Module, m: int | None, layout: UNetLayout | None = None) -> list[str]:
    """The attention projections LoRA trains: all of them (``m=None``) or those outside hollowed prefixes."""
    names = attention_projections(unet)
    if m is None:
        return names
    layout = layout or ldm_layout(unet)
    prefixes = layout.hollowed_prefixes(m)
    return [n for n in names if not _under(n, prefixes)]


def target_regex(module_names: list[str]) -> str:
    """A full-match regex that peft applies to module names: ``^(?:a\\.b|c\\.d)$``."""
    if not module_names:
        raise ValueError("no LoRA target modules: every attention projection is hollowed at this depth")
    return "^(?:" + "|".join(re.escape(n) for n in module_names) + ")$"


def add_lora(
    unet: nn.Module,
    targets: list[str],
    rank: int,
    alpha: float | None = None,
    init: str | bool = "gaussian",
    adapter_name: str = "default",
) -> None:
    """Freeze ``unet`` and attach a peft LoRA adapter (B = 0 at init) to exactly ``targets``."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else rank,
        init_lora_weights=init,
        target_modules=target_regex(targets),
    )
    unet.add_adapter(config, adapter_name=adapter_name)


def lora_parameters(unet: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in unet.named_parameters() if "lora_" in n and p.requires_grad]
