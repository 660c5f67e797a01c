"""Recipe pieces of the centralised baseline: frequency masking."""

import torch

from devicelab.methods.fed_ua.recipe import band_mask


def test_band_mask_zeroes_one_contiguous_band_per_example():
    x = torch.ones(64, 40, 7)
    assert band_mask(x, 0, torch.Generator().manual_seed(0)) is x
    out = band_mask(x, 8, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for row in out[:, :, 0]:
        zero = torch.nonzero(row == 0).flatten()
        assert len(zero) <= 8
        if len(zero):
            assert torch.equal(zero, torch.arange(int(zero[0]), int(zero[0]) + len(zero)))  # contiguous
    assert torch.equal(out[:, :, 0], out[:, :, -1])  # the same bands at every frame
    widths = {int((row == 0).sum()) for row in out[:, :, 0]}
    assert len(widths) > 3  # drawn per example
    assert torch.equal(out, band_mask(x, 8, torch.Generator().manual_seed(0)))  # seeded
