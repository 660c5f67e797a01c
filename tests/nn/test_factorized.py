"""FactorizedConv2d: parameter formulas, rank-1 kernels, the two-step form, padding and the other readings."""

import pytest
import torch

from devicelab.nn.factorized import FactorizedConv2d, factorized_parameter_count, glorot_uniform_
from devicelab.nn.utils import count_parameters


@pytest.mark.parametrize(("c_in", "c_out", "k_f", "k_t"), [(1, 32, 7, 7), (32, 64, 7, 7), (3, 5, 5, 3)])
def test_rank1_has_cin_cout_kf_plus_kt_plus_cout_parameters(c_in, c_out, k_f, k_t):
    layer = FactorizedConv2d(c_in, c_out, k_f, k_t)
    assert count_parameters(layer) == c_in * c_out * (k_f + k_t) + c_out
    assert factorized_parameter_count(c_in, c_out, k_f, k_t) == count_parameters(layer)


@pytest.mark.parametrize(
    ("mode", "mid"), [("rank1", "in"), ("parallel", "in"), ("sequential", "in"), ("sequential", "out")]
)
def test_every_reading_matches_its_formula(mode, mid):
    layer = FactorizedConv2d(32, 64, 7, 7, mode=mode, mid_channels=mid)
    assert count_parameters(layer) == factorized_parameter_count(32, 64, 7, 7, mode, mid_channels=mid)


def test_rank1_kernels_have_rank_one():
    layer = FactorizedConv2d(4, 6, 7, 5)
    kernel = layer.kernel().detach()
    assert kernel.shape == (6, 4, 7, 5)
    s = torch.linalg.svdvals(kernel)  # (6, 4, 5): singular values of every (o, i) slice
    assert bool((s[..., 1] < 1e-6 * s[..., 0]).all())
    full = torch.nn.Conv2d(4, 6, (7, 5))  # a generic 2D kernel is not rank one: the check can fail
    s_full = torch.linalg.svdvals(full.weight.detach())
    assert bool((s_full[..., 1] > 1e-3 * s_full[..., 0]).all())


def test_two_step_path_equals_the_kernel_path():
    torch.manual_seed(0)
    layer = FactorizedConv2d(3, 5, 7, 5)
    x = torch.randn(2, 3, 11, 13)
    torch.testing.assert_close(layer.forward_two_step(x), layer(x), atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # and the kernel path is an ordinary conv2d with the built kernel
        reference = torch.nn.functional.conv2d(x, layer.kernel(), layer.bias, padding=(3, 2))
    torch.testing.assert_close(layer(x), reference)


@pytest.mark.parametrize("mode", ["rank1", "sequential", "parallel"])
def test_padding_keeps_frequency_and_time(mode):
    layer = FactorizedConv2d(2, 4, 7, 7, mode=mode, inner_act=True)
    assert layer(torch.randn(3, 2, 40, 251)).shape == (3, 4, 40, 251)


def test_parallel_is_a_sum_of_two_1d_convs():
    layer = FactorizedConv2d(2, 3, 5, 3, mode="parallel")
    x = torch.randn(1, 2, 9, 10)
    expected = layer.conv_freq(x) + layer.conv_time(x)
    torch.testing.assert_close(layer(x), expected)
    assert layer.conv_time.bias is None  # one bias for the sum


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode='diagonal'"):
        FactorizedConv2d(1, 2, mode="diagonal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mid_channels"):
        FactorizedConv2d(1, 2, mode="sequential", mid_channels="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rank1"):
        FactorizedConv2d(1, 2, mode="parallel").kernel()


def test_glorot_uniform_bound():
    weight = torch.empty(64, 32, 7, 7)
    glorot_uniform_(weight)
    bound = (6.0 / (32 * 49 + 64 * 49)) ** 0.5
    assert float(weight.abs().max()) <= bound
    assert float(weight.abs().max()) > 0.9 * bound


def test_factor_init_sets_the_scale_not_the_function_after_batchnorm():
    torch.manual_seed(0)
    product = FactorizedConv2d(32, 64, 7, 7, factor_init="product")
    kernel = FactorizedConv2d(32, 64, 7, 7, factor_init="kernel")
    glorot_var = 2.0 / (96 * 49)
    assert float(product.kernel().detach().var()) == pytest.approx(
        glorot_var, rel=0.1
    )  # the product is Glorot-scaled
    assert float(kernel.weight_freq.detach().var()) == pytest.approx(glorot_var, rel=0.1)  # each factor is
    with torch.no_grad():  # rescaling the factors changes nothing once BatchNorm follows
        kernel.weight_freq.copy_(product.weight_freq * 0.5)
        kernel.weight_time.copy_(product.weight_time * 0.4)
    bn = torch.nn.BatchNorm2d(64)
    x = torch.randn(4, 32, 8, 12)
    torch.testing.assert_close(bn(kernel(x)), bn(product(x)), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="factor_init='he'"):
        FactorizedConv2d(1, 2, factor_init="he")  # type: ignore[arg-type]
