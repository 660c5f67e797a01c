"""Channel DSP (devicelab.audio.channel): biquad responses, spectral tilt, coloured noise, levels, codecs."""

from __future__ import annotations

import numpy as np
import pytest

from devicelab.audio import channel as ch

SR = 16000


def test_shelves_and_peaks_reach_their_gains() -> None:
    low = ch.response_db(ch.low_shelf(300, 6.0, SR), np.array([30.0, 6000.0]), SR)
    high = ch.response_db(ch.high_shelf(3000, -4.0, SR), np.array([100.0, 7500.0]), SR)
    peak = ch.response_db(ch.peaking(1000, 9.0, 1.0, SR), np.array([1000.0, 60.0]), SR)
    assert low == pytest.approx([6.0, 0.0], abs=0.3)
    assert high == pytest.approx([0.0, -4.0], abs=0.3)
    assert peak == pytest.approx([9.0, 0.0], abs=0.3)


@pytest.mark.parametrize("slope", [-6.0, 6.0])
def test_tilt_has_the_slope_per_octave(slope: float) -> None:
    freqs = np.array([250.0, 500.0, 1000.0, 2000.0, 4000.0])
    gains = ch.response_db(ch.tilt_sos(slope, SR), freqs, SR)
    assert gains[2] == pytest.approx(0.0, abs=0.05)  # pivot at 1 kHz
    assert np.diff(gains) == pytest.approx([slope] * 4, abs=1.5)


@pytest.mark.parametrize(("make", "exponent"), [(ch.white_noise, 0), (ch.pink_noise, 1), (ch.brown_noise, 2)])
def test_coloured_noise_spectra(make, exponent: int) -> None:
    noise = make(2**16 + 17, np.random.default_rng(0))
    assert ch.rms(noise) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(len(noise))
    band = lambda lo, hi: power[(freqs >= lo) & (freqs < hi)].mean()  # noqa: E731
    octaves = 10 * np.log10(band(0.01, 0.02) / band(0.08, 0.16))  # three octaves apart
    assert octaves == pytest.approx(3 * 3.01 * exponent, abs=1.5)


def test_levels_snr_and_trim() -> None:
    rng = np.random.default_rng(1)
    x = ch.set_rms_dbfs(rng.standard_normal(16000).astype(np.float32), -26.0)
    assert ch.rms_dbfs(x) == pytest.approx(-26.0, abs=1e-3)
    noise = rng.standard_normal(16000).astype(np.float32)
    mixed = ch.mix_at_snr(x, noise, 20.0)
    assert ch.rms_dbfs(x) - ch.rms_dbfs(mixed - x) == pytest.approx(20.0, abs=1e-3)
    padded = np.concatenate([np.zeros(3200), x, np.zeros(1600)]).astype(np.float32)
    start, end = ch.trim_silence(padded)
    assert abs(start - 3200) <= 160 and abs(end - 19200) <= 160


def test_hum_and_mulaw() -> None:
    hum = ch.hum_noise(SR, SR, np.random.default_rng(0), mains_hz=50.0)
    spectrum = np.abs(np.fft.rfft(hum))
    assert np.argmax(spectrum) == 50
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    coded = ch.mulaw_roundtrip(tone, SR)
    assert coded.shape == tone.shape and np.corrcoef(tone[800:-800], coded[800:-800])[0, 1] > 0.99
    assert not np.allclose(tone, coded, atol=1e-4)
