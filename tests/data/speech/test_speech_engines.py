"""Speech engines: renderings, phone timings checked against the audio, clear errors for missing engines."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from devicelab.data.debs import MissingToolError
from devicelab.data.speech import EspeakEngine, FliteEngine, Rendering
from devicelab.data.speech.phones import Segment, to_timit

PAUSED_TEXT = "Yes. Stop. Go left. Three, four."


def frame_db(audio: np.ndarray, sample_rate_hz: int, hop_ms: float = 5.0) -> np.ndarray:
    hop = int(sample_rate_hz * hop_ms / 1000)
    n = len(audio) // hop
    frames = audio[: n * hop].reshape(n, hop).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def speech_mask(segments: list[Segment], n_frames: int, hop: int) -> np.ndarray:
    """1 where the frame centre lies in a non-pause segment."""
    mask = np.zeros(n_frames)
    for s in segments:
        if s.label not in ("pau", "h#"):
            mask[int(np.ceil(s.start / hop)) : int(s.end // hop)] = 1
    return mask


def check_alignment(rendering: Rendering, table: str) -> None:
    """Pauses are quiet, phones loud, and the label/energy agreement peaks at zero lag (±15 ms)."""
    segments = to_timit(rendering, table)
    sr, hop = rendering.sample_rate_hz, int(rendering.sample_rate_hz * 0.005)
    energy = frame_db(rendering.audio, sr)
    inner_pauses = [s for s in segments[1:-1] if s.label == "pau" and s.end - s.start > 0.08 * sr]
    assert len(inner_pauses) >= 2, [(s.label, s.start, s.end) for s in segments]
    voiced = [s for s in segments if s.label not in ("pau", "h#", "q") and s.end // hop - s.start // hop >= 2]
    speech_db = np.median(
        [energy[s.start // hop : s.end // hop].mean() for s in voiced if s.end // hop < len(energy)]
    )
    for pause in inner_pauses:  # the middle of a labelled pause is silent
        middle = energy[(pause.start // hop) + 4 : (pause.end // hop) - 4]
        assert np.percentile(middle, 75) < speech_db - 15, (pause, middle, speech_db)
    loud = (energy > energy.max() - 35).astype(float)
    mask = speech_mask(segments, len(energy), hop)
    lags = range(-20, 21)  # ±100 ms in 5 ms frames
    agreement = [np.mean(np.roll(mask, lag) == loud) for lag in lags]
    best = list(lags)[int(np.argmax(agreement))]
    assert abs(best) <= 3, (best, agreement)


def test_espeak_renders_with_phone_events() -> None:
    engine = EspeakEngine()
    r = engine.synth("The quick brown fox.", "en-us+m3")
    assert r.sample_rate_hz == 22050 and r.audio.dtype == np.float32 and len(r.audio) > 10000
    assert r.phones[0].start == 0 and r.phones[-1].end == len(r.audio)
    assert all(a.end == b.start for a, b in zip(r.phones, r.phones[1:]))
    assert [w.text for w in r.words] == ["The", "quick", "brown", "fox"]
    faster = engine.synth("The quick brown fox.", "en-us+m3", speed=1.5)
    assert len(faster.audio) < 0.8 * len(r.audio)
    with pytest.raises(Exception, match="unknown voice"):
        engine.synth("yes", "xx-nonexistent+zz")


def test_espeak_is_repeatable_after_reset() -> None:
    engine = EspeakEngine()
    runs = []
    for other in ("Something else", "Another thing entirely"):  # what ran before a reset does not matter
        engine.synth(other, "en-us+m3")
        engine.reset()
        # f2; caleb is a klatt voice with breath noise (libc rand())
        runs.append(
            [
                engine.synth(t, v, speed=0.9, pitch=1.2).audio
                for t in ("Seven", "Go")
                for v in ("en-gb-x-rp+f2", "en-us+caleb")
            ]
        )
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_espeak_phone_timings_match_audio() -> None:
    for voice in ("en-us+m3", "en-gb-x-rp+f2", "en-029+klatt"):
        check_alignment(EspeakEngine().synth(PAUSED_TEXT, voice), "espeak")


def test_shifted_labels_fail_the_alignment_check() -> None:
    r = EspeakEngine().synth(PAUSED_TEXT, "en-us+m3")
    shift = int(0.2 * r.sample_rate_hz)
    r.phones = [type(p)(p.symbol, p.start + shift, p.end + shift) for p in r.phones]
    with pytest.raises(AssertionError):
        check_alignment(r, "espeak")


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_flite_phone_timings_match_audio() -> None:
    engine = FliteEngine()
    for voice in ("kal16", "slt"):
        r = engine.synth(PAUSED_TEXT, voice)
        assert r.sample_rate_hz == 16000 and r.phones[-1].end == len(r.audio)
        check_alignment(r, "cmu")


def test_missing_engine_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingToolError, match="Debian package `flite`"):
        FliteEngine().check()
    assert not FliteEngine().available()


def test_missing_festival_and_mbrola_name_their_packages(tmp_path) -> None:
    from devicelab.data.debs import DebFetcher
    from devicelab.data.speech import FestivalEngine, MbrolaEngine

    (tmp_path / "debs").mkdir()
    empty = DebFetcher(cache=tmp_path / "cache", source="dir", deb_dir=tmp_path / "debs")
    with pytest.raises(MissingToolError, match="festvox-kallpc16k"):
        FestivalEngine(empty).check()
    if shutil.which("mbrola") is None:
        with pytest.raises(MissingToolError, match="mbrola.*contrib"):
            MbrolaEngine().check()


def test_festival_phone_timings_match_audio_when_cached() -> None:
    """Runs only where a build has already fetched festival (never downloads)."""
    from devicelab.core.paths import data_root
    from devicelab.data.debs import DebFetcher
    from devicelab.data.speech import FestivalEngine

    cache = data_root() / "_cache"
    if not (cache / "deb").is_dir():
        pytest.skip("no package cache")
    engine = FestivalEngine(DebFetcher(cache=cache, source="dir", deb_dir=cache / "deb"))
    try:
        engine.check()
    except MissingToolError:
        pytest.skip("festival packages not in the local cache")
    text = "Please stop now. We will go left, and then right. Three, four, five. Thank you."
    for r in engine.synth_many([(text, voice, 1.0, 1.0) for voice in engine.voices()]):
        check_alignment(r, "cmu")


def test_accent_voices_read_respellings_and_need_their_language_packages(tmp_path) -> None:
    from devicelab.data.speech.engines import EngineError, festival_voice_packages, respell

    assert respell("right", "lp_diphone") == "rait"
    assert respell("Go left", "upc_ca_ona_hts") == "gou left"  # word by word; unknown words unchanged
    assert respell("right", "kal_diphone") == "right"  # English voices read the text itself
    assert festival_voice_packages("lp_diphone") == ("festvox-italp16k", "festlex-ifd")
    assert festival_voice_packages("kal_diphone") == ("festvox-kallpc16k",)
    with pytest.raises(EngineError, match="unknown voice 'xx'"):
        festival_voice_packages("xx")


def test_language_package_trees_merge_into_the_festival_libdir(tmp_path) -> None:
    """A folder both trees have (``dicts``) becomes a real folder holding the links of both."""
    from devicelab.data.speech.engines import _merge_links

    base, lang, lib = tmp_path / "base", tmp_path / "lang", tmp_path / "lib"
    for path in (base / "dicts" / "cmu" / "a.scm", lang / "dicts" / "upc" / "b.scm", lang / "upc" / "c.scm"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(path.name)
    lib.mkdir()
    (lib / "dicts").symlink_to(base / "dicts")
    _merge_links(lang, lib)
    assert not (lib / "dicts").is_symlink() and (base / "dicts" / "upc").exists() is False
    assert (lib / "dicts" / "cmu" / "a.scm").read_text() == "a.scm"
    assert (lib / "dicts" / "upc" / "b.scm").read_text() == "b.scm"
    assert (lib / "upc" / "c.scm").read_text() == "c.scm"


def test_accent_voices_render_when_cached() -> None:
    """Runs only where a build has already fetched the Italian and Catalan voices (never downloads)."""
    from devicelab.core.paths import data_root
    from devicelab.data.debs import DebFetcher
    from devicelab.data.speech import FestivalEngine
    from devicelab.data.speech.engines import EngineError

    cache = data_root() / "_cache"
    if not (cache / "deb").is_dir():
        pytest.skip("no package cache")
    accents = ("lp_diphone", "upc_ca_ona_hts")
    try:
        FestivalEngine(DebFetcher(cache=cache, source="dir", deb_dir=cache / "deb"), voices=accents).check()
    except MissingToolError:
        pytest.skip("festival accent voices not in the local cache")
    engine = FestivalEngine(DebFetcher(cache=cache, source="dir", deb_dir=cache / "deb"))  # English voices
    with pytest.raises(EngineError, match="unknown voice 'xx'"):
        engine.synth_many([("right", "xx", 1.0, 1.0)])
    for r in engine.synth_many([("right", voice, 1.0, 1.0) for voice in accents]):  # prepared on first use
        assert r.text == "right" and r.parameters["spoken_as"] == "rait"
        assert float(np.max(np.abs(r.audio))) > 0.05 and 0.2 < len(r.audio) / r.sample_rate_hz < 2.0
        assert "t" in {p.symbol for p in r.phones}


def test_crop_to_speech_cuts_edge_pauses_and_shifts_the_phone_ends() -> None:
    from devicelab.data.speech.engines import crop_to_speech

    sr = 1000
    audio = np.arange(1000, dtype=np.float32)
    pairs = [("pau", 0.4), ("s", 0.5), ("t", 0.6), ("pau", 1.0)]
    cropped, kept = crop_to_speech(audio, sr, pairs, margin_s=0.05)
    assert cropped[0] == 350 and len(cropped) == 300  # 0.35 .. 0.65 s
    assert [symbol for symbol, _ in kept] == ["pau", "s", "t", "pau"]
    assert [end for _, end in kept] == pytest.approx([0.05, 0.15, 0.25, 0.3])
    assert crop_to_speech(audio, sr, [("pau", 1.0)])[0] is audio  # nothing but pauses: unchanged
