"""synth-commands (smoke): Speech Commands layout, speaker-disjoint splits, determinism, atomic rebuilds."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.corpora import build_corpus
from devicelab.data.corpora import synth_commands as sc
from devicelab.data.corpora._speech import FEMALE_PERSONS
from devicelab.data.corpora.synth_commands import PROFILES, plan_speakers
from devicelab.data.speech.texts import command_words


def _build(root: Path, workers: int = 1) -> Path:
    return build_corpus("synth-commands", "smoke", workers=workers, root=root, log=lambda *_: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dl-data"))


def _speakers(root: Path) -> dict[str, dict]:
    with open(root / "gsc" / "speakers.csv") as f:
        return {row["spk8"]: row for row in csv.DictReader(f)}


def test_layout_is_speech_commands_v2(smoke: Path) -> None:
    gsc = smoke / "gsc"
    words = sorted(p.name for p in gsc.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert words == sorted(command_words()) and len(words) == 35
    assert not (gsc / "_silence_").exists()
    noise = sorted(p.name for p in (gsc / "_background_noise_").glob("*.wav"))
    assert {"white_noise.wav", "pink_noise.wav", "brown_noise.wav", "hum_50hz_hiss.wav"} <= set(noise)
    for listed in ("validation_list.txt", "testing_list.txt"):
        lines = (gsc / listed).read_text().splitlines()
        assert lines and all((gsc / line).is_file() for line in lines)
        assert all(line.split("/")[1].split("_nohash_")[0] in _speakers(smoke) for line in lines)
    some = sorted(gsc.glob("yes/*.wav"))[:5]
    for path in some:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["corpus"] == "synth-commands" and manifest["content_sha256"]
    assert manifest["counts"]["clips_total"]["train"] > 0 and manifest["tool_versions"]["espeak-ng"]


def test_splits_are_disjoint_by_voice_and_match_the_lists(smoke: Path) -> None:
    speakers = _speakers(smoke)
    gsc = smoke / "gsc"
    listed = {
        "validation": set((gsc / "validation_list.txt").read_text().split()),
        "test": set((gsc / "testing_list.txt").read_text().split()),
    }
    for path in gsc.glob("*/*_nohash_*.wav"):
        rel = path.relative_to(gsc).as_posix()
        split = speakers[path.name.split("_nohash_")[0]]["split"]
        assert (rel in listed["validation"]) == (split == "validation")
        assert (rel in listed["test"]) == (split == "test")
    units: dict[str, set[str]] = {}
    for row in speakers.values():
        units.setdefault(row["variant"] or row["person"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in units.values()), units
    assert {"train", "validation", "test"} <= {row["split"] for row in speakers.values()}
    channel = (smoke / "channel" / "testing_list.txt").read_text().split()
    assert set(channel) == listed["test"] and all((smoke / "channel" / p).is_file() for p in channel)


def test_every_speaker_says_every_word(smoke: Path) -> None:
    gsc = smoke / "gsc"
    params = PROFILES["smoke"]
    for spk in _speakers(smoke):
        for word in command_words():
            takes = len(list((gsc / word).glob(f"{spk}_nohash_*.wav")))
            assert takes == (params.keyword_takes if word in command_words()[:10] else params.other_takes)


def test_clip_levels_and_placement(smoke: Path) -> None:
    for path in sorted((smoke / "gsc" / "stop").glob("*.wav"))[:6]:
        audio, _ = sf.read(str(path))
        frames = audio.reshape(100, 160)
        frame_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
        assert frame_db.min() < -55  # the -60 dBFS noise floor outside the word
        assert frame_db.min() > -75  # ... is there, not digital silence
        loud = frame_db > frame_db.max() - 30
        assert 0.1 < loud.mean() < 0.95
        speech_rms_db = 10 * np.log10(np.mean(frames[loud] ** 2))
        assert -34 < speech_rms_db < -17


def test_channel_copy_differs_from_the_test_clip(smoke: Path) -> None:
    rel = (smoke / "channel" / "testing_list.txt").read_text().split()[0]
    original, _ = sf.read(str(smoke / "gsc" / rel))
    coloured, _ = sf.read(str(smoke / "channel" / rel))
    assert original.shape == coloured.shape and not np.allclose(original, coloured, atol=1e-3)


def test_build_is_deterministic_and_independent_of_jobs(smoke: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, workers=2)
    first = json.loads((smoke / "manifest.json").read_text())
    second = json.loads((again / "manifest.json").read_text())
    assert first["content_sha256"] == second["content_sha256"]
    assert (smoke / "checksums.sha256").read_text() == (again / "checksums.sha256").read_text()


def test_interrupted_build_leaves_nothing_and_is_redone(
    smoke: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run_tasks = sc.run_tasks

    def interrupted(fn, tasks, workers, progress=None):  # two speakers written, then the build is stopped
        real_run_tasks(fn, tasks[:2], workers)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(sc, "run_tasks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path)
    corpus = tmp_path / "synth-commands"
    assert not (corpus / "smoke").exists() and not list(corpus.glob(".smoke.partial-*"))
    monkeypatch.undo()
    stale = corpus / ".smoke.partial-999999"  # what a killed build leaves behind
    (stale / "gsc" / "yes").mkdir(parents=True)
    (stale / "gsc" / "yes" / "junk.wav").write_bytes(b"junk")
    rebuilt = _build(tmp_path)
    assert not stale.exists()
    assert (rebuilt / "checksums.sha256").read_text() == (smoke / "checksums.sha256").read_text()


def test_quick_plan_keeps_test_voices_out_of_training_and_holds_3000_test_clips() -> None:
    params = PROFILES["quick"]
    speakers = plan_speakers(params, seed=0)
    assert len({s.spk for s in speakers}) == len(speakers)
    split_of_unit: dict[str, set[str]] = {}
    for s in speakers:  # a recorded person or an espeak-ng variant file reaches one split only
        split_of_unit.setdefault(s.voice.split_unit, set()).add(s.split)
    assert all(len(splits) == 1 for splits in split_of_unit.values()), split_of_unit
    test = [s for s in speakers if s.split == "test"]
    train = [s for s in speakers if s.split == "train"]
    assert {s.voice.person for s in test if s.voice.person} == {"slt"}
    assert {s.voice.person for s in speakers if s.split == "validation" and s.voice.person} == {"rms"}
    assert not {s.voice.split_unit for s in test} & {s.voice.split_unit for s in train}
    # the 12-class test split: 10 keywords + _unknown_ + _silence_, each as many as a keyword (keyword_mean)
    test_keyword_clips = len(test) * params.keyword_takes
    assert 12 * test_keyword_clips >= 3000
    assert len(train) * params.keyword_takes >= 1000  # clips per keyword
    low, high = params.formant_range
    assert low < 1.0 < high and all(low <= s.formant <= high for s in speakers)
    assert {s.voice.engine for s in train} == {"espeak-ng", "flite", "festival", "pico"}
    # recorded women in training (festival lp and ona, accented English; Pico lh0 and kh0, English); slt stays
    # the test voice. Pico's accent women (zl0, cm0, nk0, gl0) are in the full profile only.
    assert {s.voice.person for s in train} & FEMALE_PERSONS == {"lp", "ona", "lh0", "kh0"}


def test_formant_factor_scales_the_spectrum_and_keeps_the_duration(tmp_path: Path) -> None:
    """α > 1 (rendered at speed/α and pitch/α, read at rate·α) raises the spectral centroid; the word keeps
    about its length."""
    voice = sc.espeak_voice("en-us", "m3")
    params = replace(PROFILES["smoke"], speed_jitter=0.0, pitch_jitter=0.0)
    out = {}
    for alpha in (1.0, 1.2):
        made = sc._make_speaker(voice, 1.0, 1.0, "train", seed=0, formant=alpha)
        spk = replace(made, channel_low_db=0.0, channel_high_db=0.0)  # the same flat channel for both
        task = sc._SpeakerTask(
            spk,
            [("seven", 0)],
            params,
            0,
            str(tmp_path / str(alpha)),
            "",
            {"kind": "tilt", "db_per_octave": 6.0},
        )
        rows = sc._render_speaker(task)
        audio, _ = sf.read(str(tmp_path / str(alpha) / rows[0]["path"]))
        spectrum = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
        loud = np.abs(audio) > 0.01
        out[alpha] = (float((spectrum * freqs).sum() / spectrum.sum()), int(loud.sum()), spk.spk)
    assert out[1.2][0] > 1.08 * out[1.0][0]
    assert 0.8 < out[1.2][1] / out[1.0][1] < 1.25
    assert out[1.2][2] != out[1.0][2]  # α is part of the pseudo-speaker id
