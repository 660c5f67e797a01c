"""The 12-class keyword-spotting task in memory: waveforms, labels, noise, and the diagnostic sets.

Reads a Speech Commands root (``--data``) or the offline corpus ``synth-commands`` (its ``gsc/`` folder, plus
``channel/`` and ``real/``) through :mod:`devicelab.data.datasets.speech_commands`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from devicelab.audio.augment import BackgroundNoiseMixer
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.speech_commands import (
    LABELS_12,
    SpeechCommandsDataset,
    SpeechCommandsError,
    index_speech_commands,
    load_background_noise,
    official_test_set,
    read_clip,
    twelve_class_split,
)

if TYPE_CHECKING:
    from devicelab.core.sources import DataSource
    from devicelab.methods.kws_ssn.config import KwsSsnConfig


@dataclass
class ClipSet:
    """Waveforms (N, 16000) float32 and labels (N,) of one evaluation or training set."""

    waves: torch.Tensor
    labels: torch.Tensor
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class KwsTask:
    """Everything one experiment trains and evaluates on."""

    train: ClipSet
    validation: ClipSet
    test: ClipSet
    noises: list[torch.Tensor]
    gsc_version: int
    source: str  # "gsc" (real data) or the corpus name
    test_kind: str  # "official test set" or "list test split"
    channel: ClipSet | None = None  # synth-commands channel/: test clips through an unseen channel
    real: ClipSet | None = None  # synth-commands real/: ten real spoken digits (all _unknown_)
    speakers: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # bad files dropped with skip_bad, one error each
    # front-end features of the evaluation sets, by (front end, set name): computed once per run, before the
    # stages fork, and read by every stage (see ``cache_eval_features``)
    features: dict[tuple[str, str], torch.Tensor] = field(default_factory=dict)
    # synth-commands: each test clip's voice ("flite slt", "espeak-ng f3"; "_silence_"), from speakers.csv
    test_voices: list[str] = field(default_factory=list)

    def eval_sets(self) -> dict[str, ClipSet]:
        """The sets every model is evaluated on (validation, test and the diagnostics present)."""
        sets = {"validation": self.validation, "test": self.test}
        if self.channel is not None:
            sets["channel"] = self.channel
        if self.real is not None:
            sets["real"] = self.real
        return sets


def _stratified_subset(labels: list[int], limit: int, seed: int) -> list[int]:
    """Indices of at most ``limit`` items keeping class proportions (smoke runs)."""
    if limit <= 0 or limit >= len(labels):
        return list(range(len(labels)))
    rng = child_rng(seed, "subset")
    order = rng.permutation(len(labels))
    per_class: dict[int, list[int]] = {}
    for i in order:
        per_class.setdefault(labels[i], []).append(int(i))
    keep, k = [], 0
    while len(keep) < limit:  # round-robin over classes
        for c in sorted(per_class):
            if k < len(per_class[c]) and len(keep) < limit:
                keep.append(per_class[c][k])
        k += 1
    return sorted(keep)


def _noisy_silence(
    clips: ClipSet, noises: list[torch.Tensor], amplitude: float, seed: int, key: str
) -> ClipSet:
    """Evaluation sets: ``_silence_`` clips get noise U(0, amplitude), fixed by ``seed`` (as BC-ResNet's
    validation)."""
    mixer = BackgroundNoiseMixer(noises, silence_max_amplitude=amplitude)
    waves = mixer(clips.waves, clips.labels, child_rng(seed, "eval-noise", key), train=False)
    return ClipSet(waves, clips.labels, clips.names)


def _load(clips, skipped: list[str] | None = None) -> ClipSet:
    """The clips in memory; with a ``skipped`` list, bad files are dropped and their errors appended to it."""
    dataset = SpeechCommandsDataset(clips)
    waves, labels = dataset.load_all(skip_bad=skipped is not None)
    if skipped is not None:
        skipped.extend(dataset.skipped)
    return ClipSet(waves, labels, [str(c.path) if c.path else "_silence_" for c in dataset.clips])


def _list_set(root: Path, reference: list, label_of_word) -> ClipSet | None:
    """A folder with ``testing_list.txt`` (synth-commands ``channel/`` or ``real/``) as a labelled set."""
    list_file = root / "testing_list.txt"
    if not list_file.is_file():
        return None
    rels = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    if reference:
        wanted = set(reference)
        rels = [r for r in rels if r in wanted]
    waves, labels = [], []
    for rel in rels:
        path = root / rel
        if not path.is_file():
            raise SpeechCommandsError(f"{path}: listed in {list_file} but missing")
        waves.append(read_clip(path))
        labels.append(label_of_word(rel.split("/", 1)[0]))
    if not rels:
        return None
    return ClipSet(torch.from_numpy(np.stack(waves)), torch.tensor(labels), rels)


def label_of_word(word: str) -> int:
    """12-class id of a Speech Commands word (non-keywords are ``_unknown_``)."""
    return LABELS_12.index(word) if word in LABELS_12 else 1


def load_config_task(config: KwsSsnConfig, data: DataSource, skip_bad: bool = False) -> KwsTask:
    """:func:`load_task` with the run config's protocol on a resolved source (offline corpus or --data)."""
    return load_task(
        data.path / "gsc" if data.is_corpus else data.path,
        caps=config.class_caps,
        seed=config.seed,
        silence_noise_amplitude=config.silence_noise_amplitude,
        max_train_clips=config.max_train_clips,
        test_set=config.test_set,
        extra_root=data.path if data.is_corpus else None,
        source=data.corpus or "gsc",
        skip_bad=skip_bad,
    )


def load_task(
    root: Path,
    *,
    caps: str,
    seed: int,
    silence_noise_amplitude: float,
    max_train_clips: int = 0,
    test_set: str = "",
    extra_root: Path | None = None,
    source: str = "gsc",
    skip_bad: bool = False,
) -> KwsTask:
    """Index ``root`` (a Speech Commands root), form the 12-class splits and load them into memory.

    ``seed`` fixes the ``_unknown_`` subsets and the evaluation noise: every model sees the same sets.
    ``extra_root`` is a synth-commands corpus folder holding ``channel/`` and ``real/``. A bad audio file is
    an :class:`~devicelab.audio.io.AudioError` naming it; with ``skip_bad`` the train, validation and test
    sets drop it and ``KwsTask.skipped`` lists it.
    """
    skipped: list[str] | None = [] if skip_bad else None
    index = index_speech_commands(root)
    noises = load_background_noise(index)
    train_clips = twelve_class_split(index, "train", seed, caps)
    keep = _stratified_subset([c.label for c in train_clips], max_train_clips, seed)
    train_clips = [train_clips[i] for i in keep]
    validation = _noisy_silence(
        _load(twelve_class_split(index, "validation", seed, caps), skipped),
        noises,
        silence_noise_amplitude,
        seed,
        "validation",
    )
    if test_set:
        test, test_kind = _load(official_test_set(test_set, index.version), skipped), "official test set"
    else:
        # without the official test set, test silence is treated like validation silence [reconstruction]
        test = _noisy_silence(
            _load(twelve_class_split(index, "test", seed, caps), skipped),
            noises,
            silence_noise_amplitude,
            seed,
            "test",
        )
        test_kind = "list test split"
    channel = real = None
    if extra_root is not None:
        test_rels = [Path(n).relative_to(root).as_posix() for n in test.names if n != "_silence_"]
        channel = _list_set(extra_root / "channel", test_rels, label_of_word)
        real = _list_set(extra_root / "real", [], lambda word: 1)
    speakers = {split: len(index.speakers(split)) for split in ("train", "validation", "test")}
    train = _load(train_clips, skipped)
    return KwsTask(
        train,
        validation,
        test,
        noises,
        index.version,
        source,
        test_kind,
        channel,
        real,
        speakers,
        skipped or [],
        test_voices=clip_voices(root, test.names),
    )


def clip_voices(root: Path, names: list[str]) -> list[str]:
    """The base voice of each clip from a synth-commands ``speakers.csv`` ("flite slt", "espeak-ng f3": a
    recorded person or an espeak-ng variant file, the unit the splits keep together); [] without the file."""
    table = root / "speakers.csv"
    if not table.is_file():
        return []
    with open(table, newline="") as f:
        voice = {
            row["spk8"]: f"{row['engine']} {row['person'] if row['person'] != '-' else row['variant']}"
            for row in csv.DictReader(f)
        }
    return [
        voice.get(Path(n).name.split("_nohash_")[0], "?") if n != "_silence_" else "_silence_" for n in names
    ]
