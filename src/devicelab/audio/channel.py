"""Channel colouring and noise: RBJ biquads (shelves, peaks, spectral tilt), coloured noise, RMS levels.

Used by the corpus builders to give speakers, sessions and test sets their own channels. Filters follow
R. Bristow-Johnson's "Audio EQ Cookbook" and run as second-order sections (``scipy.signal.sosfilt``).
"""

from __future__ import annotations

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import sosfilt, sosfreqz

EPS = 1e-12


# --- levels ---------------------------------------------------------------------------------------------


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)) + EPS))


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level in dB re. full scale (a full-scale sine reads -3 dBFS)."""
    return 20.0 * np.log10(rms(audio))


def set_rms_dbfs(audio: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale ``audio`` so that its RMS is ``target_dbfs``."""
    return (audio * (db_to_gain(target_dbfs) / rms(audio))).astype(np.float32)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g * noise`` with ``g`` chosen so that the signal-to-noise ratio (by RMS) is ``snr_db``."""
    gain = rms(signal) / (rms(noise) * db_to_gain(snr_db))
    return (signal + gain * noise[: len(signal)]).astype(np.float32)


def trim_silence(audio: np.ndarray, threshold_db: float = -40.0, frame: int = 160) -> tuple[int, int]:
    """``(start, end)`` sample bounds of the part louder than ``threshold_db`` re. the peak (frame RMS)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 0.0:
        return 0, 0
    n_frames = int(np.ceil(len(audio) / frame))
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(audio)] = audio
    frame_rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(frame_rms >= peak * db_to_gain(threshold_db))
    if loud.size == 0:
        return 0, 0
    return int(loud[0] * frame), int(min(len(audio), (loud[-1] + 1) * frame))


# --- biquads (RBJ cookbook) -----------------------------------------------------------------------------


def _normalised(b: list[float], a: list[float]) -> np.ndarray:
    b_arr, a_arr = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    return np.concatenate([b_arr / a_arr[0], a_arr / a_arr[0]])[None, :]  # (1, 6) second-order section


def low_shelf(freq_hz: float, gain_db: float, sample_rate_hz: int, slope: float = 1.0) -> np.ndarray:
    """Low-shelf biquad as one second-order section ``(1, 6)``."""
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq_hz / sample_rate_hz
    alpha = np.sin(w0) / 2.0 * np.sqrt((a_gain + 1.0 / a_gain) * (1.0 / slope - 1.0) + 2.0)
    cos, sq = np.cos(w0), 2.0 * np.sqrt(a_gain) * alpha
    b = [
        a_gain * ((a_gain + 1) - (a_gain - 1) * cos + sq),
        2 * a_gain * ((a_gain - 1) - (a_gain + 1) * cos),
        a_gain * ((a_gain + 1) - (a_gain - 1) * cos - sq),
    ]
    a = [
        (a_gain + 1) + (a_gain - 1) * cos + sq,
        -2 * ((a_gain - 1) + (a_gain + 1) * cos),
        (a_gain + 1) + (a_gain - 1) * cos - sq,
    ]
    return _normalised(b, a)


def high_shelf(freq_hz: float, gain_db: float, sample_rate_hz: int, slope: float = 1.0) -> np.ndarray:
    """High-shelf biquad as one second-order section ``(1, 6)``."""
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq_hz / sample_rate_hz
    alpha = np.sin(w0) / 2.0 * np.sqrt((a_gain + 1.0 / a_gain) * (1.0 / slope - 1.0) + 2.0)
    cos, sq = np.cos(w0), 2.0 * np.sqrt(a_gain) * alpha
    b = [
        a_gain * ((a_gain + 1) + (a_gain - 1) * cos + sq),
        -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos),
        a_gain * ((a_gain + 1) + (a_gain - 1) * cos - sq),
    ]
    a = [
        (a_gain + 1) - (a_gain - 1) * cos + sq,
        2 * ((a_gain - 1) - (a_gain + 1) * cos),
        (a_gain + 1) - (a_gain - 1) * cos - sq,
    ]
    return _normalised(b, a)


def peaking(freq_hz: float, gain_db: float, q: float, sample_rate_hz: int) -> np.ndarray:
    """Peaking-EQ biquad as one second-order section ``(1, 6)``."""
    a_gain = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * freq_hz / sample_rate_hz
    alpha = np.sin(w0) / (2.0 * q)
    cos = np.cos(w0)
    b = [1 + alpha * a_gain, -2 * cos, 1 - alpha * a_gain]
    a = [1 + alpha / a_gain, -2 * cos, 1 - alpha / a_gain]
    return _normalised(b, a)


def apply_sos(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Filter ``audio`` with second-order sections ``sos`` ``(n_sections, 6)``; identity when empty."""
    if sos.size == 0:
        return audio.astype(np.float32, copy=False)
    return sosfilt(sos, audio).astype(np.float32)


def response_db(sos: np.ndarray, freqs_hz: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """Magnitude response of ``sos`` in dB at ``freqs_hz``."""
    _, h = sosfreqz(sos, worN=np.asarray(freqs_hz, dtype=np.float64), fs=sample_rate_hz)
    return 20.0 * np.log10(np.abs(h) + EPS)


def tilt_sos(db_per_octave: float, sample_rate_hz: int, pivot_hz: float = 1000.0) -> np.ndarray:
    """A spectral tilt of about ``db_per_octave`` from 125 Hz to 0.4 fs: high shelves one octave apart,
    each adding one octave's worth of gain, scaled to 0 dB at ``pivot_hz`` (first-order-like slope)."""
    centres = [125.0 * 2.0**k for k in range(8) if 125.0 * 2.0**k * 1.41 < 0.45 * sample_rate_hz]
    sos = np.concatenate([high_shelf(f * 1.41, db_per_octave, sample_rate_hz, slope=0.5) for f in centres])
    gain_at_pivot = response_db(sos, np.array([pivot_hz]), sample_rate_hz)[0]
    sos[0, :3] *= db_to_gain(-gain_at_pivot)
    return sos


def two_shelf_sos(
    low_db: float, high_db: float, sample_rate_hz: int, low_hz: float = 300.0, high_hz: float = 3000.0
) -> np.ndarray:
    """A mild channel: a low shelf and a high shelf."""
    return np.concatenate(
        [low_shelf(low_hz, low_db, sample_rate_hz), high_shelf(high_hz, high_db, sample_rate_hz)]
    )


def random_eq_sos(
    rng: np.random.Generator,
    sample_rate_hz: int,
    n_bands: int = 3,
    max_gain_db: float = 9.0,
    low_hz: float = 150.0,
    high_hz: float = 6000.0,
) -> tuple[np.ndarray, list[dict]]:
    """``n_bands`` peaking filters at log-spaced random centres, gains uniform in ±``max_gain_db``,
    Q uniform in 0.7-2; returns the sections and the band parameters."""
    edges = np.geomspace(low_hz, min(high_hz, 0.45 * sample_rate_hz), n_bands + 1)
    bands = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        bands.append(
            {
                "freq_hz": float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
                "gain_db": float(rng.uniform(-max_gain_db, max_gain_db)),
                "q": float(rng.uniform(0.7, 2.0)),
            }
        )
    return eq_sos(bands, sample_rate_hz), bands


def eq_sos(bands: list[dict], sample_rate_hz: int) -> np.ndarray:
    """Peaking filters from band dicts ``{"freq_hz", "gain_db", "q"}`` (as :func:`random_eq_sos` returns)."""
    return np.concatenate([peaking(b["freq_hz"], b["gain_db"], b["q"], sample_rate_hz) for b in bands])


# --- noise ----------------------------------------------------------------------------------------------


def coloured_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    if exponent == 0:
        shaped = rng.standard_normal(n)
    else:
        m = next_fast_len(max(n, 2), real=True)  # shape a fast-FFT length, then crop
        spectrum = np.fft.rfft(rng.standard_normal(m))
        freqs = np.fft.rfftfreq(m)
        freqs[0] = freqs[1]
        shaped = np.fft.irfft(spectrum / freqs ** (exponent / 2.0), m)[:n]
    shaped = shaped - shaped.mean()
    return (shaped / (np.sqrt(np.mean(shaped**2)) + EPS)).astype(np.float32)


def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return coloured_noise(n, rng, 0.0)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return coloured_noise(n, rng, 1.0)


def brown_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    return coloured_noise(n, rng, 2.0)


def hum_noise(
    n: int,
    sample_rate_hz: int,
    rng: np.random.Generator,
    mains_hz: float = 50.0,
    hiss_db: float = -20.0,
    n_harmonics: int = 6,
) -> np.ndarray:
    """Mains hum (fundamental and decaying odd/even harmonics, random phases) plus white hiss, unit RMS."""
    t = np.arange(n) / sample_rate_hz
    hum = np.zeros(n)
    for k in range(1, n_harmonics + 1):
        if k * mains_hz < sample_rate_hz / 2:
            hum += (1.0 / k) * np.sin(2 * np.pi * k * mains_hz * t + rng.uniform(0, 2 * np.pi))
    hum /= np.sqrt(np.mean(hum**2)) + EPS
    out = hum + db_to_gain(hiss_db) * rng.standard_normal(n)
    return (out / (np.sqrt(np.mean(out**2)) + EPS)).astype(np.float32)


def mulaw_roundtrip(audio: np.ndarray, sample_rate_hz: int, mu: int = 255) -> np.ndarray:
    """Telephone µ-law: resample to 8 kHz, 8-bit µ-law encode/decode (G.711-style companding), back."""
    from devicelab.audio.io import resample

    narrow = np.clip(resample(audio, sample_rate_hz, 8000), -1.0, 1.0)
    companded = np.sign(narrow) * np.log1p(mu * np.abs(narrow)) / np.log1p(mu)
    codes = np.round((companded + 1.0) / 2.0 * 255.0)  # 8-bit code
    decoded = codes / 255.0 * 2.0 - 1.0
    expanded = np.sign(decoded) * ((1.0 + mu) ** np.abs(decoded) - 1.0) / mu
    out = resample(expanded.astype(np.float32), 8000, sample_rate_hz)
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)].astype(np.float32)
