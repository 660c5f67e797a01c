"""Audio files: a bad clip is a one-line error naming it before any training, or a listed skip."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from devicelab.audio.io import AudioError, read_wav

from .conftest import cli, one_line_error, run_folders

CLIP = "yes/00000000_nohash_0.wav"  # a training clip of the toy tree


def _run(data, *extra: str):
    return cli("run", "kws-ssn", "--profile", "smoke", "--data", str(data), *extra)


def test_nan_samples_are_an_error_naming_the_file(gsc_copy):
    audio = np.zeros(8000, dtype=np.float32)
    audio[100] = np.nan
    sf.write(gsc_copy / CLIP, audio, 16000, subtype="FLOAT")
    one_line_error(_run(gsc_copy), str(gsc_copy / CLIP), "NaN or infinite")
    assert run_folders("kws-ssn") == []  # failed before keeping anything: no folder left


def test_infinite_samples_are_an_error(gsc_copy):
    audio = np.full(4000, np.inf, dtype=np.float32)
    sf.write(gsc_copy / CLIP, audio, 16000, subtype="FLOAT")
    one_line_error(_run(gsc_copy), CLIP, "4000 NaN or infinite samples")


def test_truncated_wav_is_an_error_not_zero_padding(gsc_copy):
    path = gsc_copy / CLIP
    path.write_bytes(path.read_bytes()[:-3000])
    one_line_error(_run(gsc_copy), str(path), "truncated")
    assert run_folders("kws-ssn") == []


def test_empty_wav_is_an_error(gsc_copy):
    sf.write(gsc_copy / CLIP, np.zeros(0, dtype=np.float32), 16000)
    one_line_error(_run(gsc_copy), CLIP, "no audio samples")


def test_other_sample_rate_is_an_error(gsc_copy):
    sf.write(gsc_copy / CLIP, np.zeros(4000, dtype=np.float32), 8000)
    one_line_error(_run(gsc_copy), CLIP, "8000 Hz, expected 16000 Hz")


def test_clip_longer_than_one_second_is_an_error(gsc_copy):
    sf.write(gsc_copy / CLIP, np.zeros(20000, dtype=np.float32), 16000)
    one_line_error(_run(gsc_copy), CLIP, "longer than 1 s")


def test_undecodable_file_is_an_error(gsc_copy):
    (gsc_copy / CLIP).write_bytes(b"not a wave file at all")
    one_line_error(_run(gsc_copy), CLIP, "cannot read audio")


def test_missing_list_file_is_named(gsc_copy):
    (gsc_copy / "testing_list.txt").unlink()
    one_line_error(_run(gsc_copy), "testing_list.txt", "list file missing")


def test_skip_bad_drops_and_lists_the_bad_files(gsc_copy):
    bad_nan = gsc_copy / CLIP
    bad_cut = gsc_copy / "no/00000000_nohash_0.wav"
    audio = np.zeros(8000, dtype=np.float32)
    audio[5] = np.nan
    sf.write(bad_nan, audio, 16000, subtype="FLOAT")
    bad_cut.write_bytes(bad_cut.read_bytes()[:-2000])
    result = _run(gsc_copy, "--skip-bad", "epochs=1")
    assert result.returncode == 0, result.stderr
    assert "--skip-bad dropped 2 bad audio files" in result.stdout
    (run_dir,) = run_folders("kws-ssn")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (note,) = [n for n in metrics["notes"] if "--skip-bad" in n]
    assert str(bad_nan) in note and str(bad_cut) in note
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "finished" and meta["skip_bad"] is True
    assert "ssn-seed0: epoch 1/1" in result.stderr  # progress: one line per epoch when not on a terminal


def test_read_wav_checks_every_caller(tmp_path):
    path = tmp_path / "x.wav"
    sf.write(path, np.array([0.0, np.nan], dtype=np.float32), 16000, subtype="FLOAT")
    try:
        read_wav(path)
    except AudioError as e:
        assert str(e) == f"{path}: 1 NaN or infinite samples"
    else:
        raise AssertionError("read_wav accepted NaN samples")
