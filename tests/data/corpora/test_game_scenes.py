"""game-scenes (smoke): DCASE2019 task 1A layout, splits by source recording, determinism, the loader."""

from __future__ import annotations

import csv
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from devicelab.data.cache import is_built
from devicelab.data.corpora import build_corpus
from devicelab.data.corpora._sound import SourceGlob, load_recordings, loop_excerpt, read_qt_resources
from devicelab.data.corpora.game_scenes import PROFILES, Recording, _cities, plan_scene
from devicelab.data.datasets.tau2019 import TAU2019
from devicelab.data.debs import DebFetcher, PackageError


def _build(root: Path, workers: int = 1) -> Path:
    return build_corpus("game-scenes", "smoke", workers=workers, root=root, log=lambda *_: None)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("dl-data"))


def _rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def test_layout_is_dcase2019_task1a(smoke: Path) -> None:
    params = PROFILES["smoke"]
    meta = _rows(smoke / "meta.csv", "\t")
    assert list(meta[0]) == ["filename", "scene_label", "identifier", "source_label"]
    n_seen, n_unseen, n_scenes = len(params.seen_devices), len(params.unseen_devices), len(params.scenes)
    per_seen_city = params.train_locations * params.train_segments + params.test_segments
    assert len(meta) == n_scenes * (
        n_seen * per_seen_city + n_unseen * params.unseen_locations * params.unseen_segments
    )
    for row in meta:
        scene, city, location, segment, device = Path(row["filename"]).stem.split("-")
        assert row["filename"].startswith("audio/") and (smoke / row["filename"]).is_file()
        assert (scene, f"{city}-{location}", device) == (
            row["scene_label"],
            row["identifier"],
            row["source_label"],
        )
    info = sf.info(str(smoke / meta[0]["filename"]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert info.frames == int(params.clip_seconds * 16000)
    train = _rows(smoke / "evaluation_setup" / "fold1_train.csv", "\t")
    evaluate = _rows(smoke / "evaluation_setup" / "fold1_evaluate.csv", "\t")
    test = _rows(smoke / "evaluation_setup" / "fold1_test.csv", "\t")
    assert list(train[0]) == ["filename", "scene_label"] and list(test[0]) == ["filename"]
    assert {r["filename"] for r in train} | {r["filename"] for r in evaluate} == {r["filename"] for r in meta}
    assert [r["filename"] for r in test] == [r["filename"] for r in evaluate]
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["corpus"] == "game-scenes" and manifest["content_sha256"]
    assert manifest["counts"]["by_split"]["train"] == len(train)
    assert {c["device"] for c in manifest["cities"]} == {*params.seen_devices, *params.unseen_devices}


def test_splits_are_by_source_recording(smoke: Path) -> None:
    extra = _rows(smoke / "meta_extra.csv")
    owner: dict[str, set[tuple[str, str]]] = {}
    for row in extra:
        side = "train" if row["split"] == "train" else "held-out"
        owner.setdefault(f"{row['bed_package']}:{row['bed_file']}", set()).add((row["city"], side))
    assert all(len(users) == 1 for users in owner.values()), owner

    def scene(row: dict[str, str]) -> str:
        return row["filename"].split("/")[1].split("-")[0]

    train_cells = {(scene(r), r["city"]) for r in extra if r["split"] == "train"}
    for row in extra:
        assert ((scene(row), row["city"]) in train_cells) == (row["seen"] == "1")


def test_same_seed_same_checksums_whatever_the_jobs(smoke: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, workers=2)
    first = json.loads((smoke / "manifest.json").read_text())["content_sha256"]
    assert json.loads((again / "manifest.json").read_text())["content_sha256"] == first


def test_loader_reads_the_corpus_and_derives_seen_and_unseen(smoke: Path) -> None:
    corpus = TAU2019(smoke)
    params = PROFILES["smoke"]
    split = corpus.split("official")
    assert corpus.scenes == tuple(sorted(params.scenes))
    unseen_cities = {c.city for c in split.test_unseen}
    assert len(unseen_cities) == len(params.unseen_devices) and not unseen_cities & {
        c.city for c in split.train
    }
    assert {c.city for c in split.test_seen} <= {c.city for c in split.train}
    assert corpus.cities_only_in_evaluate() == sorted(unseen_cities)


def test_every_city_takes_disjoint_recordings() -> None:
    params = PROFILES["quick"]
    cities = _cities(params, seed=0)
    recordings = [
        Recording("forest", pkg, "1", f"{stem}{k}.wav", np.ones(16000, np.float32), f"{pkg}{stem}{k}")
        for pkg, stem, n in (("lincity", "Green", 4), ("lincity", "Park", 3), ("megaglest", "day", 5))
        for k in range(n)
    ]
    plan = plan_scene("forest", recordings, cities, params, seed=0)
    used = [s for parts in plan.recordings_by_city.values() for pool in parts.values() for s in pool]
    assert len(used) == len(set(used)) == len(recordings)
    for city in cities:
        parts = plan.recordings_by_city[city.name]
        assert (len(parts["test"]), len(parts["unseen"])) == ((1, 0) if city.seen else (0, 1))
        assert not city.seen or parts["train"]
    assert len(plan.locations) == len(params.seen_devices) * 4 + len(params.unseen_devices) * 4


def test_short_takes_loop_with_crossfades() -> None:
    take = np.arange(1000, dtype=np.float32)
    out = loop_excerpt(take, 900, 2500, crossfade=100)
    assert len(out) == 2500 and out[0] == 900 and np.all(np.isfinite(out))


def _qt_bundle(files: dict[str, bytes]) -> bytes:
    """A version-1 Qt resource bundle with the files under one root folder."""
    names = b""
    name_offsets = []
    for name in files:
        name_offsets.append(len(names))
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    data = b""
    data_offsets = []
    for content in files.values():
        data_offsets.append(len(data))
        data += struct.pack(">I", len(content)) + content
    tree = struct.pack(">IHII", 0, 2, len(files), 1)
    for name_offset, data_offset in zip(name_offsets, data_offsets):
        tree += struct.pack(">IHHHI", name_offset, 0, 0, 0, data_offset)
    header = 20
    return (
        b"qres"
        + struct.pack(">4I", 1, header, header + len(tree), header + len(tree) + len(data))
        + tree
        + data
        + names
    )


def _wav_bytes(audio: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt)
    return buffer.getvalue()


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_sources_from_a_tiny_deb_are_decoded_and_deduplicated(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    beds = [0.1 * rng.standard_normal(24000).astype(np.float32) for _ in range(3)]
    root = tmp_path / "pkg"
    sounds = root / "usr/share/games/tiny/sounds"
    sounds.mkdir(parents=True)
    sf.write(str(sounds / "wind1.wav"), beds[0], 22050)
    pcm, _ = sf.read(str(sounds / "wind1.wav"), dtype="int16")
    sf.write(str(sounds / "wind1-copy.flac"), pcm, 22050)  # the same samples re-encoded: dropped
    sf.write(str(sounds / "rain1.ogg"), beds[1], 22050, format="OGG")
    (sounds / "bundle.rcc").write_bytes(
        _qt_bundle({"sea.wav": _wav_bytes(beds[2], 16000), "notes.txt": b"x"})
    )
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: tiny-sounds\nVersion: 1.0-1\nArchitecture: all\n"
        "Maintainer: x <x@example.org>\nDescription: t\n"
    )
    doc = root / "usr/share/doc/tiny-sounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: x\nLicense: CC-BY-SA-3.0\n"
    )
    debs = tmp_path / "debs"
    debs.mkdir()
    deb = debs / "tiny-sounds_1.0-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True
    )
    assert [n for n, _ in read_qt_resources(sounds / "bundle.rcc")] == ["sea.wav", "notes.txt"]
    fetcher = DebFetcher(cache=tmp_path / "cache", source="dir", deb_dir=debs)
    table = {
        "wind": [SourceGlob("tiny-sounds", "usr/share/games/tiny/sounds/wind1*")],
        "rain": [SourceGlob("tiny-sounds", "usr/share/games/tiny/sounds/rain*.ogg")],
        "sea": [SourceGlob("tiny-sounds", "usr/share/games/tiny/sounds/bundle.rcc!*.wav")],
    }
    found = load_recordings(fetcher, table, min_seconds=0.5)
    assert {k: [r.member.rsplit("/", 1)[-1] for r in v] for k, v in found.recordings.items()} == {
        "wind": ["wind1-copy.flac"],
        "rain": ["rain1.ogg"],
        "sea": ["bundle.rcc!sea.wav"],
    }
    assert all(len(r.audio) == pytest.approx(24000 * 16000 / 22050, abs=2) for r in found.recordings["wind"])
    (record,) = found.sources
    assert record["name"] == "tiny-sounds" and record["licence"] == ["CC-BY-SA-3.0"] and record["sha256"]


def test_a_missing_package_fails_naming_it_and_leaves_nothing_built(tmp_path: Path) -> None:
    empty = tmp_path / "debs"
    empty.mkdir()
    fetcher = DebFetcher(cache=tmp_path / "cache", source="dir", deb_dir=empty)
    with pytest.raises(PackageError, match="megaglest-data"):
        build_corpus("game-scenes", "quick", root=tmp_path / "data", fetcher=fetcher, log=lambda *_: None)
    assert not is_built("game-scenes", "quick", tmp_path / "data")
    assert not list((tmp_path / "data" / "game-scenes").glob(".quick.partial-*"))
