"""Batched DDIM sampling with classifier-free guidance, the way ``StableDiffusionPipeline`` samples.

Used for the fidelity evaluation (spec §8: quick 25 DDIM steps at CFG 5.0, full 50 steps at CFG 7.5).
"""

from __future__ import annotations

import torch
from torch import nn

from devicelab.core.seeding import torch_generator
from devicelab.methods.hollowed_net.pipeline import encode_prompts


@torch.no_grad()
def generate(
    unet: nn.Module,
    vae: nn.Module,
    tokenizer,
    text_encoder: nn.Module,
    scheduler,
    prompts: list[str],
    images_per_prompt: int = 1,
    steps: int = 25,
    guidance: float = 5.0,
    seed: int = 0,
    batch_size: int = 64,
) -> torch.Tensor:
    """Images (len(prompts) * images_per_prompt, 3, H, W) in [-1, 1]; prompt i's images are consecutive."""
    from diffusers import DDIMScheduler

    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(steps)
    all_prompts = [p for p in prompts for _ in range(images_per_prompt)]
    cond_all = encode_prompts(tokenizer, text_encoder, all_prompts)
    uncond = encode_prompts(tokenizer, text_encoder, [""])
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    size = unet.config.sample_size
    g = torch_generator(seed, 7)
    latents_all = torch.randn(len(all_prompts), unet.config.in_channels, size, size, generator=g)
    out = []
    for i in range(0, len(all_prompts), batch_size):
        cond = cond_all[i : i + batch_size]
        n = cond.shape[0]
        ehs = torch.cat([uncond.expand(n, -1, -1), cond])
        x = latents_all[i : i + n] * ddim.init_noise_sigma
        for t in ddim.timesteps:
            eps_u, eps_c = unet(torch.cat([x, x]), t, ehs).sample.chunk(2)
            eps = eps_u + guidance * (eps_c - eps_u)
            x = ddim.step(eps, t, x).prev_sample
        img = vae.decode(x / vae.config.scaling_factor).sample
        out.append(img.clamp(-1, 1))
        assert img.shape[-1] == size * factor
    return torch.cat(out)
