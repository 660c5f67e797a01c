"""TAU Urban Acoustic Scenes 2019, development set (DCASE2019 task 1A), in its published layout.

asc-factorized.md §6. The offline corpus ``game-scenes`` writes the same layout, so this loader reads both::

    root/audio/<scene>-<city>-<location>-<segment>-<device>.wav   (TAU: 10 s, 48 kHz, 24-bit, stereo)
    root/meta.csv                          TAB, header: filename scene_label identifier source_label
    root/evaluation_setup/fold1_train.csv     TAB, header: filename scene_label
    root/evaluation_setup/fold1_evaluate.csv  TAB, header: filename scene_label
    root/evaluation_setup/fold1_test.csv      TAB, header: filename

Seen and unseen are defined by cells: a test clip is unseen when no training clip shares its
(scene, city); a city absent from training makes all its cells unseen.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from devicelab.audio.io import AudioError, read_wav

SCENES_2019 = (
    "airport", "bus", "metro", "metro_station", "park", "public_square",
    "shopping_mall", "street_pedestrian", "street_traffic", "tram",
)  # fmt: skip
CITIES_2019 = (
    "barcelona", "helsinki", "lisbon", "london", "lyon", "milan", "paris", "prague", "stockholm", "vienna",
)  # fmt: skip
PUBLISHED_ROWS = {"meta.csv": 14400, "fold1_train.csv": 9185, "fold1_evaluate.csv": 4185}
META_HEADER = ("filename", "scene_label", "identifier", "source_label")
FOLD_HEADER = ("filename", "scene_label")

SplitName = Literal["official", "leave_cities_out"]


class TAU2019Error(AudioError):
    """A TAU 2019 root that does not have the published layout; the message names the file."""


@dataclass(frozen=True)
class SceneClip:
    """One clip of ``meta.csv``."""

    filename: str  # as in meta.csv: "audio/<scene>-<city>-<location>-<segment>-<device>.wav"
    path: Path
    scene: str
    identifier: str  # "<city>-<location>"
    device: str

    @property
    def city(self) -> str:
        return self.identifier.rsplit("-", 1)[0]

    @property
    def location(self) -> str:
        return self.identifier


@dataclass(frozen=True)
class SceneSplit:
    """Training clips and test clips, the test clips divided by cell into seen and unseen."""

    name: str
    train: list[SceneClip]
    test_seen: list[SceneClip]
    test_unseen: list[SceneClip]

    @property
    def test(self) -> list[SceneClip]:
        return self.test_seen + self.test_unseen


def _read_tsv(path: Path, header: Sequence[str]) -> list[list[str]]:
    """Rows of a TAB-separated file whose first row is ``header``; errors name the file and line."""
    if not path.is_file():
        raise TAU2019Error(
            f"{path}: file missing (a TAU 2019 development root has meta.csv and evaluation_setup/)"
        )
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or tuple(c.strip() for c in rows[0][: len(header)]) != tuple(header):
        found = "\t".join(rows[0]) if rows else "an empty file"
        raise TAU2019Error(
            f"{path}:1: expected the TAB-separated header {' '.join(header)!r}, found {found!r}"
        )
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise TAU2019Error(f"{path}:{number}: expected {len(header)} TAB-separated fields, found {row!r}")
        out.append([c.strip() for c in row])
    return out


class TAU2019:
    """A checked TAU Urban Acoustic Scenes 2019 development root (or a ``game-scenes`` corpus).

    Checks: meta and fold files exist and parse with the expected headers; every referenced audio file
    exists (the error gives the count and the first 10 missing); row counts that differ from the
    published ones warn (an offline corpus, recognised by its ``manifest.json``, does not).
    """

    def __init__(self, root: str | Path, check_files: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise TAU2019Error(f"{self.root}: no such folder (expected a TAU 2019 development root)")
        setup = self.root / "evaluation_setup"
        meta_rows = _read_tsv(self.root / "meta.csv", META_HEADER)
        self.clips: dict[str, SceneClip] = {}
        for filename, scene, identifier, device, *_ in meta_rows:
            self.clips[filename] = SceneClip(filename, self.root / filename, scene, identifier, device)
        self.fold_train = self._fold(setup / "fold1_train.csv")
        self.fold_evaluate = self._fold(setup / "fold1_evaluate.csv")
        test_file = setup / "fold1_test.csv"
        self.fold_test = [r[0] for r in _read_tsv(test_file, ("filename",))] if test_file.is_file() else []
        self.scenes = tuple(sorted({c.scene for c in self.clips.values()}))
        self.cities = tuple(sorted({c.city for c in self.clips.values()}))
        self.devices = tuple(sorted({c.device for c in self.clips.values()}))
        if check_files:
            missing = [c.filename for c in self.clips.values() if not c.path.is_file()]
            if missing:
                raise TAU2019Error(
                    f"{self.root}: {len(missing)} audio files listed in meta.csv are missing, first: "
                    + ", ".join(missing[:10])
                )
        if not (self.root / "manifest.json").is_file():
            counts = {
                "meta.csv": len(self.clips),
                "fold1_train.csv": len(self.fold_train),
                "fold1_evaluate.csv": len(self.fold_evaluate),
            }
            for name, n in counts.items():
                if n != PUBLISHED_ROWS[name]:
                    warnings.warn(
                        f"{self.root}: {name} has {n} rows, the published set {PUBLISHED_ROWS[name]}",
                        stacklevel=2,
                    )

    def _fold(self, path: Path) -> list[str]:
        rows = _read_tsv(path, FOLD_HEADER)
        for number, (filename, scene, *_) in enumerate(rows, start=2):
            clip = self.clips.get(filename)
            if clip is None:
                raise TAU2019Error(f"{path}:{number}: {filename} is not in meta.csv")
            if clip.scene != scene:
                raise TAU2019Error(
                    f"{path}:{number}: {filename} is {scene!r} here but {clip.scene!r} in meta.csv"
                )
        return [r[0] for r in rows]

    def label(self, scene: str) -> int:
        return self.scenes.index(scene)

    def split(
        self, name: SplitName = "official", unseen_cities: Sequence[str] = ("lisbon", "lyon")
    ) -> SceneSplit:
        """``official``: fold1_train / fold1_evaluate as given. ``leave_cities_out``: train = fold1_train rows
        of the other cities, seen test = their fold1_evaluate rows, unseen test = every meta.csv row of the
        held-out cities (asc-factorized.md §6)."""
        if name == "official":
            train = [self.clips[f] for f in self.fold_train]
            test = [self.clips[f] for f in self.fold_evaluate]
        elif name == "leave_cities_out":
            unknown = sorted(set(unseen_cities) - set(self.cities))
            if unknown:
                raise TAU2019Error(
                    f"{self.root}: unknown cities {', '.join(unknown)}; available: {', '.join(self.cities)}"
                )
            held = set(unseen_cities)
            train = [self.clips[f] for f in self.fold_train if self.clips[f].city not in held]
            test = [self.clips[f] for f in self.fold_evaluate if self.clips[f].city not in held]
            test += [c for c in self.clips.values() if c.city in held]
        else:
            raise TAU2019Error(f"unknown split {name!r}; valid: official, leave_cities_out")
        cells = {(c.scene, c.city) for c in train}
        seen = [c for c in test if (c.scene, c.city) in cells]
        unseen = [c for c in test if (c.scene, c.city) not in cells]
        return SceneSplit(name, train, seen, unseen)

    def cities_only_in_evaluate(self) -> list[str]:
        """Cities of fold1_evaluate that fold1_train never has (the loader reports them)."""
        train = {self.clips[f].city for f in self.fold_train}
        return sorted({self.clips[f].city for f in self.fold_evaluate} - train)


class SceneDataset(Dataset):
    """Waveforms of scene clips: mono, resampled to ``sample_rate_hz``, cut or zero-padded to ``seconds``."""

    def __init__(
        self, corpus: TAU2019, clips: list[SceneClip], sample_rate_hz: int = 16000, seconds: float = 10.0
    ):
        self.corpus, self.clips = corpus, clips
        self.sample_rate_hz, self.n_samples = sample_rate_hz, int(round(seconds * sample_rate_hz))

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[i]
        if not clip.path.is_file():
            raise TAU2019Error(f"{clip.path}: audio file missing")
        audio, _ = read_wav(clip.path, self.sample_rate_hz)
        out = np.zeros(self.n_samples, dtype=np.float32)
        out[: min(len(audio), self.n_samples)] = audio[: self.n_samples]
        return torch.from_numpy(out), self.corpus.label(clip.scene)
