"""BC-ResNet, spec kws-ssn §8.2: exact parameter counts, 12 SSN sites, shapes."""

import pytest
import torch

from devicelab.nn.bcresnet import BCResNet
from devicelab.nn.ssn import SubSpectralNorm
from devicelab.nn.utils import count_parameters

TAUS = [1, 1.5, 2, 3, 6, 8]
PARAMS_SSN = [9232, 17154, 27284, 54168, 187812, 321068]
PARAMS_BN = [7760, 14946, 24340, 49752, 178980, 309292]


@pytest.mark.parametrize("tau,ssn,bn", list(zip(TAUS, PARAMS_SSN, PARAMS_BN)))
def test_parameter_counts_match_the_paper(tau, ssn, bn):
    assert count_parameters(BCResNet(tau)) == ssn
    assert count_parameters(BCResNet(tau, norm="bn")) == bn


def test_width_matched_and_affine_all_counts():
    assert count_parameters(BCResNet(1, norm="bn", base_width=9)) == 9149
    assert count_parameters(BCResNet(1, ssn_affine="all")) == 7760


def test_exactly_twelve_ssn_sites_and_none_with_bn():
    assert sum(isinstance(m, SubSpectralNorm) for m in BCResNet(1).modules()) == 12
    assert not any(isinstance(m, SubSpectralNorm) for m in BCResNet(1, norm="bn").modules())


@pytest.mark.parametrize("frames", [51, 101, 151])
def test_output_shape_for_several_lengths(frames):
    model = BCResNet(1).eval()
    assert model(torch.randn(2, 1, 40, frames)).shape == (2, 12)


def test_frequency_sizes_after_head_and_stages():
    model = BCResNet(1).eval()
    sizes = []
    model.head.register_forward_hook(lambda m, i, o: sizes.append(o.shape[2]))
    for stage in model.stages:
        stage[-1].register_forward_hook(lambda m, i, o: sizes.append(o.shape[2]))
    model(torch.randn(1, 1, 40, 101))
    assert sizes == [20, 20, 10, 5, 5]


def test_ssn_groups_must_divide_every_frequency_size():
    BCResNet(1, ssn_groups=1)(torch.randn(2, 1, 40, 20))
    with pytest.raises(ValueError, match="F=20.*S=3"):
        BCResNet(1, ssn_groups=3)(torch.randn(2, 1, 40, 20))
    with pytest.raises(ValueError, match="norm"):
        BCResNet(1, norm="ln")


def test_trains_a_step_and_ssn_parameters_get_gradients():
    model = BCResNet(1)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 40, 31)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    ssn = next(m for m in model.modules() if isinstance(m, SubSpectralNorm))
    assert ssn.norm.weight.grad is not None and ssn.norm.weight.grad.abs().sum() > 0
