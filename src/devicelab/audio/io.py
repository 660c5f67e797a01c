"""Wave reading and writing (soundfile) and resampling (polyphase, scipy).

:func:`read_wav` checks what it reads: a WAV file cut short (its header promises more audio than it holds),
an empty file and NaN or infinite samples are :class:`AudioError` naming the file.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file."""


def wav_shortfall(path: str | Path) -> int:
    """Bytes of audio a RIFF/WAVE file's header promises beyond the end of the file (0 when complete or not
    a WAV file). A positive value means the file was cut short (an interrupted copy or download)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"data":
                if length == 0xFFFFFFFF:  # streaming writers leave the size open
                    return 0
                return max(0, pos + 8 + length - size)
            pos += 8 + length + (length & 1)
    return 0


def check_audio(path: str | Path, audio: np.ndarray) -> np.ndarray:
    """``audio`` if it is non-empty and finite, else an :class:`AudioError` naming ``path``."""
    if audio.size == 0:
        raise AudioError(f"{path}: holds no audio samples")
    if not np.isfinite(audio).all():
        bad = int(np.size(audio) - np.isfinite(audio).sum())
        raise AudioError(f"{path}: {bad} NaN or infinite samples")
    return audio


def read_wav(
    path: str | Path, sample_rate_hz: int | None = None, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read audio as float32 in [-1, 1]; mix to mono and resample to ``sample_rate_hz`` when given.

    Raises :class:`AudioError` naming the file when it cannot be decoded, is cut short, is empty or holds
    NaN or infinite samples.
    """
    path = Path(path)
    try:
        missing = wav_shortfall(path)
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, struct.error) as e:
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    if missing:
        raise AudioError(
            f"{path}: truncated: the header promises {missing} more bytes of audio than the file holds"
        )
    check_audio(path, audio)
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
