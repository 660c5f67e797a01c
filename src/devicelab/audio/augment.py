"""Seeded audio augmentation: time shift, noise at a given SNR, BC-ResNet background noise, SpecAugment.

Every random choice comes from a ``numpy.random.Generator`` passed by the caller, so an epoch's augmentation
is reproduced exactly from ``devicelab.core.seeding.child_rng(seed, "augment", epoch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def time_shift(waveform: torch.Tensor, shift_samples: int) -> torch.Tensor:
    """Shift (..., samples) by ``shift_samples`` with zero fill: positive moves the audio earlier.

    Matches BC-ResNet ``utils.py``: a positive shift drops the first samples and pads zeros at the end.
    """
    if shift_samples == 0:
        return waveform.clone()
    out = torch.zeros_like(waveform)
    if shift_samples > 0:
        out[..., : waveform.shape[-1] - shift_samples] = waveform[..., shift_samples:]
    else:
        out[..., -shift_samples:] = waveform[..., : waveform.shape[-1] + shift_samples]
    return out


def random_time_shift(
    waveform: torch.Tensor, max_shift_ms: float, sample_rate_hz: int, rng: np.random.Generator
) -> torch.Tensor:
    """:func:`time_shift` by ``int(U(-max, +max) * sr)`` samples (BC-ResNet draws a float, then truncates)."""
    shift = int(rng.uniform(-max_shift_ms / 1000.0, max_shift_ms / 1000.0) * sample_rate_hz)
    return time_shift(waveform, shift)


def mix_at_snr(signal: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``signal + g * noise`` with ``g`` chosen so that power(signal) / power(g * noise) = 10^(snr_db / 10).

    Both (..., samples) of the same shape; a silent signal is returned unchanged (its SNR is undefined).
    """
    if signal.shape != noise.shape:
        raise ValueError(f"signal {tuple(signal.shape)} and noise {tuple(noise.shape)} differ in shape")
    p_signal = signal.pow(2).mean(dim=-1, keepdim=True)
    p_noise = noise.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-20)
    gain = torch.sqrt(p_signal / (p_noise * 10.0 ** (snr_db / 10.0)))
    return signal + gain * noise


def random_crop(noise: torch.Tensor, length: int, rng: np.random.Generator) -> torch.Tensor:
    """A random window of ``length`` samples from a 1-D noise recording."""
    if noise.shape[-1] < length:
        raise ValueError(f"noise recording of {noise.shape[-1]} samples is shorter than {length}")
    start = int(rng.integers(0, noise.shape[-1] - length + 1))
    return noise[start : start + length]


@dataclass
class BackgroundNoiseMixer:
    """The BC-ResNet training augmentation (arXiv 2106.04140 §4.1; ``utils.py`` ``Preprocess``).

    Per clip (label ``silence_label`` marks ``_silence_``):
      train: with probability ``noise_prob`` add a random 1 s crop of a random noise file scaled by
      U(0, ``max_amplitude``) and shift the clip by U(-``max_shift_ms``, +``max_shift_ms``) with zero fill
      (the shift happens only together with the noise, as in the official code); silence clips always get
      noise scaled by U(0, ``silence_max_amplitude``); clamp to [-1, 1].
      validation (``train=False``): noise U(0, ``silence_max_amplitude``) on silence clips only, no shift.
    """

    noises: Sequence[torch.Tensor]  # 1-D float recordings at the clip's sample rate
    sample_rate_hz: int = 16000
    noise_prob: float = 0.8
    max_amplitude: float = 0.1
    silence_max_amplitude: float = 1.0
    max_shift_ms: float = 100.0
    silence_label: int = 0

    def __post_init__(self) -> None:
        if not self.noises:
            raise ValueError("BackgroundNoiseMixer needs at least one noise recording")

    def __call__(
        self, batch: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator, train: bool = True
    ) -> torch.Tensor:
        """Augment a batch (N, samples) or (N, 1, samples); returns a new tensor."""
        out = batch.clone()
        length = batch.shape[-1]
        for i in range(batch.shape[0]):
            is_silence = int(labels[i]) == self.silence_label
            # the draw order follows the official code: keep-or-not, amplitude, file, offset, shift
            if not is_silence and (not train or rng.random() > self.noise_prob):
                continue
            amplitude = rng.uniform(0.0, self.silence_max_amplitude if is_silence else self.max_amplitude)
            noise = self.noises[int(rng.integers(len(self.noises)))]
            crop = amplitude * random_crop(noise, length, rng).to(out.dtype)
            clip = random_time_shift(out[i], self.max_shift_ms, self.sample_rate_hz, rng) if train else out[i]
            out[i] = torch.clamp(clip + crop, -1.0, 1.0)
        return out


def spec_augment(
    features: torch.Tensor,
    freq_mask_param: int,
    time_mask_param: int,
    rng: np.random.Generator,
    n_freq_masks: int = 2,
    n_time_masks: int = 2,
) -> torch.Tensor:
    """SpecAugment masks (Park et al. 2019) set to 0 on (N, C, F, T), as BC-ResNet ``spec_augment``.

    Per sample: ``n_freq_masks`` bands of width ``int(U(0, freq_mask_param))`` and ``n_time_masks`` spans of
    width ``int(U(0, time_mask_param))`` at uniform offsets. Returns a new tensor.
    """
    out = features.clone()
    n_freq, n_time = out.shape[-2], out.shape[-1]
    for i in range(out.shape[0]):
        for _ in range(n_freq_masks):
            width = int(rng.uniform(0.0, freq_mask_param))
            start = int(rng.integers(0, n_freq - width + 1))
            out[i, ..., start : start + width, :] = 0.0
        for _ in range(n_time_masks):
            width = int(rng.uniform(0.0, time_mask_param))
            start = int(rng.integers(0, n_time - width + 1))
            out[i, ..., start : start + width] = 0.0
    return out
