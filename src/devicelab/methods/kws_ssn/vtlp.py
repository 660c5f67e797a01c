"""Vocal tract length perturbation (VTLP) of the log-mel front end, a training-time augmentation.

Jaitly & Hinton, "Vocal Tract Length Perturbation (VTLP) improves speech recognition", ICML 2013 workshop,
Eq. (1): each clip's frequency axis is warped by a random factor α before the mel filterbank,
``f' = α f`` for ``f ≤ F_hi · min(α, 1) / α``, then linearly to the Nyquist frequency, which stays fixed.
A clip's mel band m then reads its power at the warped frequencies, so α > 1 moves formants up (a shorter
vocal tract) and α < 1 down. Not in the BC-ResNet recipe: the quick profile adds it (FIDELITY.md, "Quick
recipe") because its test voices are recorded persons that training never hears.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.audio.features import LogMel, hz_to_mel, mel_to_hz


def warp_frequencies(
    freqs_hz: np.ndarray, alpha: float, nyquist_hz: float, f_hi_hz: float = 4800.0
) -> np.ndarray:
    """Jaitly & Hinton Eq. (1): ``α f`` up to the boundary ``F_hi · min(α, 1) / α``, then the straight line
    that maps the Nyquist frequency onto itself."""
    boundary = f_hi_hz * min(alpha, 1.0) / alpha
    slope = (nyquist_hz - f_hi_hz * min(alpha, 1.0)) / (nyquist_hz - boundary)
    return np.where(freqs_hz <= boundary, alpha * freqs_hz, nyquist_hz - slope * (nyquist_hz - freqs_hz))


def triangular_filterbank(frontend: LogMel, freqs_hz: np.ndarray) -> np.ndarray:
    """The front end's triangular mel filters (HTK scale, no normalisation) evaluated at ``freqs_hz``:
    (n_mels, len(freqs_hz)); at the STFT bin frequencies it is the front end's own filterbank."""
    if frontend.mel_norm is not None:
        raise ValueError("VTLP is implemented for un-normalised mel filters (the BC-ResNet front end)")
    f_max = frontend.f_max_hz if frontend.f_max_hz is not None else frontend.sample_rate_hz / 2
    mels = np.linspace(
        hz_to_mel(frontend.f_min_hz, frontend.mel_scale),
        hz_to_mel(f_max, frontend.mel_scale),
        frontend.n_mels + 2,
    )
    edges = mel_to_hz(mels, frontend.mel_scale)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs_hz[None, :] - low) / (centre - low)
    falling = (high - freqs_hz[None, :]) / (high - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


class VtlpLogMel(nn.Module):
    """``LogMel`` with a per-clip warp factor: ``forward(waves, alphas)`` -> (N, n_mels, frames).

    Filterbanks are precomputed on a grid of ``steps`` factors over ``[low, high]``; each clip uses the grid
    point nearest to its α.
    """

    def __init__(self, frontend: LogMel, low: float, high: float, steps: int = 36):
        super().__init__()
        if not 0.0 < low <= high:
            raise ValueError(f"VTLP range [{low}, {high}]: expected 0 < low <= high")
        self.frontend = frontend
        nyquist = frontend.sample_rate_hz / 2
        bins = np.linspace(0.0, nyquist, frontend.n_fft // 2 + 1)
        grid = np.linspace(low, high, steps) if high > low else np.array([low])
        banks = np.stack([triangular_filterbank(frontend, warp_frequencies(bins, a, nyquist)) for a in grid])
        self.register_buffer("grid", torch.tensor(grid, dtype=torch.float32), persistent=False)
        self.register_buffer("banks", torch.tensor(banks, dtype=torch.float32), persistent=False)

    def power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """|STFT|^power (N, bins, frames) with the front end's framing, window and padding."""
        f = self.frontend
        x = waveform
        if f.center:
            half = f.n_fft // 2
            x = F.pad(x.unsqueeze(1), (half, half), mode=f.pad_mode).squeeze(1)
        frames = x.unfold(-1, f.n_fft, f.hop_length) * f.window  # (N, frames, n_fft)
        spec = torch.view_as_real(torch.fft.rfft(frames))
        power = spec[..., 0].square() + spec[..., 1].square()
        return (power if f.power == 2.0 else power.pow(f.power / 2.0)).mT

    def forward(self, waveform: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        nearest = (alphas[:, None] - self.grid[None, :]).abs().argmin(dim=1)
        mel = torch.bmm(self.banks[nearest], self.power_spectrum(waveform))  # (N, n_mels, frames)
        return torch.log(mel + self.frontend.log_offset)
