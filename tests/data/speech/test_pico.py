"""SVOX Pico (ttspico): renderings, speed and pitch factors, the missing-package error, the accent voices'
respellings, and synth-commands' Pico voices (training only, the test and validation speakers unchanged)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.corpora import synth_commands as sc
from devicelab.data.corpora import synth_phones
from devicelab.data.corpora._speech import FEMALE_PERSONS, recorded_voices, trimmed, usable_engines
from devicelab.data.debs import MissingToolError
from devicelab.data.speech import ENGINES
from devicelab.data.speech.engines import (
    FRENCH_RESPELLINGS,
    GERMAN_RESPELLINGS,
    PICO_ACCENT_VOICES,
    PICO_VOICES,
    ROMANCE_RESPELLINGS,
    SPANISH_RESPELLINGS,
    EngineError,
    PicoEngine,
    respell,
)
from devicelab.data.speech.texts import command_words


def median_f0(audio: np.ndarray, sample_rate_hz: int, fmin: float = 60.0, fmax: float = 700.0) -> float:
    """Median F0 (Hz) of the loud 40 ms frames, from the autocorrelation peak."""
    frame, hop = int(0.04 * sample_rate_hz), int(0.01 * sample_rate_hz)
    lo, hi = int(sample_rate_hz / fmax), int(sample_rate_hz / fmin)
    peak_rms = max(np.sqrt(np.mean(audio[i : i + frame] ** 2)) for i in range(0, len(audio) - frame, hop))
    f0s = []
    for i in range(0, len(audio) - frame, hop):
        x = audio[i : i + frame].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.3 * peak_rms:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, mode="full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0s.append(sample_rate_hz / lag)
    return float(np.median(f0s))


def test_pico_renders_english_words_at_16k_without_phones() -> None:
    engine = PicoEngine()
    assert ENGINES["pico"] is PicoEngine and list(PICO_VOICES) == ["en-US", "en-GB"]
    assert engine.voices() == ["en-US", "en-GB", "es-ES", "it-IT", "fr-FR", "de-DE"]
    assert engine.version() == "0.3.2"
    for voice in PICO_VOICES:
        r = engine.synth("seven", voice)
        assert r.sample_rate_hz == 16000 and r.audio.dtype == np.float32
        speech = trimmed(r.audio)
        assert 0.25 < len(speech) / 16000 < 0.8
        assert 0.1 < float(np.max(np.abs(r.audio))) < 0.75  # not silent, never clipped
        assert r.phones == [] and r.words is None and r.engine == "pico" and r.voice == voice
        assert "spoken_as" not in r.parameters  # English voices read the text itself
    with pytest.raises(EngineError, match="unknown voice"):
        engine.synth("yes", "nl-NL")


def test_every_word_has_a_respelling_in_each_accent_table() -> None:
    assert PICO_ACCENT_VOICES == {
        "es-ES": SPANISH_RESPELLINGS,
        "it-IT": ROMANCE_RESPELLINGS,
        "fr-FR": FRENCH_RESPELLINGS,
        "de-DE": GERMAN_RESPELLINGS,
    }
    words = set(command_words())
    assert len(words) == 35 and set(ROMANCE_RESPELLINGS) == words
    for table in (SPANISH_RESPELLINGS, FRENCH_RESPELLINGS, GERMAN_RESPELLINGS):
        assert set(table) == words and all(table[w].strip() and " " not in table[w] for w in words)
    # Spanish keeps the Romance respelling where Spanish reads it alike (ch, sc and z differ)
    assert SPANISH_RESPELLINGS["left"] == ROMANCE_RESPELLINGS["left"] == "left"
    assert (SPANISH_RESPELLINGS["cat"], ROMANCE_RESPELLINGS["cat"]) == ("quet", "chet")
    # one function for every engine's accent voices, word by word; English voices read the text itself
    assert respell("Go left", "de-DE") == "goh left" and respell("Go left", "fr-FR") == "go lefte"
    assert respell("sheila", "it-IT") == respell("sheila", "lp_diphone") == "scila"
    assert respell("six", "en-US") == "six"


def test_pico_accent_voices_read_respellings_and_render_speech() -> None:
    """Each accent voice says its respelling: not silent, a word's length, not clipped, `spoken_as` kept."""
    engine = PicoEngine()
    for voice, table in PICO_ACCENT_VOICES.items():
        for word in ("happy", "two"):  # respelled in every table
            r = engine.synth(word, voice)
            assert r.text == word and r.parameters["spoken_as"] == table[word]
            assert r.sample_rate_hz == 16000 and r.voice == voice
            assert 0.15 < len(trimmed(r.audio)) / 16000 < 1.2, (voice, word)
            assert 0.1 < float(np.max(np.abs(r.audio))) < 0.85, (voice, word)


def test_pico_speed_changes_duration_and_pitch_moves_f0_keeping_duration() -> None:
    engine = PicoEngine()
    base = engine.synth("three", "en-US")
    n = len(trimmed(base.audio))
    assert len(trimmed(engine.synth("three", "en-US", speed=1.5).audio)) < 0.8 * n
    assert len(trimmed(engine.synth("three", "en-US", speed=0.7).audio)) > 1.25 * n
    f0 = median_f0(base.audio, 16000)
    for factor in (0.7, 1.6, 2.4):  # 2.4: the pitch property's 2.0, the rest by sox
        r = engine.synth("three", "en-US", pitch=factor)
        assert median_f0(r.audio, 16000) / f0 == pytest.approx(factor, rel=0.1), factor
        assert len(r.audio) == len(base.audio)  # same phone durations
        assert r.parameters["pico_pitch"] == min(200, round(100 * factor))
    with pytest.raises(EngineError, match="speed"):
        engine.synth("three", "en-US", speed=8.0)


def test_pico_is_repeatable_after_reset() -> None:
    engine = PicoEngine()
    runs = []
    for other in ("Something else", "Another thing entirely"):
        engine.synth(other, "en-GB")
        PicoEngine.reset()
        runs.append([engine.synth(t, "en-GB", speed=0.9, pitch=1.2).audio for t in ("seven", "go")])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_missing_ttspico_names_the_pip_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ttspico", None)  # import ttspico raises ImportError
    with pytest.raises(MissingToolError, match=r"pip install ttspico==0\.3\.2") as raised:
        PicoEngine().check()
    assert "\n" not in str(raised.value)
    assert not PicoEngine().available()
    choice = SimpleNamespace(flite_voices=(), festival_voices=(), mbrola_voices=(), pico_voices=("en-US",))
    quick = SimpleNamespace(profile="quick", fetcher=SimpleNamespace(cache=tmp_path))
    with pytest.raises(MissingToolError, match="ttspico"):  # quick and full need every engine they name
        usable_engines(choice, quick)
    smoke = SimpleNamespace(profile="smoke", fetcher=quick.fetcher)
    engines, warnings = usable_engines(choice, smoke)
    assert engines == ["espeak-ng"] and "engine pico skipped" in warnings[0]


def test_pico_voices_train_only_and_leave_test_and_validation_unchanged() -> None:
    english, accent = ("en-US", "en-GB"), ("es-ES", "it-IT", "fr-FR", "de-DE")
    assert sc.PROFILES["quick"].pico_voices == english
    assert sc.PROFILES["full"].pico_voices == (*english, *accent)
    assert sc.PROFILES["smoke"].pico_voices == ()
    params = replace(sc.PROFILES["quick"], pico_voices=(*english, *accent))  # every Pico voice, quick's plan
    with_pico = sc.plan_speakers(params, seed=0)
    english_only = sc.plan_speakers(replace(params, pico_voices=english), seed=0)
    without = sc.plan_speakers(replace(params, pico_voices=()), seed=0)
    pico = [s for s in with_pico if s.voice.engine == "pico"]
    assert len(pico) == 6 * params.tuples_per_voice
    assert {s.split for s in pico} == {"train"}
    persons = {s.voice.voice: s.voice.person for s in pico}  # each Pico voice is its own person, a woman
    assert persons == {
        "en-US": "lh0",
        "en-GB": "kh0",
        "es-ES": "zl0",
        "it-IT": "cm0",
        "fr-FR": "nk0",
        "de-DE": "gl0",
    }
    assert set(persons.values()) <= FEMALE_PERSONS
    assert all(s.voice.split_unit == f"person:{s.voice.person}" for s in pico)
    for split in ("test", "validation"):  # the same pseudo-speakers: same voices, tuples, channels, ids
        same = {s for s in with_pico if s.split == split}
        assert (
            same == {s for s in english_only if s.split == split} == {s for s in without if s.split == split}
        )
        assert all(s.voice.engine != "pico" for s in same)
    assert [s for s in with_pico if s.voice.engine != "pico"] == without  # nobody else moved either
    # the accent voices add speakers after the earlier ones and change none of them (English Pico included)
    assert with_pico[: len(english_only)] == english_only
    assert {s.voice.voice for s in with_pico[len(english_only) :]} == set(accent)
    test = [s for s in with_pico if s.split == "test"]
    assert len(test) == 84 and 12 * len(test) * params.keyword_takes == 3024


def test_synth_phones_never_gets_pico() -> None:
    assert PicoEngine.symbol_table == ""  # no phone timings to map
    for params in synth_phones.PROFILES.values():
        assert all(v.engine != "pico" for v in recorded_voices(params))


def test_a_pico_speaker_renders_trimmed_levelled_clips(tmp_path: Path) -> None:
    """The corpus path with a formant factor: rendered at 16 kHz x α, trimmed, placed, at the speech level."""
    params = replace(sc.PROFILES["smoke"], level_jitter_db=0.0)
    voice = sc.recorded_voices(replace(params, pico_voices=("en-GB",)))[0]
    speaker = sc._make_speaker(voice, 1.3, 1.1, "train", seed=0, formant=1.1)
    task = sc._SpeakerTask(speaker, [("marvin", 0), ("go", 0)], params, 0, str(tmp_path), "", {})
    rows = sc._render_speaker(task)
    assert [r["source"] for r in rows] == ["ttspico", "ttspico"]
    for row in rows:
        audio, sr = sf.read(str(tmp_path / row["path"]), dtype="float32")
        assert sr == 16000 and len(audio) == 16000 and np.max(np.abs(audio)) < 1.0
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        assert 0.15 * sr < loud[-1] - loud[0] < 0.95 * sr  # the trimmed word, not the padding
        assert loud[0] >= json.loads(row["parameters"])["offset"]
        level = 20 * np.log10(np.sqrt(np.mean(audio[loud[0] : loud[-1]] ** 2)))
        assert -29 < level < -23  # speech RMS -26 dBFS (no level jitter here)
