"""A two-stage real DFT in convolutions and matrix products: the ONNX form of :class:`LogMel`'s spectrum.

``torch.stft`` exports as ONNX ``STFT`` and ``torch.fft.rfft`` as ``DFT``; ONNX Runtime's CPU kernels for
both are slower than plain matrix products, and a direct DFT matrix costs ``n_fft × (n_fft + 2)`` MACs per
frame. Cooley-Tukey with ``n_fft = N1 · N2`` and sample ``n = N2·n1 + n2`` splits the DFT into

- stage 1: ``Y[n2, k1] = Σ_n1 w[n] x[n] e^(-2πi n1 k1 / N1)``, a strided grouped ``Conv1d`` over the padded
  signal viewed as ``(N2, L / N2)`` (the window is folded into its weights; only ``k1 ≤ N1/2`` is computed,
  the rest are conjugates);
- stage 2: ``X[k] = Σ_n2 e^(-2πi n2 k / N) Y[n2, k mod N1]``, a batched matrix product, one block per
  ``m = min(k1, N1 - k1)``, each block giving the ``N2`` bins that share ``m`` (twiddles folded in).

For n_fft 512 and hop 160 (N1 32, N2 16) that is about 35 k MACs per frame instead of 263 k. Bins come out
permuted; :func:`permuted_filterbank` reorders the mel matrix to match, so the log-mel is the same up to
float rounding (checked against ``torch.stft`` in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Factoring:
    """``n_fft = n1 · n2``; ``n2`` divides the hop, so frames are a strided convolution."""

    n_fft: int
    hop: int
    n1: int
    n2: int

    @property
    def blocks(self) -> int:
        return self.n1 // 2 + 1

    @property
    def macs_per_frame(self) -> int:
        return self.n2 * (self.n1 + 2) * self.n1 + self.blocks * (2 * self.n2) ** 2


def choose_factoring(n_fft: int, hop: int) -> Factoring | None:
    """The cheapest split with even ``n1 ≥ 4`` and ``n2 ≥ 2`` dividing the hop; ``None`` when none exists."""
    options = [
        Factoring(n_fft, hop, n_fft // n2, n2)
        for n2 in range(2, n_fft // 4 + 1)
        if n_fft % n2 == 0 and hop % n2 == 0 and (n_fft // n2) % 2 == 0
    ]
    return min(options, key=lambda f: f.macs_per_frame) if options else None


def stage1_basis(f: Factoring) -> np.ndarray:
    """(2 · blocks, n1): rows ``cos(2π n1 k1 / N1)`` for k1 = 0..N1/2, then ``-sin`` for the same k1."""
    k1 = np.arange(f.blocks)[:, None]
    n1 = np.arange(f.n1)[None, :]
    angle = 2.0 * np.pi * n1 * k1 / f.n1
    return np.concatenate([np.cos(angle), -np.sin(angle)])


def stage2_weights(f: Factoring) -> tuple[np.ndarray, np.ndarray]:
    """Blocked twiddle-and-DFT matrices (blocks, 2·n2, 2·n2) and the bin of each output slot (blocks, n2).

    Block m reads ``[Re Y[·, m], Im Y[·, m]]`` (2·n2 values) and writes ``[Re X, Im X]`` for its bins; slots
    without a bin hold -1 (their weights are zero)."""
    n, g = f.n_fft, f.n2
    weights = np.zeros((f.blocks, 2 * g, 2 * g))
    bins = np.full((f.blocks, g), -1, dtype=np.int64)
    used = np.zeros(f.blocks, dtype=np.int64)
    n2 = np.arange(g)
    for k in range(n // 2 + 1):
        k1 = k % f.n1
        m, s = (k1, 1.0) if k1 <= f.n1 // 2 else (f.n1 - k1, -1.0)
        b = used[m]
        used[m] += 1
        bins[m, b] = k
        c, d = np.cos(2.0 * np.pi * n2 * k / n), np.sin(2.0 * np.pi * n2 * k / n)
        weights[m, :g, b], weights[m, g:, b] = c, s * d  # Re X = Σ c·Re Y + s·d·Im Y
        weights[m, :g, g + b], weights[m, g:, g + b] = -d, s * c  # Im X = Σ -d·Re Y + s·c·Im Y
    return weights, bins


def permuted_filterbank(fbank: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """(n_mels, n_bins) mel matrix -> (n_mels, blocks · n2) in the stage-2 output order (zero where -1)."""
    padded = F.pad(fbank, (0, 1))  # column n_bins is zero: where bins == -1
    index = torch.where(bins < 0, fbank.shape[-1], bins).reshape(-1)
    return padded.index_select(1, index)


class FactoredSpectrum(torch.nn.Module):
    """Padded signal (B, L) -> power spectrum (B, blocks · n2, frames) with bins in :attr:`bins` order."""

    def __init__(self, factoring: Factoring):
        super().__init__()
        self.f = factoring
        weights, bins = stage2_weights(factoring)
        self.register_buffer("basis", torch.tensor(stage1_basis(factoring), dtype=torch.float32), False)
        # rows read (n2, [re, im]) interleaved, as stage 1 writes them; transposed for a left product
        rows = weights.reshape(factoring.blocks, 2, factoring.n2, 2 * factoring.n2).transpose(0, 2, 1, 3)
        stage2_t = rows.reshape(factoring.blocks, 2 * factoring.n2, 2 * factoring.n2).transpose(0, 2, 1)
        self.register_buffer("stage2_t", torch.tensor(stage2_t.copy(), dtype=torch.float32), False)
        self.register_buffer("bins", torch.tensor(bins), False)

    def stage1_weight(self, window: torch.Tensor) -> torch.Tensor:
        """Grouped Conv1d weight (n2 · 2 · blocks, 1, n1): the window folded into the stage-1 basis."""
        f = self.f
        w = window.reshape(f.n1, f.n2).T  # w[N2·n1 + n2] at [n2, n1]
        return (self.basis[None] * w[:, None, :]).reshape(f.n2 * 2 * f.blocks, 1, f.n1)

    def forward(self, padded: torch.Tensor, window: torch.Tensor, frames: int) -> torch.Tensor:
        """Power spectrum (B, blocks · n2, frames), frames on the last axis (no transpose of it anywhere)."""
        f = self.f
        batch, length = padded.shape
        rows = math.ceil(length / f.n2)
        x = F.pad(padded, (0, rows * f.n2 - length)).reshape(batch, rows, f.n2).transpose(1, 2)
        y = F.conv1d(x, self.stage1_weight(window), stride=f.hop // f.n2, groups=f.n2)[..., :frames]
        # (B, n2 · [re, im] · blocks, T) -> (B, blocks, n2 · [re, im], T): T stays innermost
        y = y.reshape(batch, f.n2, 2, f.blocks, frames).permute(0, 3, 1, 2, 4)
        z = torch.matmul(self.stage2_t, y.reshape(batch, f.blocks, 2 * f.n2, frames))  # (B, blocks, 2·n2, T)
        squares = (z * z).reshape(batch, f.blocks, 2, f.n2, frames)  # Mul, not Pow, in the graph
        return squares.sum(2).reshape(batch, f.blocks * f.n2, frames)
