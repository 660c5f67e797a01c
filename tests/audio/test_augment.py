"""Augmentation: time shift, SNR mixing, the BC-ResNet noise recipe and SpecAugment, all seeded."""

import numpy as np
import pytest
import torch

from devicelab.audio.augment import BackgroundNoiseMixer, mix_at_snr, random_crop, spec_augment, time_shift


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_time_shift_moves_content_and_fills_zeros():
    x = torch.arange(1.0, 11.0)
    assert time_shift(x, 3).tolist() == [4, 5, 6, 7, 8, 9, 10, 0, 0, 0]
    assert time_shift(x, -2).tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert torch.equal(time_shift(x, 0), x)


def test_mix_at_snr_gives_the_requested_snr():
    g = torch.Generator().manual_seed(0)
    signal, noise = torch.randn(2, 16000, generator=g), 3.0 * torch.randn(2, 16000, generator=g)
    for snr_db in (-5.0, 0.0, 20.0):
        mixed = mix_at_snr(signal, noise, snr_db)
        residual = mixed - signal
        measured = 10 * torch.log10(signal.pow(2).mean(-1) / residual.pow(2).mean(-1))
        torch.testing.assert_close(measured, torch.full((2,), snr_db), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="shape"):
        mix_at_snr(signal, noise[:, :100], 0.0)


def _mixer() -> BackgroundNoiseMixer:
    g = torch.Generator().manual_seed(1)
    return BackgroundNoiseMixer([0.5 * torch.randn(40000, generator=g), 0.5 * torch.rand(30000, generator=g)])


def test_noise_mixer_is_deterministic_under_a_seed_and_varies_with_it():
    batch = 0.1 * torch.randn(8, 16000, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    a = _mixer()(batch, labels, _rng(5))
    b = _mixer()(batch, labels, _rng(5))
    c = _mixer()(batch, labels, _rng(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.abs().max() <= 1.0


def test_noise_mixer_recipe_silence_always_noisy_and_validation_touches_silence_only():
    batch = torch.zeros(50, 16000)
    batch[:, 4000:12000] = 0.2
    labels = torch.tensor([0] * 10 + [3] * 40)
    train = _mixer()(batch, labels, _rng(0), train=True)
    changed = (train != batch).any(dim=1)
    assert changed[:10].all()  # silence always gets noise
    assert 20 <= int(changed[10:].sum()) <= 40  # p = 0.8 of 40 keyword clips (binomial, wide bounds)
    valid = _mixer()(batch, labels, _rng(0), train=False)
    changed = (valid != batch).any(dim=1)
    assert changed[:10].all() and not changed[10:].any()


def test_random_crop_rejects_short_noise():
    with pytest.raises(ValueError, match="shorter"):
        random_crop(torch.zeros(100), 16000, _rng())
    with pytest.raises(ValueError, match="at least one"):
        BackgroundNoiseMixer([])


def test_spec_augment_masks_bands_and_spans_with_zeros_deterministically():
    x = torch.ones(4, 1, 40, 101)
    a = spec_augment(x, 7, 20, _rng(3))
    assert torch.equal(a, spec_augment(x, 7, 20, _rng(3)))
    assert (a == 0).any() and (a == 1).any()
    for sample in a[:, 0]:
        zero_rows = (sample == 0).all(dim=1).sum()
        zero_cols = (sample == 0).all(dim=0).sum()
        assert zero_rows <= 2 * 6 and zero_cols <= 2 * 19
    assert torch.equal(spec_augment(x, 0, 0, _rng(3)), x)  # zero parameters mask nothing
