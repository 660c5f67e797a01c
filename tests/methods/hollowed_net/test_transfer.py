"""Spec §13.3-4, 7: lossless transfer, hollowed weights really freed, memory monotone in m, saving/loading."""

from __future__ import annotations

import pytest
import torch

from devicelab.core.memory import parameter_bytes
from devicelab.methods.hollowed_net.finetune import (
    OptimConfig,
    Variant,
    account_step_memory,
    copy_for_variant,
)
from devicelab.methods.hollowed_net.hollow import (
    add_lora,
    hollowed_keys,
    load_kept,
    lora_parameters,
    lora_target_modules,
    meta_free,
)
from devicelab.methods.hollowed_net.layers import layered_forward, ldm_layout
from devicelab.methods.hollowed_net.pipeline import ddpm_scheduler
from devicelab.methods.hollowed_net.precompute import build_store
from devicelab.methods.hollowed_net.transfer import (
    LORA_WEIGHT_NAME,
    adapter_state_dict,
    fuse_adapter_,
    save_fused_unet,
    transfer_state_dict,
)


@pytest.fixture
def unet_dir(tiny_sd_unet, tmp_path):
    tiny_sd_unet.save_pretrained(str(tmp_path / "unet"), safe_serialization=True)
    return tmp_path / "unet"


def test_load_kept_leaves_exactly_the_hollowed_weights_on_meta(unet_dir, tiny_sd_unet):
    m = 6
    unet = load_kept(unet_dir, m)
    layout = ldm_layout(unet)
    assert meta_free(unet, layout.hollowed_prefixes(m))
    on_meta = sorted(k for k, v in unet.state_dict().items() if v.device.type == "meta")
    assert on_meta == hollowed_keys(tiny_sd_unet, m)
    full = sum(p.numel() for p in tiny_sd_unet.parameters())
    kept = sum(p.numel() for p in unet.parameters() if p.device.type != "meta")
    assert parameter_bytes(unet).total == kept * 4 and kept < 0.25 * full
    for k, v in unet.state_dict().items():  # kept weights are the stored ones
        if v.device.type != "meta":
            assert torch.equal(v, tiny_sd_unet.state_dict()[k])


def test_transfer_back_is_lossless(unet_dir, tiny_sd_unet):
    m, rank = 6, 4
    scheduler = ddpm_scheduler()
    g = torch.Generator().manual_seed(3)
    latents, text = torch.randn(2, 4, 16, 16, generator=g), torch.randn(1, 5, 32, generator=g)
    store = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=3, batch=1, seed=0)
    hollowed = load_kept(unet_dir, m)
    targets = lora_target_modules(hollowed, m)
    add_lora(hollowed, targets, rank)
    from devicelab.methods.hollowed_net.finetune import finetune

    finetune(hollowed, Variant("hollowed", rank, m), store, scheduler, OptimConfig(lr=1e-2))
    state = adapter_state_dict(hollowed)
    assert any(v.abs().max() > 0 for k, v in state.items() if "lora_B" in k)  # it trained

    full = load_kept(unet_dir, None)
    missing, unexpected = transfer_state_dict(full, state, targets, rank, rank)
    assert missing == [] and unexpected == []
    x, t = torch.randn(1, 4, 16, 16, generator=g), torch.tensor([321])
    with torch.no_grad():
        stock = full(x, t, text).sample
        assert (layered_forward(full, x, t, text) - stock).abs().max().item() == 0.0
        # the trained hollowed model, fed the a_m of the adapted full model, gives the same output
        a_m = layered_forward(full, x, t, text, stop_before_out=m)
        hollow_out = layered_forward(hollowed, x, t, text, hollow=m, injected=a_m)
        assert (hollow_out - stock).abs().max().item() == 0.0
        n_params = sum(p.numel() for p in tiny_sd_unet.parameters())
        fuse_adapter_(full)
        assert (full(x, t, text).sample - stock).abs().max().item() <= 1e-5
    assert sum(p.numel() for p in full.parameters()) == n_params


def test_accounted_training_bytes_fall_with_depth(tiny_sd_unet):
    scheduler = ddpm_scheduler()
    latents, text = torch.randn(2, 4, 16, 16), torch.randn(1, 5, 32)
    totals, saved = [], []
    for m in range(10):
        v = Variant("hollowed", 4, m)
        store = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=2, batch=1, seed=0)
        unet, _ = copy_for_variant(tiny_sd_unet, v)
        account = account_step_memory(unet, v, store, scheduler, OptimConfig())
        totals.append(account.total)
        saved.append(account.saved_activations)
        assert account.optimizer == 2 * account.gradients + 4 * len(
            lora_parameters(unet)
        )  # two moments + steps
    assert all(b <= a for a, b in zip(totals, totals[1:])), totals
    assert all(b <= a for a, b in zip(saved, saved[1:])), saved


def test_adapter_saves_and_loads_with_diffusers(unet_dir, tmp_path):
    from devicelab.methods.hollowed_net.transfer import read_adapter_metadata, save_adapter

    m, rank = 3, 4
    hollowed = load_kept(unet_dir, m)
    targets = lora_target_modules(hollowed, m)
    add_lora(hollowed, targets, rank)
    for p in lora_parameters(hollowed):
        torch.nn.init.normal_(p, std=0.05)
    full = load_kept(unet_dir, None)
    transfer_state_dict(full, adapter_state_dict(hollowed), targets, rank, rank)
    x, t, text = torch.randn(1, 4, 16, 16), torch.tensor([10]), torch.randn(1, 5, 32)
    with torch.no_grad():
        expected = full(x, t, text).sample

    # diffusers' own round trip: save_lora_adapter -> load_lora_adapter(weight_name=..., prefix=None)
    full.save_lora_adapter(str(tmp_path / "native"), weight_name=LORA_WEIGHT_NAME)
    fresh = load_kept(unet_dir, None)
    fresh.load_lora_adapter(str(tmp_path / "native"), weight_name=LORA_WEIGHT_NAME, prefix=None)
    with torch.no_grad():
        assert (fresh(x, t, text).sample - expected).abs().max().item() == 0.0

    # devicelab's pipeline-format adapter (unet. keys) from the hollowed model itself
    save_adapter(hollowed, tmp_path / "ours", {"rank": rank, "alpha": rank, "targets": targets, "m": m})
    assert read_adapter_metadata(tmp_path / "ours")["m"] == m
    other = load_kept(unet_dir, None)
    other.load_lora_adapter(str(tmp_path / "ours"), weight_name=LORA_WEIGHT_NAME, prefix="unet")
    with torch.no_grad():
        assert (other(x, t, text).sample - expected).abs().max().item() == 0.0

    with pytest.raises(ValueError, match="active LoRA adapter"):
        save_fused_unet(other, tmp_path / "fused")
    fuse_adapter_(other)
    save_fused_unet(other, tmp_path / "fused")
    assert (tmp_path / "fused" / "diffusion_pytorch_model.safetensors").is_file()


def test_bad_unet_folders_are_named(tmp_path, unet_dir):
    from devicelab.methods.hollowed_net.transfer import read_adapter_metadata

    with pytest.raises(FileNotFoundError, match="config.json"):
        load_kept(tmp_path, 3)
    bin_only = tmp_path / "bin_unet"
    bin_only.mkdir()
    (bin_only / "config.json").write_text((unet_dir / "config.json").read_text())
    (bin_only / "diffusion_pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="only .bin"):
        load_kept(bin_only, 3)
    with pytest.raises(FileNotFoundError, match="hollowed_net.json"):
        read_adapter_metadata(tmp_path)


def test_refresh_recomputes_the_injected_activation_with_the_current_lora(unet_dir, tiny_sd_unet):
    from devicelab.methods.hollowed_net.personalize import InjectedRefresher

    m, rank = 6, 4
    scheduler = ddpm_scheduler()
    latents, text = torch.randn(2, 4, 16, 16), torch.randn(1, 5, 32)
    store = build_store(tiny_sd_unet, m, latents, text, scheduler, steps=4, batch=1, seed=0)
    stale = store.injected(2).clone()
    hollowed = load_kept(unet_dir, m)
    targets = lora_target_modules(hollowed, m)
    add_lora(hollowed, targets, rank)
    for p in lora_parameters(hollowed):
        torch.nn.init.normal_(p, std=0.05)
    refresher = InjectedRefresher(
        load_kept(unet_dir, None), store, Variant("hollowed", rank, m), targets, scheduler, every=2
    )
    refresher(hollowed, 1)
    assert torch.equal(store.injected(2), stale) and refresher.refreshes == 0
    refresher(hollowed, 2)
    assert refresher.refreshes == 1 and not torch.equal(store.injected(2), stale)
    x_t = scheduler.add_noise(
        latents[store.plan.image_index[3]], store.plan.noise[3], store.plan.timesteps[3]
    )
    with torch.no_grad():
        expected = layered_forward(refresher.full, x_t, store.plan.timesteps[3], text, stop_before_out=m)
    assert torch.equal(store.injected(3), expected)
