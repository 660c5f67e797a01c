"""The tiny text-to-image model in the real diffusers pipeline format, and the pipeline-folder checks.

Spec §10.1 [reconstruction]: a ``StableDiffusionPipeline.save_pretrained`` folder whose components are built
from config dicts (never downloaded): a ``CLIPTokenizer`` with one token per vocabulary word, a 2-layer
``CLIPTextModel`` (hidden 64, 16 positions), an ``AutoencoderKL`` with blocks (32, 64, 64) (factor 4), an
SD-1.5-topology U-Net at channels (32, 64, 128, 128) and the SD-1.5 DDPM scheduler. The same code paths then
read a user's local Stable Diffusion 1.5 folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from devicelab.methods.hollowed_net.hollow import unet_weight_files
from devicelab.methods.hollowed_net.unet_configs import SD15_SCHEDULER_CONFIG, tiny_sd_unet_config

SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
RARE_IDENTIFIERS = ("sks", "zwx")
PIPELINE_SUBFOLDERS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


# --------------------------------------------------------------------------------------------------------
# tokenizer


def _bpe_merge_once(tokens: list[str], ranks: dict[tuple[str, str], int]) -> list[str] | None:
    pairs = [(ranks[(a, b)], i) for i, (a, b) in enumerate(zip(tokens, tokens[1:])) if (a, b) in ranks]
    if not pairs:
        return None
    _, i = min(pairs)
    a, b = tokens[i], tokens[i + 1]
    out, j = [], 0
    while j < len(tokens):  # merge every occurrence of (a, b), as CLIP's BPE does
        if j < len(tokens) - 1 and tokens[j] == a and tokens[j + 1] == b:
            out.append(a + b)
            j += 2
        else:
            out.append(tokens[j])
            j += 1
    return out


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    tokens = [*word[:-1], word[-1] + "</w>"]
    while len(tokens) > 1 and (merged := _bpe_merge_once(tokens, ranks)) is not None:
        tokens = merged
    return tokens


def word_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """BPE merges under which every word becomes exactly one token.

    A merge is appended at the lowest priority only when a word does not yet reduce to one token; a merge
    of lower priority never changes how an already reduced word is merged, so one pass suffices.
    """
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        while len(tokens := _bpe(word, ranks)) > 1:
            pair = (tokens[0], tokens[1])
            ranks[pair] = len(merges)
            merges.append(pair)
    return merges


def build_clip_tokenizer(words: Iterable[str], out_dir: str | Path, max_length: int = 16):
    """Write ``vocab.json``/``merges.txt`` for ``words`` (+ ``sks``, ``zwx``); return a ``CLIPTokenizer``."""
    from transformers import CLIPTokenizer

    words = sorted({w.lower() for w in words} | set(RARE_IDENTIFIERS))
    bad = [w for w in words if not w.isalpha() or not w.isascii()]
    if bad:
        raise ValueError(f"vocabulary word {bad[0]!r} is not a lower-case ASCII word")
    merges = word_merges(words)
    vocab: dict[str, int] = {}
    for tok in [*(chr(c) for c in range(ord("a"), ord("z") + 1)), *(chr(c) + "</w>" for c in range(97, 123))]:
        vocab.setdefault(tok, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for w in words:
        vocab.setdefault(w + "</w>", len(vocab))
    for tok in SPECIAL_TOKENS:
        vocab.setdefault(tok, len(vocab))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tok = CLIPTokenizer(
        str(out_dir / "vocab.json"),
        str(out_dir / "merges.txt"),
        model_max_length=max_length,
        pad_token="<|endoftext|>",
    )
    return tok


# --------------------------------------------------------------------------------------------------------
# components


@dataclass(frozen=True)
class TinySDConfig:
    """Sizes of the tiny text-to-image model (spec §10.1)."""

    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_length: int = 16
    vae_channels: tuple[int, ...] = (32, 64, 64)
    unet_channels: tuple[int, ...] = (32, 64, 128, 128)
    latent_channels: int = 4
    image_size: int = 32


def tiny_text_encoder(vocab_size: int, cfg: TinySDConfig, bos_id: int, eos_id: int) -> nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=cfg.text_hidden,
            intermediate_size=4 * cfg.text_hidden,
            num_hidden_layers=cfg.text_layers,
            num_attention_heads=cfg.text_heads,
            max_position_embeddings=cfg.max_length,
            bos_token_id=bos_id,
            eos_token_id=eos_id,
            pad_token_id=eos_id,
        )
    )


def tiny_vae(cfg: TinySDConfig) -> nn.Module:
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.vae_channels),
        layers_per_block=1,
        latent_channels=cfg.latent_channels,
        norm_num_groups=8,
        sample_size=cfg.image_size,
    )


def tiny_unet(cfg: TinySDConfig, latent_hw: int) -> nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(
        tiny_sd_unet_config(cfg.text_hidden, latent_hw, cfg.unet_channels)
    )


def ddpm_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG)


def build_tiny_pipeline(
    words: Iterable[str], tokenizer_dir: str | Path, cfg: TinySDConfig | None = None, seed: int = 0
):
    """A randomly initialised tiny ``StableDiffusionPipeline`` (no safety checker, no feature extractor)."""
    from diffusers import StableDiffusionPipeline

    cfg = cfg or TinySDConfig()
    torch.manual_seed(seed)
    tokenizer = build_clip_tokenizer(words, tokenizer_dir, cfg.max_length)
    text_encoder = tiny_text_encoder(len(tokenizer), cfg, tokenizer.bos_token_id, tokenizer.eos_token_id)
    vae = tiny_vae(cfg)
    factor = 2 ** (len(cfg.vae_channels) - 1)
    unet = tiny_unet(cfg, cfg.image_size // factor)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=ddpm_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# --------------------------------------------------------------------------------------------------------
# folder checks and loading


def validate_pipeline_folder(model_dir: str | Path) -> dict[str, Any]:
    """Check a diffusers Stable Diffusion folder; name the missing file/subfolder or ``.bin``-only weights."""
    model_dir = Path(model_dir)
    index = model_dir / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index} is missing (not a diffusers pipeline folder)")
    try:
        model_index = json.loads(index.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{index}: not valid JSON ({e})") from None
    for sub in PIPELINE_SUBFOLDERS:
        if sub not in model_index:
            raise ValueError(f"{index}: key {sub!r} is missing")
        if not (model_dir / sub).is_dir():
            raise FileNotFoundError(f"{model_dir / sub} is missing (subfolder named in model_index.json)")
    unet_weight_files(model_dir / "unet")
    for sub, stem in (("vae", "diffusion_pytorch_model"), ("text_encoder", "model")):
        folder = model_dir / sub
        if (
            not any(folder.glob(f"{stem}*.safetensors"))
            and not (folder / f"{stem}.safetensors.index.json").is_file()
        ):
            if any(folder.glob("*.bin")):
                raise ValueError(
                    f"{folder}: only .bin (pickle) weights found; devicelab reads safetensors only"
                )
            raise FileNotFoundError(f"{folder}: no {stem}*.safetensors weights")
    return model_index


@dataclass
class PipelineParts:
    """The frozen components used around the U-Net: tokenizer, text encoder, VAE, scheduler, U-Net folder."""

    tokenizer: Any
    text_encoder: nn.Module
    vae: nn.Module
    scheduler: Any
    unet_dir: Path

    @property
    def vae_scale(self) -> float:
        return float(self.vae.config.scaling_factor)


def load_parts(model_dir: str | Path, dtype: torch.dtype = torch.float32) -> PipelineParts:
    """Load tokenizer, text encoder, VAE and scheduler of a local pipeline folder (offline, safetensors)."""
    from diffusers import AutoencoderKL, DDPMScheduler
    from transformers import CLIPTextModel, CLIPTokenizer

    model_dir = Path(model_dir)
    validate_pipeline_folder(model_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(model_dir / "tokenizer"), local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(
        str(model_dir / "text_encoder"), local_files_only=True, use_safetensors=True, torch_dtype=dtype
    ).eval()
    vae = AutoencoderKL.from_pretrained(
        str(model_dir / "vae"), local_files_only=True, use_safetensors=True, torch_dtype=dtype
    ).eval()
    scheduler = DDPMScheduler.from_pretrained(str(model_dir / "scheduler"), local_files_only=True)
    return PipelineParts(tokenizer, text_encoder, vae, scheduler, model_dir / "unet")


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder: nn.Module, prompts: list[str]) -> torch.Tensor:
    """Text states (N, S, D) as StableDiffusionPipeline computes them (padded to ``model_max_length``)."""
    ids = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    return text_encoder(ids.to(text_encoder.device))[0]


@torch.no_grad()
def encode_images(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """z0 = E[q(z | x)] · scaling_factor; images (N, 3, H, W) in [-1, 1] -> latents (N, C, H/f, W/f)."""
    return vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mean * vae.config.scaling_factor
