"""res8 / res15 (Tang & Lin) with the SubSpectralNorm switch, spec kws-ssn §2.4."""

import pytest
import torch

from devicelab.nn.honk import HonkResNet, SplitBandNorm
from devicelab.nn.ssn import SubSpectralNorm
from devicelab.nn.utils import count_parameters


def test_published_sizes_and_output_shape():
    # Tang & Lin report 110K (res8) and 238K (res15) parameters
    assert count_parameters(HonkResNet("res8")) == 110_307
    assert count_parameters(HonkResNet("res15")) == 237_882
    assert HonkResNet("res15").eval()(torch.randn(2, 1, 21, 40)).shape == (2, 12)


def test_res15_ssn_replaces_every_norm_on_the_frequency_last_axis():
    model = HonkResNet("res15", norm="ssn", ssn_groups=4)
    norms = [m for m in model.modules() if isinstance(m, SubSpectralNorm)]
    assert len(norms) == 13 and all(n.freq_dim == 3 and n.spec_groups == 4 for n in norms)
    # affine "sub" adds 2 * 45 * 4 parameters per layer to the affine-free BatchNorm
    assert count_parameters(model) == count_parameters(HonkResNet("res15")) + 13 * 2 * 45 * 4
    assert model(torch.randn(3, 1, 21, 40)).shape == (3, 12)


@pytest.mark.parametrize("groups", [1, 2, 4, 5, 8, 10, 20, 40])
def test_res15_accepts_the_s_sweep(groups):
    HonkResNet("res15", norm="ssn", ssn_groups=groups).train()(torch.randn(2, 1, 21, 40))


def test_res8_uneven_bands_error_by_default_and_split_on_request():
    with pytest.raises(ValueError, match="F=13.*S=4"):
        HonkResNet("res8", norm="ssn", ssn_groups=4)
    model = HonkResNet("res8", norm="ssn", ssn_groups=4, uneven_bands="split")
    split = [m for m in model.modules() if isinstance(m, SplitBandNorm)]
    assert len(split) == 6 and split[0].band_sizes == [4, 3, 3, 3]
    assert model(torch.randn(2, 1, 41, 40)).shape == (2, 12)


def test_split_band_norm_normalises_each_contiguous_band():
    norm = SplitBandNorm(2, 4, 13, affine="none").train()
    x = torch.randn(6, 2, 9, 13) + torch.arange(13.0)
    y = norm(x)
    start = 0
    for size in norm.band_sizes:
        band = y[..., start : start + size]
        torch.testing.assert_close(band.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
        start += size
