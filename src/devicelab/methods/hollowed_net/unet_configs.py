"""U-Net configs as plain dicts: public SD-1.5, the tiny SD-topology U-Nets, the diffusers test U-Net.

Nothing is downloaded: every model here is built with ``UNet2DConditionModel.from_config``.
"""

from __future__ import annotations

import copy
from typing import Any

# The public `stable-diffusion-v1-5` unet/config.json (859.5 M parameters), typed in.
SD15_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# The SD-1.5 scheduler (DDPM view of its `scheduler/scheduler_config.json`).
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}


def tiny_sd_unet_config(
    cross_attention_dim: int = 64, sample_size: int = 8, channels: tuple[int, ...] = (32, 64, 128, 128)
) -> dict[str, Any]:
    """SD-1.5 topology (12/1/12 LDM layers) at channels (32, 64, 128, 128), 8 heads, 8 groups (spec §10.1)."""
    cfg = copy.deepcopy(SD15_UNET_CONFIG)
    cfg.update(
        block_out_channels=list(channels),
        cross_attention_dim=cross_attention_dim,
        norm_num_groups=8,
        attention_head_dim=8,
        sample_size=sample_size,
    )
    return cfg


def diffusers_test_unet_config() -> dict[str, Any]:
    """The 2-level U-Net of diffusers' own UNet2DConditionModel tests."""
    return {
        "block_out_channels": [4, 8],
        "norm_num_groups": 4,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "cross_attention_dim": 8,
        "attention_head_dim": 2,
        "out_channels": 4,
        "in_channels": 4,
        "layers_per_block": 1,
        "sample_size": 16,
    }
