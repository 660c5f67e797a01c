"""The scene task on a generated TAU 2019 tree and on the game-scenes smoke corpus: features, splits."""

import csv
import warnings

import pytest
import torch

from devicelab.audio.io import AudioError
from devicelab.data.corpora import ensure_corpus
from devicelab.data.datasets.tau2019 import TAU2019Error
from devicelab.methods.asc_factorized.data import SceneLogMel, environment_of, load_task
from tests.methods.asc_factorized.fake_tau import CITIES, make_fake_tau


@pytest.fixture(scope="module")
def tau_root(tmp_path_factory):
    return make_fake_tau(tmp_path_factory.mktemp("tau") / "TAU-urban-acoustic-scenes-2019-development")


def _load(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # row counts differ from the published ones: a warning, not an error
        return load_task(root, clip_seconds=1.0, **kw)


def test_features_are_40_log_mel_bands_at_20_ms_hop(tau_root):
    task = _load(tau_root)
    assert task.features.shape == (36, 1, 40, 51)  # 1 s at 16 kHz, 320-sample hop, centred frames
    assert task.scene_names == ("bus", "park") and task.env_names == CITIES
    assert set(task.cities) == set(CITIES)  # the city is the identifier's first part
    assert SceneLogMel().n_fft == 1024 and SceneLogMel(48000).n_fft == 2048


def test_24_bit_stereo_is_mixed_to_mono(tau_root):
    task = _load(tau_root)
    silent = task.names.index("audio/park-paris-18-0-a.wav")
    # left and right cancel: the mono mix is silence up to 24-bit rounding (log(mel + 1e-10) near -23)
    assert float(task.features[silent].max()) < -12.0
    loud = task.names.index(next(n for n in task.names if n.startswith("audio/bus-lisbon-")))
    assert float(task.features[loud].max()) > -5.0


def test_official_split_derives_seen_cells(tau_root):
    task = _load(tau_root)
    split = task.splits["official"]
    assert (len(split.train), len(split.test_seen), len(split.test_unseen)) == (24, 12, 0)
    train_locations = {task.locations[i] for i in split.train}
    assert not train_locations & {task.locations[i] for i in split.test_seen}


def test_leave_cities_out_keeps_held_out_cities_out_of_training(tau_root):
    task = _load(tau_root, splits=["official", "leave_cities_out"], unseen_cities=["lyon"])
    split = task.splits["leave_cities_out"]
    train_cities = {task.cities[i] for i in split.train}
    assert train_cities == {"lisbon", "paris"}
    assert {task.cities[i] for i in split.test_unseen} == {"lyon"} and len(split.test_unseen) == 12
    assert {task.cities[i] for i in split.test_seen} <= train_cities
    assert not {task.locations[i] for i in split.train} & {task.locations[i] for i in split.test_seen}
    with pytest.raises(TAU2019Error, match="unknown cities oslo; available: lisbon, lyon, paris"):
        _load(tau_root, splits=["leave_cities_out"], unseen_cities=["oslo"])


def test_validation_holds_out_whole_locations_per_city(tau_root):
    task = _load(tau_root, validation_fraction=0.3, seed=1)
    split = task.splits["official"]
    val = {task.locations[i] for i in split.validation}
    assert val and not val & {task.locations[i] for i in split.train}
    assert {task.cities[i] for i in split.validation} == set(CITIES)  # balanced over cities


def test_environment_keys():
    from devicelab.data.datasets.tau2019 import SceneClip

    clip = SceneClip("audio/bus-paris-3-0-b.wav", None, "bus", "paris-3", "b")  # type: ignore[arg-type]
    assert [environment_of(clip, k) for k in ("city", "location", "device", "city_device")] == [
        "paris",
        "paris-3",
        "b",
        "paris-b",
    ]
    with pytest.raises(ValueError, match="env_key='room'"):
        environment_of(clip, "room")


def test_missing_and_bad_files_are_named(tmp_path):
    root = make_fake_tau(tmp_path / "TAU", seconds=0.2, locations=2, segments=1)
    (root / "audio" / "bus-lyon-3-0-a.wav").unlink()
    with pytest.raises(
        TAU2019Error, match=r"1 audio files listed in meta.csv are missing, first: audio/bus-lyon-3"
    ):
        _load(root)
    root = make_fake_tau(tmp_path / "TAU2", seconds=0.2, locations=2, segments=1)
    (root / "audio" / "park-lisbon-7-0-a.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(AudioError, match="park-lisbon-7-0-a.wav"):
        _load(root)
    task = _load(root, skip_bad=True)
    assert len(task.skipped) == 1 and "park-lisbon-7-0-a.wav" in task.skipped[0]
    (root / "meta.csv").write_text("filename,scene_label\n")
    with pytest.raises(TAU2019Error, match=r"meta.csv:1: expected the TAB-separated header"):
        _load(root)


def test_game_scenes_splits_share_no_source_recording():
    root = ensure_corpus("game-scenes", "smoke")
    task = load_task(root, clip_seconds=1.0, source="game-scenes")
    split = task.splits["official"]
    with open(root / "meta_extra.csv", newline="") as f:
        bed = {r["filename"]: (r["bed_package"], r["bed_file"]) for r in csv.DictReader(f)}
    sources = {part: {bed[task.names[i]] for i in idx} for part, idx in split.parts().items() if len(idx)}
    assert not sources["train"] & sources["seen"]
    assert not sources["train"] & sources["unseen"]
    assert len(split.test_unseen) and {task.cities[i] for i in split.test_unseen}.isdisjoint(
        {task.cities[i] for i in split.train}
    )
    assert torch.isfinite(task.features).all()
