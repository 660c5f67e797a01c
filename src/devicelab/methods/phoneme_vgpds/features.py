"""The MFCC + Δ + ΔΔ front end of spec §2.1 (D = 39) and the cutting of phone tokens from an utterance.

Frame i covers the 25 ms window centred at ``i·hop + window/2`` (12.5 ms for i = 0), so the frames of an
utterance are those of TIMIT's frame convention (:func:`devicelab.data.datasets.timit.frame_labels`).
Features are computed over the whole utterance before cutting, so Δ sees the context [reconstruction].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from devicelab.audio.features import dct_matrix, mel_filterbank
from devicelab.methods.phoneme_vgpds.config import FeatureConfig


def delta(features: Tensor, window: int) -> Tensor:
    """Regression deltas over frames (..., T, F): ``Σ_k k (x_{t+k} − x_{t−k}) / (2 Σ_k k²)``, k = 1..window,
    edge frames replicated (HTK's formula)."""
    if features.shape[-2] == 0:
        return features.clone()
    padded = torch.cat(
        [features[..., :1, :].expand(*features.shape[:-2], window, features.shape[-1]), features]
        + [features[..., -1:, :].expand(*features.shape[:-2], window, features.shape[-1])],
        dim=-2,
    )
    t = features.shape[-2]
    num = sum(
        k * (padded[..., window + k : window + k + t, :] - padded[..., window - k : window - k + t, :])
        for k in range(1, window + 1)
    )
    return num / (2 * sum(k * k for k in range(1, window + 1)))


class PhoneFeatures(nn.Module):
    """Waveform (samples,) -> features (frames, 3·n_cepstra): c0–c12, Δ, ΔΔ, per-utterance CMVN (spec §2.1).

    The Hamming window (``window_ms``) sits centred in the ``n_fft`` frame; the waveform is padded by
    ``(n_fft − window)/2`` zeros on each side, so frame i is centred at ``i·hop + window/2`` and an utterance
    of L samples gives ``1 + (L − window) // hop`` frames.
    """

    def __init__(self, config: FeatureConfig | None = None):
        super().__init__()
        self.config = config = config or FeatureConfig()
        self.window_length = round(config.sample_rate_hz * config.window_ms / 1000)
        self.hop_length = round(config.sample_rate_hz * config.hop_ms / 1000)
        if self.window_length > config.n_fft:
            raise ValueError(f"window of {self.window_length} samples exceeds n_fft={config.n_fft}")
        self.pad = (config.n_fft - self.window_length) // 2
        window = torch.zeros(config.n_fft, dtype=torch.float64)
        window[self.pad : self.pad + self.window_length] = torch.hamming_window(
            self.window_length, periodic=True, dtype=torch.float64
        )
        fbank = mel_filterbank(
            config.sample_rate_hz, config.n_fft, config.n_mels, config.f_min_hz, config.f_max_hz, "htk", None
        )
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel_fbank", torch.tensor(fbank), persistent=False)  # (n_mels, n_fft/2 + 1)
        self.register_buffer(
            "dct", torch.tensor(dct_matrix(config.n_cepstra, config.n_mels)), persistent=False
        )

    @property
    def output_dim(self) -> int:
        return self.config.n_cepstra * (3 if self.config.delta_window > 0 else 1)

    def num_frames(self, num_samples: int) -> int:
        return max(0, 1 + (num_samples - self.window_length) // self.hop_length)

    def cepstra(self, waveform: Tensor) -> Tensor:
        """c0 … c(n_cepstra−1) per frame: (frames, n_cepstra), float64."""
        x = torch.as_tensor(waveform, dtype=torch.float64).reshape(-1)
        if self.num_frames(len(x)) == 0:
            return torch.zeros(0, self.config.n_cepstra, dtype=torch.float64)
        x = torch.nn.functional.pad(x, (self.pad, self.config.n_fft - self.window_length - self.pad))
        spec = torch.stft(
            x,
            n_fft=self.config.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (n_fft/2 + 1, frames)
        mel = self.mel_fbank @ spec.abs().pow(2)  # (n_mels, frames)
        return (self.dct @ torch.log(mel + self.config.log_offset)).T  # (frames, n_cepstra)

    def forward(self, waveform: Tensor) -> Tensor:
        c = self.cepstra(waveform)  # (T, 13)
        if self.config.delta_window > 0:
            d = delta(c, self.config.delta_window)
            c = torch.cat([c, d, delta(d, self.config.delta_window)], dim=-1)  # (T, 39)
        if self.config.cmvn and c.shape[0] > 1:
            c = (c - c.mean(0)) / c.std(0).clamp_min(1e-8)
        return c


def segment_frames(start_sample: int, end_sample: int, num_frames: int, window: int, hop: int) -> range:
    """The frames whose centre ``i·hop + window/2`` lies in the segment ``[start, end)`` (spec §2.1)."""
    first = max(0, int(np.ceil((start_sample - window / 2) / hop)))
    stop = min(num_frames, int(np.ceil((end_sample - window / 2) / hop)))
    return range(first, max(first, stop))


def cut_tokens(
    features: np.ndarray,
    segments: Sequence[tuple[int, int, str]],
    classes: set[str] | None,
    min_frames: int,
    max_frames: int,
    window: int,
    hop: int,
) -> list[tuple[str, np.ndarray]]:
    """(label, frames) of every segment of ``classes`` (None: all) with at least ``min_frames`` frames;
    longer tokens keep their central ``max_frames`` frames (spec §2.1)."""
    tokens = []
    for start, end, label in segments:
        if classes is not None and label not in classes:
            continue
        frames = segment_frames(start, end, len(features), window, hop)
        n = len(frames)
        if n < min_frames:
            continue
        first = frames.start + max(0, (n - max_frames) // 2)
        tokens.append((label, features[first : first + min(n, max_frames)]))
    return tokens
