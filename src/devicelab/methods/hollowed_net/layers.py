"""The LDM layer view of a diffusers ``UNet2DConditionModel``: numbering, layered forward, hollowed forward.

Hollowed Net (Cho et al., NeurIPS 2024) removes the deepest layers of the U-Net's "U" while fine-tuning. The
spec numbers the layers as the original LDM code does (``input_blocks`` 0-11, ``middle_block``,
``output_blocks`` 0-11); this module derives that numbering from any SD-1.x/2.x-shaped diffusers U-Net by
walking its blocks, nothing hard-coded [reconstruction, spec §3], and runs the U-Net layer by layer with the
same operations in the same order as ``UNet2DConditionModel.forward`` so the two agree bit for bit.

Hollow depth ``m`` (spec §4) removes ``IN_{L+1-m} .. IN_L``, ``MID`` and ``OUT_0 .. OUT_{m-1}``
(``L`` = 11 for SD); the hidden state entering ``OUT_m`` (``a_m``) is the one tensor from outside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

SUPPORTED_DOWN = ("CrossAttnDownBlock2D", "DownBlock2D")
SUPPORTED_MID = ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D")
SUPPORTED_UP = ("CrossAttnUpBlock2D", "UpBlock2D")
# LoRA targets of the diffusers DreamBooth LoRA script (spec §5.2)
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass(frozen=True)
class LdmLayer:
    """One LDM layer: its name (``IN03``, ``MID``, ``OUT11``) and the diffusers modules that make it up."""

    name: str
    kind: Literal["in", "mid", "out"]
    index: int
    resnet: str | None = None  # a ResnetBlock2D, or conv_in for IN00, or the whole mid_block for MID
    attention: str | None = None  # the Transformer2DModel after the resnet, if any
    sampler: str | None = None  # a downsampler (an IN layer of its own) or the upsampler closing an OUT layer

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(p for p in (self.resnet, self.attention, self.sampler) if p is not None)


@dataclass(frozen=True)
class UNetLayout:
    """The LDM numbering of one U-Net: ``inputs`` (IN00..), ``middle`` (None if mid-less), ``outputs``."""

    inputs: tuple[LdmLayer, ...]
    middle: LdmLayer | None
    outputs: tuple[LdmLayer, ...]

    @property
    def layers(self) -> tuple[LdmLayer, ...]:
        return (*self.inputs, *((self.middle,) if self.middle else ()), *self.outputs)

    @property
    def max_depth(self) -> int:
        """The largest hollow depth ``m``: the number of input layers minus one (11 for SD)."""
        return len(self.inputs) - 1

    def check_depth(self, m: int) -> None:
        if self.middle is None:
            raise ValueError(
                "this U-Net has no mid_block (a layer-pruned topology); hollowing is not defined"
            )
        if len(self.inputs) != len(self.outputs):
            raise ValueError(
                f"{len(self.inputs)} input layers but {len(self.outputs)} output layers; "
                "hollowing needs a symmetric U-Net"
            )
        if not 0 <= m <= self.max_depth:
            raise ValueError(f"hollow depth m={m} is out of range 0..{self.max_depth}")

    def hollowed_layers(self, m: int) -> tuple[LdmLayer, ...]:
        """``IN_{L+1-m}..IN_L``, ``MID``, ``OUT_0..OUT_{m-1}``: the 2m+1 layers depth m removes (§4)."""
        self.check_depth(m)
        n = len(self.inputs)
        return (*self.inputs[n - m :], self.middle, *self.outputs[:m])

    def kept_layers(self, m: int) -> tuple[LdmLayer, ...]:
        hollowed = {layer.name for layer in self.hollowed_layers(m)}
        return tuple(layer for layer in self.layers if layer.name not in hollowed)

    def hollowed_prefixes(self, m: int) -> tuple[str, ...]:
        """Module paths (``down_blocks.3.resnets.0``, ``mid_block``, ...) whose weights depth m removes."""
        return tuple(p for layer in self.hollowed_layers(m) for p in layer.modules)


def _check_supported(unet: nn.Module) -> None:
    cfg = unet.config
    for key in ("class_embed_type", "addition_embed_type", "encoder_hid_dim_type"):
        if cfg.get(key) is not None:
            raise ValueError(
                f"unet config key {key}={cfg.get(key)!r} is not supported by the layered view "
                "(SD-1.x/2.x U-Nets have it null)"
            )
    if cfg.get("num_class_embeds"):
        raise ValueError("unet config key num_class_embeds is not supported by the layered view")
    for i, block in enumerate(unet.down_blocks):
        if type(block).__name__ not in SUPPORTED_DOWN:
            raise ValueError(
                f"unet config down_block_types[{i}]={type(block).__name__} is not supported; "
                f"expected one of {SUPPORTED_DOWN}"
            )
    if unet.mid_block is not None and type(unet.mid_block).__name__ not in SUPPORTED_MID:
        raise ValueError(f"unet config mid_block_type={type(unet.mid_block).__name__} is not supported")
    for i, block in enumerate(unet.up_blocks):
        if type(block).__name__ not in SUPPORTED_UP:
            raise ValueError(
                f"unet config up_block_types[{i}]={type(block).__name__} is not supported; "
                f"expected one of {SUPPORTED_UP}"
            )


def ldm_layout(unet: nn.Module) -> UNetLayout:
    """Walk the diffusers blocks of ``unet`` and number them as LDM layers (spec §3)."""
    _check_supported(unet)
    inputs = [LdmLayer("IN00", "in", 0, resnet="conv_in")]
    for b, block in enumerate(unet.down_blocks):
        attentions = getattr(block, "attentions", None)
        for r in range(len(block.resnets)):
            inputs.append(
                LdmLayer(
                    f"IN{len(inputs):02d}",
                    "in",
                    len(inputs),
                    resnet=f"down_blocks.{b}.resnets.{r}",
                    attention=f"down_blocks.{b}.attentions.{r}" if attentions else None,
                )
            )
        if block.downsamplers is not None:
            inputs.append(
                LdmLayer(f"IN{len(inputs):02d}", "in", len(inputs), sampler=f"down_blocks.{b}.downsamplers.0")
            )
    middle = LdmLayer("MID", "mid", 0, resnet="mid_block") if unet.mid_block is not None else None
    outputs = []
    for b, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None)
        n = len(block.resnets)
        for r in range(n):
            closes = r == n - 1 and block.upsamplers is not None
            outputs.append(
                LdmLayer(
                    f"OUT{len(outputs):02d}",
                    "out",
                    len(outputs),
                    resnet=f"up_blocks.{b}.resnets.{r}",
                    attention=f"up_blocks.{b}.attentions.{r}" if attentions else None,
                    sampler=f"up_blocks.{b}.upsamplers.0" if closes else None,
                )
            )
    return UNetLayout(tuple(inputs), middle, tuple(outputs))


def check_sd_topology(unet_config: dict, source: str = "unet/config.json") -> None:
    """Refuse U-Nets whose blocks do not give the 12/1/12 LDM layers that the depth numbering assumes."""
    down = list(unet_config.get("down_block_types", ()))
    up = list(unet_config.get("up_block_types", ()))
    layers = unet_config.get("layers_per_block", 2)
    n_in = 1 + len(down) * layers + max(len(down) - 1, 0)
    n_out = len(up) * (layers + 1)
    if unet_config.get("mid_block_type", "UNetMidBlock2DCrossAttn") is None:
        raise ValueError(f"{source}: mid_block_type is null (a layer-pruned U-Net); hollowing is not defined")
    if (n_in, n_out) != (12, 12):
        raise ValueError(
            f"{source}: down_block_types/up_block_types/layers_per_block give {n_in} input and "
            f"{n_out} output layers; hollowing expects the SD-1.x/2.x topology (12/1/12)"
        )


# --------------------------------------------------------------------------------------------------------
# forward pieces


def embed_inputs(
    unet: nn.Module,
    sample: torch.Tensor,
    timestep: torch.Tensor | int | float,
    encoder_hidden_states: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The preamble of ``UNet2DConditionModel.forward``: (sample, time embedding, text states), same ops."""
    if unet.config.center_input_sample:
        sample = 2 * sample - 1.0
    t_emb = unet.get_time_embed(sample=sample, timestep=timestep)
    emb = unet.time_embedding(t_emb, None)  # (B, temb)
    if unet.time_embed_act is not None:
        emb = unet.time_embed_act(emb)
    encoder_hidden_states = unet.process_encoder_hidden_states(encoder_hidden_states, None)
    return sample, emb, encoder_hidden_states


def _attend(attn: nn.Module, h: torch.Tensor, ehs: torch.Tensor) -> torch.Tensor:
    return attn(
        h,
        encoder_hidden_states=ehs,
        cross_attention_kwargs=None,
        attention_mask=None,
        encoder_attention_mask=None,
        return_dict=False,
    )[0]


def run_in_layer(
    unet: nn.Module, layer: LdmLayer, h: torch.Tensor, emb: torch.Tensor, ehs: torch.Tensor
) -> torch.Tensor:
    """One input layer: conv_in, a resnet (+ attention) pair, or a downsampler."""
    if layer.resnet == "conv_in":
        return unet.conv_in(h)
    if layer.sampler is not None:
        return unet.get_submodule(layer.sampler)(h)
    h = unet.get_submodule(layer.resnet)(h, emb)
    if layer.attention is not None:
        h = _attend(unet.get_submodule(layer.attention), h, ehs)
    return h


def run_mid_layer(unet: nn.Module, h: torch.Tensor, emb: torch.Tensor, ehs: torch.Tensor) -> torch.Tensor:
    mid = unet.mid_block
    if getattr(mid, "has_cross_attention", False):
        return mid(
            h,
            emb,
            encoder_hidden_states=ehs,
            attention_mask=None,
            cross_attention_kwargs=None,
            encoder_attention_mask=None,
        )
    return mid(h, emb)


def run_out_layer(
    unet: nn.Module,
    layer: LdmLayer,
    h: torch.Tensor,
    skip: torch.Tensor,
    emb: torch.Tensor,
    ehs: torch.Tensor,
    upsample_size: Sequence[int] | None,
) -> torch.Tensor:
    """One output layer: ``resnet(cat[h, skip])`` (+ attention) (+ the upsampler that closes it)."""
    h = torch.cat([h, skip], dim=1)
    h = unet.get_submodule(layer.resnet)(h, emb)
    if layer.attention is not None:
        h = _attend(unet.get_submodule(layer.attention), h, ehs)
    if layer.sampler is not None:
        h = unet.get_submodule(layer.sampler)(h, upsample_size)
    return h


def run_head(unet: nn.Module, h: torch.Tensor) -> torch.Tensor:
    if unet.conv_norm_out is not None:
        h = unet.conv_norm_out(h)
        h = unet.conv_act(h)
    return unet.conv_out(h)


def _maybe_checkpoint(use: bool, fn, *args):
    if use and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


def layered_forward(
    unet: nn.Module,
    sample: torch.Tensor,
    timestep: torch.Tensor | int | float,
    encoder_hidden_states: torch.Tensor,
    *,
    layout: UNetLayout | None = None,
    hollow: int | None = None,
    injected: torch.Tensor | None = None,
    stop_before_out: int | None = None,
    gradient_checkpointing: bool = False,
) -> torch.Tensor:
    """The U-Net run LDM layer by LDM layer; equals ``unet(sample, t, ehs).sample`` exactly (spec §13.1).

    sample: (B, C_in, H, W); encoder_hidden_states: (B, S, D).
    ``hollow=m`` with ``injected=a_m`` runs only the kept layers (spec §5.2): ``IN_0..IN_{L-m}`` (their
    outputs are the skips the kept OUT layers need), then ``OUT_m..OUT_L`` starting from ``a_m``.
    ``stop_before_out=m`` returns the hidden state entering ``OUT_m`` (the pre-compute of spec §5.1).
    ``gradient_checkpointing`` recomputes each LDM layer in backward (``torch.utils.checkpoint``).
    """
    layout = layout or ldm_layout(unet)
    if hollow is not None:
        layout.check_depth(hollow)
        if injected is None:
            raise ValueError("hollow=m needs the injected activation a_m")
    elif injected is not None:
        raise ValueError("injected is only used with hollow=m")
    if stop_before_out is not None:
        layout.check_depth(stop_before_out)
    n_in = len(layout.inputs)
    first_out = hollow or 0
    last_in = n_in - 1 - hollow if hollow is not None else n_in - 1

    up_factor = 2**unet.num_upsamplers
    forward_upsample_size = any(d % up_factor != 0 for d in sample.shape[-2:])
    h, emb, ehs = embed_inputs(unet, sample, timestep, encoder_hidden_states)

    skips: list[torch.Tensor] = []  # s_k = output of IN_k
    for layer in layout.inputs[: last_in + 1]:
        h = _maybe_checkpoint(
            gradient_checkpointing, lambda x, lay=layer: run_in_layer(unet, lay, x, emb, ehs), h
        )
        skips.append(h)
    if hollow is not None:
        h = injected  # (B, C_m, H_m, W_m): a constant computed by the full U-Net beforehand
    elif layout.middle is not None:
        h = _maybe_checkpoint(gradient_checkpointing, lambda x: run_mid_layer(unet, x, emb, ehs), h)
    for layer in layout.outputs[first_out:]:
        j = layer.index
        if stop_before_out is not None and j == stop_before_out:
            return h
        skip = skips[n_in - 1 - j]
        upsample_size = None
        if layer.sampler is not None and forward_upsample_size and n_in - 2 - j >= 0:
            upsample_size = skips[n_in - 2 - j].shape[2:]
        h = _maybe_checkpoint(
            gradient_checkpointing,
            lambda x, s, lay=layer, us=upsample_size: run_out_layer(unet, lay, x, s, emb, ehs, us),
            h,
            skip,
        )
    return run_head(unet, h)


def injected_shape(unet: nn.Module, m: int, latent_hw: tuple[int, int], batch: int = 1) -> tuple[int, ...]:
    """The shape of ``a_m`` for a latent of ``latent_hw``, found by a forward on the meta device."""
    from diffusers import UNet2DConditionModel

    cfg = unet.config
    if next(unet.parameters()).device.type == "meta":
        meta = unet
    else:
        with torch.device("meta"):
            meta = UNet2DConditionModel.from_config(cfg)
    x = torch.empty(batch, cfg.in_channels, *latent_hw, device="meta")
    ehs = torch.empty(batch, 1, cfg.cross_attention_dim, device="meta")
    with torch.no_grad():
        a = layered_forward(
            meta, x, torch.zeros(batch, dtype=torch.long, device="meta"), ehs, stop_before_out=m
        )
    return tuple(a.shape)
