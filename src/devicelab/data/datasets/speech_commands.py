"""Google Speech Commands v0.01 / v0.02 in its published layout: the 12-class and 35-class protocols.

Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition" (arXiv 1804.03209); the
12-class protocol (class ids, per-split ``_unknown_`` / ``_silence_`` counts) follows the BC-ResNet code
(``Qualcomm-AI-research/bcresnet`` ``utils.py``). Splits come from ``validation_list.txt`` and
``testing_list.txt`` only; they are never re-derived. The offline corpus ``synth-commands`` writes the same
layout under ``<corpus>/gsc/``, so this loader reads both::

    root/<word>/<speaker>_nohash_<k>.wav      16 kHz mono, <= 1 s
    root/_background_noise_/*.wav             long noise recordings
    root/validation_list.txt  root/testing_list.txt   lines "right/bb05582b_nohash_3.wav"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from devicelab.audio.io import AudioError, read_wav
from devicelab.core.seeding import child_rng

SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = SAMPLE_RATE_HZ  # 1 s
SILENCE, UNKNOWN = "_silence_", "_unknown_"
BACKGROUND_NOISE = "_background_noise_"
KEYWORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
LABELS_12 = (SILENCE, UNKNOWN, *KEYWORDS)  # class ids 0..11, as the BC-ResNet code
WORDS_V1 = frozenset(KEYWORDS) | frozenset(
    "zero one two three four five six seven eight nine".split()
    + "bed bird cat dog happy house marvin sheila tree wow".split()
)
WORDS_V2 = WORDS_V1 | frozenset(("backward", "forward", "follow", "learn", "visual"))
SPLITS = ("train", "validation", "test")
# _unknown_ and _silence_ clips per split in the 12-class task (BC-ResNet utils.py)
PUBLISHED_CLASS_CAPS = {
    1: {"train": 1854, "validation": 258, "test": 257},
    2: {"train": 3077, "validation": 371, "test": 408},
}

ClassCaps = Literal["published", "keyword_mean"]


class SpeechCommandsError(AudioError):
    """A Speech Commands folder that does not have the published layout; the message names the file."""


@dataclass(frozen=True)
class Clip:
    """One 1 s example: ``path`` is None for a generated all-zero ``_silence_`` clip."""

    path: Path | None
    word: str  # folder name (``_silence_`` for generated silence)
    speaker: str  # prefix before ``_nohash_`` ("" for silence)
    label: int
    split: str


def speaker_of(filename: str) -> str:
    """Speaker id of ``bb05582b_nohash_3.wav``: the prefix before ``_nohash_``."""
    stem, sep, _ = filename.partition("_nohash_")
    if not sep:
        raise SpeechCommandsError(f"{filename}: not a Speech Commands file name (<speaker>_nohash_<k>.wav)")
    return stem


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise SpeechCommandsError(
            f"{path}: list file missing (a Speech Commands root has validation_list.txt and testing_list.txt)"
        )
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


@dataclass(frozen=True)
class SpeechCommandsIndex:
    """Every clip of a checked Speech Commands root with its split, word and speaker."""

    root: Path
    version: int  # 1 (30 words) or 2 (35 words)
    words: tuple[str, ...]
    files: tuple[tuple[str, str], ...]  # (relative path "word/file.wav", split), sorted
    noise_files: tuple[Path, ...]

    def clips(self, split: str) -> list[tuple[str, str]]:
        """(relative path, word) of one split."""
        return [(rel, rel.split("/", 1)[0]) for rel, s in self.files if s == split]

    def speakers(self, split: str) -> set[str]:
        return {speaker_of(rel.split("/", 1)[1]) for rel, s in self.files if s == split}


def detect_version(words: Iterable[str], root: Path) -> int:
    """1 for the 30 words of v0.01, 2 for the 35 of v0.02; otherwise an error naming the odd words."""
    found = set(words)
    if found == WORDS_V1:
        return 1
    if found == WORDS_V2:
        return 2
    missing, extra = sorted(WORDS_V1 - found), sorted(found - WORDS_V2)
    detail = (f"missing word folders: {', '.join(missing)}" if missing else "") + (
        f"{'; ' if missing else ''}unexpected folders: {', '.join(extra)}" if extra else ""
    )
    raise SpeechCommandsError(
        f"{root}: word folders match neither v0.01 (30 words) nor v0.02 (35 words); "
        f"{detail or 'partial v0.02 word set'}"
    )


def index_speech_commands(root: str | Path) -> SpeechCommandsIndex:
    """Check the layout of a Speech Commands root and assign every clip to its split from the two lists.

    Checks: the root exists, both list files, a non-empty ``_background_noise_/``, each listed file present,
    file names of the form ``<speaker>_nohash_<k>.wav``, a v0.01 or v0.02 word set. Errors name the file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SpeechCommandsError(f"{root}: Speech Commands root not found")
    validation = _read_list(root / "validation_list.txt")
    testing = _read_list(root / "testing_list.txt")
    noise_dir = root / BACKGROUND_NOISE
    noise_files = tuple(sorted(noise_dir.glob("*.wav"))) if noise_dir.is_dir() else ()
    if not noise_files:
        raise SpeechCommandsError(f"{noise_dir}: missing or has no .wav noise recordings")
    words = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    version = detect_version(words, root)
    split_of: dict[str, str] = {}
    for rel in sorted(
        p.relative_to(root).as_posix() for w in words for p in (root / w).iterdir() if p.suffix == ".wav"
    ):
        speaker_of(rel.split("/", 1)[1])
        split_of[rel] = "train"
    for list_name, names, split in (
        ("validation_list.txt", validation, "validation"),
        ("testing_list.txt", testing, "test"),
    ):
        for line_no, rel in enumerate(names, start=1):
            if rel not in split_of:
                raise SpeechCommandsError(f"{root / rel}: listed in {list_name} (line {line_no}) but missing")
            if split_of[rel] != "train":
                raise SpeechCommandsError(f"{rel}: listed in both validation_list.txt and testing_list.txt")
            split_of[rel] = split
    files = tuple(sorted(split_of.items()))
    return SpeechCommandsIndex(root, version, tuple(words), files, noise_files)


def class_caps(index: SpeechCommandsIndex, caps: ClassCaps | Mapping[str, int]) -> dict[str, int]:
    """The number of ``_unknown_`` and of ``_silence_`` clips per split in the 12-class task.

    "published": the BC-ResNet counts for the detected version (v1 1854/258/257, v2 3077/371/408).
    "keyword_mean": the mean count of the ten keywords in that split, which gives the same class balance on a
    smaller corpus (synth-commands) [reconstruction]. A mapping gives explicit counts per split.
    """
    if isinstance(caps, Mapping):
        missing = [s for s in SPLITS if s not in caps]
        if missing:
            raise ValueError(f"class caps lack split {missing[0]!r}")
        return {s: int(caps[s]) for s in SPLITS}
    if caps == "published":
        return dict(PUBLISHED_CLASS_CAPS[index.version])
    if caps == "keyword_mean":
        out = {}
        for split in SPLITS:
            counts = [sum(1 for _, w in index.clips(split) if w == k) for k in KEYWORDS]
            out[split] = int(round(sum(counts) / len(KEYWORDS)))
        return out
    raise ValueError(f"caps={caps!r}: expected 'published', 'keyword_mean' or a mapping split -> count")


def twelve_class_split(
    index: SpeechCommandsIndex, split: str, seed: int = 0, caps: ClassCaps | Mapping[str, int] = "published"
) -> list[Clip]:
    """The 12-class task of one split: ten keywords (all clips), a seeded random subset of the other words as
    ``_unknown_``, and all-zero ``_silence_`` clips, both capped by :func:`class_caps`.

    Class ids: ``_silence_`` 0, ``_unknown_`` 1, down .. yes 2-11 (BC-ResNet ``label_dict``).
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    cap = class_caps(index, caps)[split]
    clips, unknown = [], []
    for rel, word in index.clips(split):
        speaker = speaker_of(rel.split("/", 1)[1])
        if word in KEYWORDS:
            clips.append(Clip(index.root / rel, word, speaker, LABELS_12.index(word), split))
        else:
            unknown.append(Clip(index.root / rel, word, speaker, 1, split))
    rng = child_rng(seed, "unknown", split)
    chosen = sorted(rng.choice(len(unknown), size=min(cap, len(unknown)), replace=False).tolist())
    clips += [unknown[i] for i in chosen]
    clips += [Clip(None, SILENCE, "", 0, split) for _ in range(cap)]
    return clips


def all_words_split(index: SpeechCommandsIndex, split: str) -> list[Clip]:
    """The 35-class (v2) or 30-class (v1) task: every word is a class, ids in alphabetical order."""
    return [
        Clip(index.root / rel, word, speaker_of(rel.split("/", 1)[1]), index.words.index(word), split)
        for rel, word in index.clips(split)
    ]


def official_test_set(test_root: str | Path, version: int) -> list[Clip]:
    """The separate official 12-class test set (``speech_commands_test_set_v0.0X``: 12 class folders).

    ``_unknown_`` and ``_silence_`` are capped at the published test counts, taking files in sorted order.
    """
    test_root = Path(test_root)
    missing = [c for c in LABELS_12 if not (test_root / c).is_dir()]
    if missing:
        raise SpeechCommandsError(f"{test_root / missing[0]}: class folder of the official test set missing")
    cap = PUBLISHED_CLASS_CAPS[version]["test"]
    clips = []
    for label, name in enumerate(LABELS_12):
        files = sorted((test_root / name).glob("*.wav"))
        if name in (SILENCE, UNKNOWN):
            files = files[:cap]
        clips += [Clip(f, name, f.stem.partition("_nohash_")[0], label, "test") for f in files]
    return clips


def read_clip(path: Path | None, num_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """A clip as float32 (num_samples,), zero-padded at the end (Speech Commands clips may be shorter than
    1 s). Longer clips, other rates, cut-short, empty and non-finite files are :class:`AudioError`."""
    if path is None:
        return np.zeros(num_samples, dtype=np.float32)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio ({e})") from None
    if info.samplerate != SAMPLE_RATE_HZ:
        raise AudioError(f"{path}: sample rate {info.samplerate} Hz, expected {SAMPLE_RATE_HZ} Hz")
    if info.frames > num_samples:
        raise AudioError(f"{path}: {info.frames} samples is longer than 1 s ({num_samples} samples)")
    audio, _ = read_wav(path)
    return np.pad(audio, (0, num_samples - audio.shape[0]))


def load_background_noise(index_or_files: SpeechCommandsIndex | Sequence[Path]) -> list[torch.Tensor]:
    """The ``_background_noise_`` recordings as 1-D float tensors at 16 kHz (resampled if needed)."""
    files = index_or_files.noise_files if isinstance(index_or_files, SpeechCommandsIndex) else index_or_files
    noises = []
    for f in files:
        audio, _ = read_wav(f, sample_rate_hz=SAMPLE_RATE_HZ)
        if audio.shape[0] < CLIP_SAMPLES:
            raise AudioError(f"{f}: noise recording shorter than 1 s")
        noises.append(torch.from_numpy(audio))
    return noises


class SpeechCommandsDataset(Dataset):
    """1 s clips of a list of :class:`Clip`: item = (waveform (1, 16000) float32, label)."""

    def __init__(self, clips: Sequence[Clip]):
        self.clips = list(clips)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[i]
        return torch.from_numpy(read_clip(clip.path))[None], clip.label

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([c.label for c in self.clips], dtype=torch.long)

    def load_all(self, skip_bad: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Every clip in memory: waveforms (N, 16000) float32 and labels (N,).

        A bad file (unreadable, cut short, empty, non-finite, too long, other rate) is an :class:`AudioError`;
        with ``skip_bad`` it is dropped from ``self.clips`` instead and its error kept in ``self.skipped``.
        """
        self.skipped: list[str] = []
        waves, kept = [], []
        for clip in self.clips:
            try:
                waves.append(read_clip(clip.path))
            except AudioError as e:
                if not skip_bad:
                    raise
                self.skipped.append(str(e))
                continue
            kept.append(clip)
        self.clips = kept
        stacked = np.stack(waves) if waves else np.zeros((0, CLIP_SAMPLES))
        return torch.from_numpy(stacked.astype(np.float32)), self.labels


def make_toy_speech_commands(
    root: str | Path,
    version: int = 2,
    speakers: Mapping[str, int] | None = None,
    takes: int = 1,
    seed: int = 0,
) -> Path:
    """Write a tiny synthetic tree in the published layout (tests and examples; not speech).

    Each word is a fixed pair of tones (a word-specific chord) with speaker-specific pitch and random
    onset; ``speakers`` gives the number of speakers per split (default train 6, validation 2, test 2) and
    ``takes`` the clips per (speaker, word). Two noise recordings go to ``_background_noise_/``.
    """
    from devicelab.audio.io import write_wav

    root = Path(root)
    speakers = dict(speakers or {"train": 6, "validation": 2, "test": 2})
    words = sorted(WORDS_V1 if version == 1 else WORDS_V2)
    lists: dict[str, list[str]] = {"validation": [], "test": []}
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE_HZ
    for split, n_speakers in speakers.items():
        for s in range(n_speakers):
            speaker = f"{SPLITS.index(split):02x}{s:06x}"  # 8 hex digits like GSC ids
            rng = child_rng(seed, "toy", speaker)
            pitch = rng.uniform(0.9, 1.1)
            for w, word in enumerate(words):
                for k in range(takes):
                    length = int(rng.uniform(0.5, 0.9) * CLIP_SAMPLES)
                    f1, f2 = (300 + 90 * w) * pitch, (1200 + 170 * ((7 * w) % 35)) * pitch
                    tone = 0.3 * np.sin(2 * np.pi * f1 * t[:length]) + 0.2 * np.sin(
                        2 * np.pi * f2 * t[:length]
                    )
                    tone *= np.hanning(length)
                    clip = tone + 0.003 * rng.standard_normal(length)
                    rel = f"{word}/{speaker}_nohash_{k}.wav"
                    write_wav(root / rel, clip.astype(np.float32), SAMPLE_RATE_HZ)
                    if split in lists:
                        lists[split].append(rel)
    rng = child_rng(seed, "toy-noise")
    for name, colour in (("white_noise.wav", 0), ("brown_noise.wav", 1)):
        noise = rng.standard_normal(5 * SAMPLE_RATE_HZ)
        if colour:
            noise = np.cumsum(noise)
            noise -= noise.mean()
        write_wav(
            root / BACKGROUND_NOISE / name,
            (0.3 * noise / np.abs(noise).max()).astype(np.float32),
            SAMPLE_RATE_HZ,
        )
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in lists["validation"]))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in lists["test"]))
    return root
