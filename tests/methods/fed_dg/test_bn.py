"""FedFDBatchNorm2d: mixing endpoints, std mixing, u draws, buffers, the IFA, state-dict interop."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.methods.fed_dg.bn import FedFDBatchNorm2d, bn_mode, global_statistics, strip_adapter
from devicelab.nn.glyphnet import GlyphNet


def layer(c=4, **kw):
    torch.manual_seed(0)
    bn = FedFDBatchNorm2d(c, **kw)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 3)
    return bn


def x_batch(b=8, c=4, hw=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, hw, hw, generator=g) * 2 + 0.5


def test_u_one_equals_batch_norm_and_u_zero_uses_global():
    bn, x = layer(u_dist="fixed:1.0"), x_batch()
    stats = {"": (bn.running_mean.clone(), torch.sqrt(bn.running_var + bn.eps))}
    bn.train()
    with bn_mode(bn, "mix", global_stats=stats):
        out = bn(x)
    ref = F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    bn.u_dist = "fixed:0.0"
    with bn_mode(bn, "mix", global_stats=stats):
        out0 = bn(x)
    ref0 = (x - stats[""][0][None, :, None, None]) / stats[""][1][None, :, None, None]
    ref0 = ref0 * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    torch.testing.assert_close(out0, ref0, atol=1e-5, rtol=0)


def test_mix_is_on_std_not_variance():
    bn = FedFDBatchNorm2d(1, eps=0.0, u_dist="fixed:0.5")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 8, 8, generator=g)
    x = (x - x.mean()) / x.std(unbiased=False)  # sigma_k = 1, mu_k = 0
    stats = {"": (torch.zeros(1), torch.full((1,), 3.0))}  # sigma_G = 3
    with bn_mode(bn, "mix", global_stats=stats):
        out = bn(x)
    effective_std = 1.0 / float(out.detach().std(unbiased=False))
    assert effective_std == pytest.approx(2.0, rel=1e-4)  # not sqrt(5)


def test_u_per_channel_per_call_and_reproducible():
    bn, x = layer(c=6), x_batch(c=6)
    stats = {"": (bn.running_mean.clone(), torch.sqrt(bn.running_var + bn.eps))}

    def draws(seed):
        us = []
        with bn_mode(bn, "mix", global_stats=stats, rng=np.random.default_rng(seed)):
            for _ in range(2):
                bn(x)
                us.append(bn.last_u.clone())
        return us

    a, b = draws(3), draws(3)
    assert len(set(a[0].tolist())) == 6  # one weight per channel
    assert not torch.equal(a[0], a[1])  # drawn anew per call
    assert all(torch.equal(p, q) for p, q in zip(a, b))  # same stream, same draws
    assert not torch.equal(draws(4)[0], a[0])


def test_mix_leaves_buffers_and_plain_matches_batchnorm():
    bn, x = layer(), x_batch()
    ref = nn.BatchNorm2d(4)
    ref.load_state_dict(strip_adapter(bn.state_dict()))
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    bn.train()
    ref.train()
    with bn_mode(bn, "mix", global_stats=global_statistics(bn), rng=np.random.default_rng(0)):
        bn(x)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k
    torch.testing.assert_close(bn(x), ref(x))
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(bn.state_dict()[k], v)
    assert int(bn.num_batches_tracked) == 1


def test_ifa_at_init_is_close_to_eval_bn():
    bn = layer()
    bn.eval()
    g = torch.Generator().manual_seed(2)
    std = torch.sqrt(bn.running_var)[None, :, None, None]
    x = bn.running_mean[None, :, None, None] + std * torch.randn(4, 4, 16, 16, generator=g)
    with bn_mode(bn, "ifa"):
        out = bn(x)
    assert float((out - bn(x)).detach().abs().max()) < 1e-2


def test_ifa_alpha_one_is_instance_norm_and_samples_are_independent():
    bn, x = layer(), x_batch()
    bn.eval()
    with bn_mode(bn, "ifa", alpha=1.0):
        out = bn(x)
    ref = F.instance_norm(x, eps=bn.eps) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    with bn_mode(bn, "ifa"):
        together = bn(x)
        alone = torch.cat([bn(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=0)


def test_small_maps_skip_the_adapter():
    bn = layer()
    bn.eval()
    with torch.no_grad():
        bn.ifa.fc2.bias.fill_(4.0)  # alpha ≈ 1 where the adapter runs
    x = x_batch(hw=1)
    with bn_mode(bn, "ifa"):
        out = bn(x)
    torch.testing.assert_close(out, bn(x))  # H·W < 4: alpha = 0, global statistics


def test_state_dicts_load_both_ways():
    plain = GlyphNet()
    fedfd = GlyphNet(norm_layer=FedFDBatchNorm2d)
    fedfd.load_state_dict(plain.state_dict())  # a plain-BN checkpoint loads unchanged
    plain2 = GlyphNet()
    plain2.load_state_dict(strip_adapter(fedfd.state_dict()))
    x = torch.randn(2, 3, 32, 32)
    plain.eval(), fedfd.eval(), plain2.eval()
    torch.testing.assert_close(fedfd(x), plain(x))
    torch.testing.assert_close(plain2(x), plain(x))
    assert any(".ifa." in k for k in fedfd.state_dict())


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="u_dist"):
        FedFDBatchNorm2d(4, u_dist="gauss")
    with pytest.raises(ValueError, match="local_stats"):
        FedFDBatchNorm2d(4, local_stats="group")
    with pytest.raises(ValueError, match="mode"):
        with bn_mode(layer(), "dream"):
            pass
