"""Log-mel and MFCC front ends in plain torch (``torch.fft.rfft`` + a numpy mel matrix), exportable to ONNX.

The defaults are the BC-ResNet recipe (arXiv 2106.04140 §4.1 and its ``utils.py``, which uses torchaudio's
``MelSpectrogram`` defaults): 16 kHz, n_fft 512, a 480-sample Hann window centred in the 512 frame, hop 160,
``center=True`` with reflect padding, power 2, 40 HTK mel bands from 0 to 8 kHz without filter
normalisation, then ``log(mel + 1e-6)``. One second of audio gives 101 frames.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.audio.factored_dft import FactoredSpectrum, choose_factoring, permuted_filterbank

MelScale = Literal["htk", "slaney"]


def hz_to_mel(freq_hz: np.ndarray | float, scale: MelScale = "htk") -> np.ndarray:
    """Hertz to mels: HTK ``2595 log10(1 + f/700)`` or Slaney's linear-then-log scale (as librosa)."""
    f = np.asarray(freq_hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(
        f >= min_log_hz, min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep, mels
    )


def mel_to_hz(mels: np.ndarray | float, scale: MelScale = "htk") -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sample_rate_hz: int,
    n_fft: int,
    n_mels: int,
    f_min_hz: float = 0.0,
    f_max_hz: float | None = None,
    scale: MelScale = "htk",
    norm: Literal["slaney"] | None = None,
) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, n_fft // 2 + 1), float64; same construction as librosa.

    ``norm="slaney"`` scales each triangle to unit area (librosa's default); ``None`` keeps peaks at 1
    (torchaudio's default, used by BC-ResNet).
    """
    f_max_hz = sample_rate_hz / 2 if f_max_hz is None else f_max_hz
    if not 0 <= f_min_hz < f_max_hz <= sample_rate_hz / 2:
        raise ValueError(
            f"mel band edges must satisfy 0 <= f_min < f_max <= sr/2, got {f_min_hz}, {f_max_hz}"
        )
    fft_freqs = np.linspace(0.0, sample_rate_hz / 2, n_fft // 2 + 1)
    mel_points = np.linspace(hz_to_mel(f_min_hz, scale), hz_to_mel(f_max_hz, scale), n_mels + 2)
    edges_hz = mel_to_hz(mel_points, scale)  # (n_mels + 2,)
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    ramps = edges_hz[:, None] - fft_freqs[None, :]  # (n_mels + 2, n_bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))  # (n_mels, n_bins)
    if norm == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"norm={norm!r}: expected 'slaney' or None")
    return weights


def centred_hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """A periodic Hann window of ``win_length`` samples zero-padded symmetrically to ``n_fft`` (float64)."""
    if win_length > n_fft:
        raise ValueError(f"win_length {win_length} exceeds n_fft {n_fft}")
    n = np.arange(win_length)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(window, (left, n_fft - win_length - left))


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape (n_out, n_in): ``mfcc = D @ log_mel``.

    Equals librosa's ``dct_type=2, norm='ortho'`` (and honk's ``librosa.filters.dct``).
    """
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    basis[0] /= np.sqrt(2.0)
    return basis


class LogMel(nn.Module):
    """Waveform (..., samples) -> log-mel spectrogram (..., n_mels, frames).

    BC-ResNet front end (arXiv 2106.04140 §4.1); with ``n_mels=40`` and 1 s at 16 kHz the output of a
    (N, 1, 16000) batch is (N, 1, 40, 101). Exports with the dynamo ONNX exporter; the exported graph
    computes the spectrum as a two-stage DFT in convolutions and matrix products (equal up to rounding).
    """

    CHUNK = 16  # clips per FFT block in eager mode

    def __init__(
        self,
        sample_rate_hz: int = 16000,
        n_fft: int = 512,
        win_length: int = 480,
        hop_length: int = 160,
        n_mels: int = 40,
        f_min_hz: float = 0.0,
        f_max_hz: float | None = None,
        mel_scale: MelScale = "htk",
        mel_norm: Literal["slaney"] | None = None,
        power: float = 2.0,
        log_offset: float = 1e-6,
        center: bool = True,
        pad_mode: str = "reflect",
    ):
        super().__init__()
        self.sample_rate_hz = sample_rate_hz
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.n_mels, self.power, self.log_offset = n_mels, power, log_offset
        self.center, self.pad_mode = center, pad_mode
        self.f_min_hz, self.f_max_hz, self.mel_scale, self.mel_norm = f_min_hz, f_max_hz, mel_scale, mel_norm
        window = centred_hann_window(win_length, n_fft)
        fbank = mel_filterbank(sample_rate_hz, n_fft, n_mels, f_min_hz, f_max_hz, mel_scale, mel_norm)
        self.register_buffer("window", torch.tensor(window, dtype=torch.float32), persistent=False)
        self.register_buffer("mel_fbank", torch.tensor(fbank, dtype=torch.float32), persistent=False)
        factoring = choose_factoring(n_fft, hop_length)
        self._factored = FactoredSpectrum(factoring) if factoring is not None else None

    def librosa_reference(self, audio: np.ndarray) -> np.ndarray:
        """The same log-mel computed by librosa: the parity oracle of the tests and the benchmark.

        Imports librosa (slow to start; never on a training or inference path).
        """
        import librosa

        mel = librosa.feature.melspectrogram(
            y=audio,
            sr=self.sample_rate_hz,
            n_fft=self.n_fft,
            win_length=self.win_length,
            hop_length=self.hop_length,
            window="hann",
            center=self.center,
            pad_mode=self.pad_mode,
            power=self.power,
            n_mels=self.n_mels,
            fmin=self.f_min_hz,
            fmax=self.f_max_hz if self.f_max_hz is not None else self.sample_rate_hz / 2,
            htk=self.mel_scale == "htk",
            norm=self.mel_norm,
        )
        return np.log(mel + self.log_offset)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a clip of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def power_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram before the log, (..., n_mels, frames).

        Eager: framing by ``unfold``, ``torch.fft.rfft`` and ``|X|² = Re² + Im²`` on blocks of
        :attr:`CHUNK` clips (they stay in cache). Under ONNX export: the equal two-stage DFT of
        :mod:`devicelab.audio.factored_dft` (convolutions and matrix products instead of ``STFT``)."""
        lead = waveform.shape[:-1]
        x = waveform.reshape(-1, waveform.shape[-1])  # (B, samples)
        if self.center:
            half = self.n_fft // 2
            x = F.pad(x.unsqueeze(1), (half, half), mode=self.pad_mode).squeeze(1)
        if torch.compiler.is_exporting() and self._factored is not None:
            mel = self._factored_mel(x)
        elif x.shape[0] > self.CHUNK:
            mel = torch.cat([self._rfft_mel(c) for c in x.split(self.CHUNK)])
        else:
            mel = self._rfft_mel(x)
        return mel.reshape(*lead, self.n_mels, mel.shape[-1])

    def _rfft_mel(self, padded: torch.Tensor) -> torch.Tensor:
        frames = padded.unfold(-1, self.n_fft, self.hop_length) * self.window  # (B, T, n_fft)
        spec = torch.view_as_real(torch.fft.rfft(frames))  # (B, T, n_bins, 2)
        power = self._exponent(spec[..., 0].square() + spec[..., 1].square())
        return torch.matmul(self.mel_fbank, power.mT)  # (B, n_mels, T)

    def _exponent(self, squared: torch.Tensor) -> torch.Tensor:
        """|X|² -> |X|^power; magnitude by ``sqrt`` (ONNX Runtime's ``Pow`` is several times slower)."""
        if self.power == 2.0:
            return squared
        return squared.sqrt() if self.power == 1.0 else squared.pow(self.power / 2.0)

    def _factored_mel(self, padded: torch.Tensor) -> torch.Tensor:
        frames = 1 + (padded.shape[-1] - self.n_fft) // self.hop_length
        power = self._exponent(self._factored(padded, self.window, frames))  # (B, slots, T), bins permuted
        return torch.matmul(permuted_filterbank(self.mel_fbank, self._factored.bins), power)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.log(self.power_mel(waveform) + self.log_offset)


class MFCC(nn.Module):
    """Waveform (..., samples) -> MFCC (..., n_mfcc, frames): orthonormal DCT-II of :class:`LogMel` output.

    Defaults are the honk res8/res15 features (Tang & Lin; ``castorini/honk`` ``manage_audio.py``): 40 MFCC
    from 40 mel bands, n_fft = window = 480, hop 160, 20 Hz - 4 kHz, librosa's Slaney mel scale and
    normalisation. Honk takes the log of positive entries only; a ``log_offset`` of 1e-6 keeps it finite
    [reconstruction].
    """

    def __init__(
        self,
        n_mfcc: int = 40,
        sample_rate_hz: int = 16000,
        n_fft: int = 480,
        win_length: int = 480,
        hop_length: int = 160,
        n_mels: int = 40,
        f_min_hz: float = 20.0,
        f_max_hz: float | None = 4000.0,
        mel_scale: MelScale = "slaney",
        mel_norm: Literal["slaney"] | None = "slaney",
        log_offset: float = 1e-6,
    ):
        super().__init__()
        if n_mfcc > n_mels:
            raise ValueError(f"n_mfcc {n_mfcc} exceeds n_mels {n_mels}")
        self.log_mel = LogMel(
            sample_rate_hz,
            n_fft,
            win_length,
            hop_length,
            n_mels,
            f_min_hz,
            f_max_hz,
            mel_scale,
            mel_norm,
            log_offset=log_offset,
        )
        self.register_buffer(
            "dct", torch.tensor(dct_matrix(n_mfcc, n_mels), dtype=torch.float32), persistent=False
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.dct, self.log_mel(waveform))  # (..., n_mfcc, frames)
