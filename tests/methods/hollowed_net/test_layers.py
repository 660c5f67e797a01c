"""Spec §13.1-2, 5-6: the LDM layer view, the exact layered forward, hollowing, LoRA targets, pre-compute."""

from __future__ import annotations

import re

import pytest
import torch

from devicelab.methods.hollowed_net.hollow import (
    add_lora,
    attention_projections,
    lora_target_modules,
    target_regex,
)
from devicelab.methods.hollowed_net.layers import check_sd_topology, layered_forward, ldm_layout
from devicelab.methods.hollowed_net.precompute import build_store


def _inputs(unet, hw: int, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, unet.config.in_channels, hw, hw, generator=g)
    t = torch.tensor([10, 700][:batch])
    ehs = torch.randn(batch, 5, unet.config.cross_attention_dim, generator=g)
    return x, t, ehs


def test_sd_numbering_matches_the_spec_table(tiny_sd_unet):
    layout = ldm_layout(tiny_sd_unet)
    assert [layer.name for layer in layout.layers][:3] == ["IN00", "IN01", "IN02"]
    assert len(layout.inputs) == 12 and len(layout.outputs) == 12 and layout.middle is not None
    assert layout.inputs[3].sampler == "down_blocks.0.downsamplers.0"
    assert layout.inputs[10].resnet == "down_blocks.3.resnets.0" and layout.inputs[10].attention is None
    assert layout.outputs[2].sampler == "up_blocks.0.upsamplers.0"
    assert layout.outputs[11].attention == "up_blocks.3.attentions.2" and layout.outputs[11].sampler is None
    # spec §4 examples
    assert set(layout.hollowed_prefixes(3)) == {
        "down_blocks.2.downsamplers.0",
        "down_blocks.3.resnets.0",
        "down_blocks.3.resnets.1",
        "mid_block",
        "up_blocks.0.resnets.0",
        "up_blocks.0.resnets.1",
        "up_blocks.0.resnets.2",
        "up_blocks.0.upsamplers.0",
    }
    assert len(layout.hollowed_layers(6)) == 13


@pytest.mark.parametrize("config", ["diffusers_test_unet", "tiny_sd_unet"])
@pytest.mark.parametrize("hw", [16, 12])
def test_layered_forward_equals_diffusers_forward_exactly(config, hw, request):
    unet = request.getfixturevalue(config)
    x, t, ehs = _inputs(unet, hw)
    with torch.no_grad():
        assert (layered_forward(unet, x, t, ehs) - unet(x, t, ehs).sample).abs().max().item() == 0.0


def test_hollowed_forward_with_injected_activation_equals_full_forward_at_every_depth(tiny_sd_unet):
    x, t, ehs = _inputs(tiny_sd_unet, 16, batch=1)
    with torch.no_grad():
        reference = tiny_sd_unet(x, t, ehs).sample
    add_lora(tiny_sd_unet, attention_projections(tiny_sd_unet), rank=4)  # gaussian init: B = 0
    with torch.no_grad():
        for m in range(12):
            a_m = layered_forward(tiny_sd_unet, x, t, ehs, stop_before_out=m)
            out = layered_forward(tiny_sd_unet, x, t, ehs, hollow=m, injected=a_m)
            assert (out - reference).abs().max().item() == 0.0, f"m={m}"


def test_lora_target_regex_matches_exactly_the_kept_projections(tiny_sd_unet):
    layout = ldm_layout(tiny_sd_unet)
    all_projections = attention_projections(tiny_sd_unet)
    assert len(all_projections) == 128
    for m in (0, 3, 6, 9):
        kept = lora_target_modules(tiny_sd_unet, m, layout)
        regex = re.compile(target_regex(kept))
        matched = [n for n, _ in tiny_sd_unet.named_modules() if regex.fullmatch(n)]
        assert sorted(matched) == kept
        prefixes = layout.hollowed_prefixes(m)
        assert not [n for n in matched if any(n.startswith(p + ".") for p in prefixes)]
        assert len(all_projections) - len(kept) == {0: 8, 3: 8, 6: 48, 9: 88}[m]  # spec §7 counts


def test_precompute_is_seeded_and_equals_the_input_of_out_m(tiny_sd_unet):
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler

    scheduler = ddpm_scheduler()
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(3, 4, 16, 16, generator=g)
    text = torch.randn(1, 5, 32, generator=g)
    m = 4
    a = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=3, batch=2, seed=7)
    b = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=3, batch=2, seed=7)
    for name in ("image_index", "timesteps", "noise"):
        assert torch.equal(getattr(a.plan, name), getattr(b.plan, name))
    assert torch.equal(a.injected(2), b.injected(2))
    c = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=3, batch=2, seed=8)
    assert not torch.equal(a.plan.noise, c.plan.noise)

    captured = {}
    layout = ldm_layout(tiny_sd_unet)
    resnet = tiny_sd_unet.get_submodule(layout.outputs[m].resnet)

    def capture(module, args):
        captured["x"] = args[0].clone()  # cat([h, skip]) entering OUT_m's resnet

    handle = resnet.register_forward_pre_hook(capture)
    step = 1
    x_t = scheduler.add_noise(latents[a.plan.image_index[step]], a.plan.noise[step], a.plan.timesteps[step])
    with torch.no_grad():
        tiny_sd_unet(x_t, a.plan.timesteps[step], text.expand(2, -1, -1))
    handle.remove()
    a_m = a.injected(step)
    assert torch.equal(captured["x"][:, : a_m.shape[1]], a_m)


def test_store_round_trips_through_disk(tiny_sd_unet, tmp_path):
    from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
    from devicelab.methods.hollowed_net.precompute import PrecomputeStore

    latents, text = torch.randn(2, 4, 16, 16), torch.randn(1, 5, 32)
    store = build_store(
        tiny_sd_unet, 6, latents, text, ddpm_scheduler(), steps=2, batch=1, seed=0, am_dtype=torch.float16
    )
    back = PrecomputeStore.open(store.save(tmp_path / "pre.safetensors"))
    assert back.m == 6 and back.injected(1).dtype == torch.float16
    assert torch.equal(back.injected(1), store.injected(1))
    from devicelab.methods.hollowed_net.finetune import OptimConfig, Variant, finetune, prepare_unet

    unet, _ = prepare_unet(tiny_sd_unet, Variant("hollowed", 4, 6))
    losses = finetune(unet, Variant("hollowed", 4, 6), back, ddpm_scheduler(), OptimConfig()).losses
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        PrecomputeStore.open(tmp_path / "missing.safetensors")


def test_topology_check_names_the_config_file():
    from devicelab.methods.hollowed_net.unet_configs import SD15_UNET_CONFIG, diffusers_test_unet_config

    check_sd_topology(SD15_UNET_CONFIG)
    with pytest.raises(ValueError, match="unet/config.json.*12/1/12"):
        check_sd_topology(diffusers_test_unet_config())
    with pytest.raises(ValueError, match="mid_block_type is null"):
        check_sd_topology({**SD15_UNET_CONFIG, "mid_block_type": None})
    layout_error = pytest.raises(ValueError, match="out of range")
    with layout_error:
        from diffusers import UNet2DConditionModel

        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(SD15_UNET_CONFIG)
        ldm_layout(unet).hollowed_layers(12)
