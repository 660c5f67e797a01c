"""Phone tokens in memory: a TIMIT root (``--data``) or the offline corpus ``synth-phones`` (same layout).

Every utterance of the train set and of the test set is read through :mod:`devicelab.data.datasets.timit`
(61 → 39 folding, SA sentences left out), turned into MFCC + Δ + ΔΔ features over the whole utterance and cut
into phone tokens of the configured classes (spec §2.1). A seed then draws each stage's train and test
tokens, spread over speakers (:func:`draw_split`), so every system of one seed sees the same tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from devicelab.audio.io import AudioError
from devicelab.core.config import ConfigError
from devicelab.core.seeding import child_rng
from devicelab.data.datasets.timit import Timit, TimitError, TimitUtterance
from devicelab.data.speech.phones import timit39
from devicelab.methods.phoneme_vgpds.config import PhonemeVgpdsConfig, SyntheticClassificationConfig
from devicelab.methods.phoneme_vgpds.features import PhoneFeatures, cut_tokens
from devicelab.methods.phoneme_vgpds.synthetic import classification_set

log = logging.getLogger(__name__)


class PhoneDataError(AudioError):
    """A TIMIT-layout tree that cannot be used; the message names the file (and line) or the class."""


@dataclass
class TokenPool:
    """Every token of one set, per class: frames (n, D) float64 and the speaker of each token."""

    tokens: list[list[np.ndarray]]
    speakers: list[list[str]]

    def counts(self) -> list[int]:
        return [len(t) for t in self.tokens]


@dataclass
class PhoneTask:
    """All the data one experiment trains and evaluates on; the task of every stage."""

    classes: list[str]
    train: TokenPool
    test: TokenPool
    source: str  # "timit" (real data) or the corpus name
    test_subset: str
    utterances: dict[str, int] = field(default_factory=dict)
    speakers: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SeedSplit:
    """The tokens of one seed: train tokens per class, test tokens and their class indices."""

    train: list[list[np.ndarray]]
    test: list[np.ndarray]
    test_labels: np.ndarray


def check_classes(classes: list[str]) -> list[str]:
    """The configured 39-set classes ([] = all 39); an unknown label is a one-line error naming it."""
    known = timit39()
    if not classes:
        return list(known)
    unknown = [c for c in classes if c not in known]
    if unknown:
        raise ConfigError(f"classes: unknown phone {unknown[0]!r}; valid (TIMIT 39-set): {' '.join(known)}")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes repeat: {' '.join(classes)}")
    return list(classes)


def _pool(
    utterances: list[TimitUtterance],
    classes: list[str],
    frontend: PhoneFeatures,
    config: PhonemeVgpdsConfig,
    skipped: list[str] | None,
) -> TokenPool:
    index = {c: k for k, c in enumerate(classes)}
    tokens: list[list[np.ndarray]] = [[] for _ in classes]
    speakers: list[list[str]] = [[] for _ in classes]
    for utt in utterances:
        try:
            audio, rate = utt.audio()
            if rate != config.features.sample_rate_hz:
                raise TimitError(
                    f"{utt.wav}: sample rate {rate} Hz, expected {config.features.sample_rate_hz}"
                )
            if not np.isfinite(audio).all():
                raise TimitError(f"{utt.wav}: non-finite samples")
            segments = [(s.start, s.end, s.label) for s in utt.phones(drop_hsharp=config.drop_hsharp)]
        except TimitError as e:
            if skipped is None:
                raise PhoneDataError(str(e)) from None
            skipped.append(str(e))
            continue
        with torch.no_grad():
            features = frontend(torch.from_numpy(np.asarray(audio, dtype=np.float64))).numpy()
        for label, frames in cut_tokens(
            features,
            segments,
            set(classes),
            config.min_frames,
            config.max_frames,
            frontend.window_length,
            frontend.hop_length,
        ):
            tokens[index[label]].append(frames)
            speakers[index[label]].append(utt.speaker)
    return TokenPool(tokens, speakers)


def load_task(
    root: Path, config: PhonemeVgpdsConfig, *, source: str = "timit", skip_bad: bool = False
) -> PhoneTask:
    """Index the TIMIT-layout ``root``, compute features and cut the tokens of ``config.classes``.

    The train set is TRAIN without SA1/SA2; the test set is ``config.test_subset`` of TEST for real TIMIT and
    every TEST speaker (the held-out voices) for an offline corpus. A class without train or test tokens is a
    :class:`PhoneDataError`; a class with fewer tokens than a seed asks for is listed in ``warnings``.
    """
    classes = check_classes(config.classes)
    try:
        timit = Timit(root)
        train_utts = timit.utterances("train")
        test_subset = config.test_subset if source == "timit" else "test"
        test_utts = timit.utterances(test_subset)
    except TimitError as e:
        raise PhoneDataError(str(e)) from None
    for name, utts in (("train (TRAIN without SA)", train_utts), (test_subset, test_utts)):
        if not utts:
            raise PhoneDataError(f"{root}: no {name} utterances")
    frontend = PhoneFeatures(config.features)
    skipped: list[str] | None = [] if skip_bad else None
    train = _pool(train_utts, classes, frontend, config, skipped)
    test = _pool(test_utts, classes, frontend, config, skipped)
    notes = []
    for name, pool, wanted in (
        ("train", train, config.train_tokens_per_class),
        ("test", test, config.test_tokens_per_class),
    ):
        for c, count in zip(classes, pool.counts()):
            if count == 0:
                raise PhoneDataError(
                    f"{root}: class {c!r} has no {name} tokens of ≥ {config.min_frames} frames"
                )
            if count < wanted:
                notes.append(f"class {c!r}: {count} {name} tokens, fewer than the {wanted} asked for")
    for note in notes:
        log.warning(note)
    return PhoneTask(
        classes=classes,
        train=train,
        test=test,
        source=source,
        test_subset=test_subset,
        utterances={"train": len(train_utts), "test": len(test_utts)},
        speakers={"train": len({u.speaker for u in train_utts}), "test": len({u.speaker for u in test_utts})},
        skipped=skipped or [],
        warnings=notes,
    )


def spread_over_speakers(speakers: list[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``count`` items (all when 0 or more than there are), drawn round-robin over speakers in a
    seeded order, each speaker's items in a seeded order: as many from every speaker as possible."""
    order = rng.permutation(len(speakers))
    seen: dict[str, int] = {}
    rank = np.empty(len(speakers), dtype=np.int64)
    for i in order:  # rank of each item within its speaker, in the shuffled order
        rank[i] = seen.get(speakers[i], 0)
        seen[speakers[i]] = rank[i] + 1
    position = np.empty(len(speakers), dtype=np.int64)
    position[order] = np.arange(len(speakers))
    picked = sorted(range(len(speakers)), key=lambda i: (rank[i], position[i]))
    if 0 < count < len(picked):
        picked = picked[:count]
    return np.sort(np.asarray(picked, dtype=np.int64))


def draw_split(task: PhoneTask, seed: int, train_per_class: int, test_per_class: int) -> SeedSplit:
    """The train and test tokens of ``seed`` (spec §3 "seeds: token subsample + init")."""
    train = []
    test: list[np.ndarray] = []
    labels: list[int] = []
    for c, name in enumerate(task.classes):
        keep = spread_over_speakers(task.train.speakers[c], train_per_class, child_rng(seed, "train", name))
        train.append([task.train.tokens[c][i] for i in keep])
        keep = spread_over_speakers(task.test.speakers[c], test_per_class, child_rng(seed, "test", name))
        test += [task.test.tokens[c][i] for i in keep]
        labels += [c] * len(keep)
    return SeedSplit(train, test, np.asarray(labels, dtype=np.int64))


def synthetic_split(config: SyntheticClassificationConfig, seed: int) -> SeedSplit:
    """The synthetic set of spec §7 drawn with ``config.seed + seed`` (a fresh set per seed)."""
    data = classification_set(replace(config, seed=config.seed + seed))
    tokens, labels = data.test_tokens_and_labels()
    return SeedSplit(data.train, tokens, labels)
