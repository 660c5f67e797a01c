"""Wave reading and writing (soundfile) and resampling (polyphase, scipy)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


def read_wav(
    path: str | Path, sample_rate_hz: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read audio as float32 in [-1, 1]; mix to mono and resample to ``sample_rate_hz`` when given."""
    path = Path(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    audio = audio.mean(axis=1) if mono else audio.T
    if sample_rate_hz is not None and sr != sample_rate_hz:
        audio, sr = resample(audio, sr, sample_rate_hz), sample_rate_hz
    return audio.astype(np.float32, copy=False), sr


def write_wav(path: str | Path, audio: np.ndarray, sample_rate_hz: int, subtype: str = "PCM_16") -> None:
    """Write mono (T,) or multi-channel (C, T) float audio atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 2:
        data = data.T
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    sf.write(str(tmp), np.clip(data, -1.0, 1.0), sample_rate_hz, subtype=subtype, format="WAV")
    os.replace(tmp, path)


def resample(audio: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Polyphase resampling along the last axis (``scipy.signal.resample_poly`` with a Kaiser window)."""
    if from_hz == to_hz:
        return audio
    ratio = Fraction(to_hz, from_hz).limit_denominator(1000)
    return resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)
