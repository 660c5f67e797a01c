"""DESED / DCASE2019 task 4 in its published layout (sed-tritrain.md §6); the offline corpus
``game-events`` writes the same layout, so this loader reads both (only the root changes)::

    root/metadata/train/{weak,unlabel_in_domain,synthetic}.tsv
    root/metadata/validation/{validation,test_dcase2018,eval_dcase2018}.tsv
    root/metadata/eval/public.tsv
    root/audio/train/{weak,unlabel_in_domain,synthetic}/   root/audio/validation/   root/audio/eval/public/

``metadata/X/Y.tsv`` holds the clips of ``audio/X/Y/``, except that every ``validation/*.tsv`` maps to
``audio/validation/``. tsv files are TAB-separated with a header row: strong ``filename onset offset
event_label`` (a clip without events has one row with empty onset, offset and label), weak ``filename
event_labels`` (comma-separated), unlabelled ``filename``. Audio missing from a subset is normal for the
YouTube-sourced subsets: it is listed, and only more than ``max_missing_fraction`` of a subset fails.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from devicelab.audio.io import AudioError, read_wav

Kind = Literal["strong", "weak", "unlabeled"]

# subset -> (metadata tsv, audio folder, kind)
SUBSETS: dict[str, tuple[str, str, Kind]] = {
    "synthetic": ("metadata/train/synthetic.tsv", "audio/train/synthetic", "strong"),
    "weak": ("metadata/train/weak.tsv", "audio/train/weak", "weak"),
    "unlabel_in_domain": (
        "metadata/train/unlabel_in_domain.tsv",
        "audio/train/unlabel_in_domain",
        "unlabeled",
    ),
    "validation": ("metadata/validation/validation.tsv", "audio/validation", "strong"),
    "test_dcase2018": ("metadata/validation/test_dcase2018.tsv", "audio/validation", "strong"),
    "eval_dcase2018": ("metadata/validation/eval_dcase2018.tsv", "audio/validation", "strong"),
    "public": ("metadata/eval/public.tsv", "audio/eval/public", "strong"),
}
ORACLE = {"weak": "metadata/oracle/weak.tsv", "unlabel_in_domain": "metadata/oracle/unlabel_in_domain.tsv"}
HEADERS: dict[Kind, tuple[str, ...]] = {
    "strong": ("filename", "onset", "offset", "event_label"),
    "weak": ("filename", "event_labels"),
    "unlabeled": ("filename",),
}
DESED_CLASSES = (
    "Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog",
    "Electric_shaver_toothbrush", "Frying", "Running_water", "Speech", "Vacuum_cleaner",
)  # fmt: skip
PUBLISHED_CLIPS = {
    "weak": 1578,
    "unlabel_in_domain": 14412,
    "synthetic": 2045,
    "validation": 1168,
    "public": 692,
}
CLIP_SECONDS = 10.0


class DesedError(AudioError):
    """A DESED root or tsv file that does not have the published layout; the message names the file."""


@dataclass(frozen=True)
class Event:
    onset_s: float
    offset_s: float
    label: str


@dataclass(frozen=True)
class SedClip:
    """One clip: strong ``events`` (strong subsets), ``tags`` (weak subsets, and derived for strong)."""

    filename: str
    path: Path
    subset: str
    events: tuple[Event, ...] | None  # None when the subset has no strong labels
    tags: tuple[str, ...] | None  # None for unlabelled clips


@dataclass(frozen=True)
class SedSubset:
    name: str
    kind: Kind
    clips: list[SedClip]  # clips whose audio exists
    missing: list[str]  # filenames listed in the tsv without audio


def read_tsv(path: Path, kind: Kind, classes: Sequence[str] | None = None) -> dict[str, list]:
    """Parse one tsv file: ``{filename: [Event, ...]}`` (strong), ``{filename: [tag, ...]}`` (weak) or
    ``{filename: []}`` (unlabelled), in file order. Errors name the file and the line."""
    if not path.is_file():
        raise DesedError(f"{path}: tsv file missing")
    known = set(classes) if classes is not None else None
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header = HEADERS[kind]
    if not rows or tuple(c.strip() for c in rows[0][: len(header)]) != header:
        found = "\t".join(rows[0]) if rows else "an empty file"
        raise DesedError(f"{path}:1: expected the TAB-separated header {' '.join(header)!r}, found {found!r}")

    def check(label: str, number: int) -> str:
        if known is not None and label not in known:
            raise DesedError(f"{path}:{number}: unknown label {label!r}; classes: {', '.join(sorted(known))}")
        return label

    out: dict[str, list] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        name = row[0].strip()
        entry = out.setdefault(name, [])
        if kind == "strong":
            fields = [c.strip() for c in row[1:4]] + [""] * (3 - len(row[1:4]))
            if not any(fields):
                continue  # a clip without events
            try:
                onset, offset = float(fields[0]), float(fields[1])
            except ValueError:
                raise DesedError(
                    f"{path}:{number}: onset and offset must be numbers, found {row!r}"
                ) from None
            if offset < onset or not fields[2]:
                raise DesedError(f"{path}:{number}: expected onset <= offset and a label, found {row!r}")
            entry.append(Event(onset, offset, check(fields[2], number)))
        elif kind == "weak":
            if len(row) < 2:
                raise DesedError(f"{path}:{number}: expected filename and event_labels, found {row!r}")
            entry.extend(check(t.strip(), number) for t in row[1].split(",") if t.strip())
    return out


class DESED:
    """A DESED (DCASE2019 task 4) root, or a ``game-events`` corpus.

    ``classes``: the label set; by default read from the synthetic and weak metadata (code never
    hard-codes it). ``tsv_paths`` / ``audio_paths`` map subsets to other paths under the root, for the
    newer DESED releases that renamed folders (``{"synthetic": "metadata/train/synthetic21_train/
    soundscapes.tsv"}``).
    """

    def __init__(
        self,
        root: str | Path,
        classes: Sequence[str] | None = None,
        tsv_paths: Mapping[str, str] | None = None,
        audio_paths: Mapping[str, str] | None = None,
        max_missing_fraction: float = 0.2,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DesedError(f"{self.root}: no such folder (expected a DESED root with metadata/ and audio/)")
        for name in [*(tsv_paths or {}), *(audio_paths or {})]:
            if name not in SUBSETS:
                raise DesedError(f"unknown DESED subset {name!r}; subsets: {', '.join(SUBSETS)}")
        self.tsv_paths = {k: v[0] for k, v in SUBSETS.items()} | dict(tsv_paths or {})
        self.audio_paths = {k: v[1] for k, v in SUBSETS.items()} | dict(audio_paths or {})
        self.max_missing_fraction = max_missing_fraction
        self.classes = tuple(classes) if classes is not None else self._classes_from_metadata()

    def _classes_from_metadata(self) -> tuple[str, ...]:
        found: set[str] = set()
        for name in ("synthetic", "weak"):
            path = self.root / self.tsv_paths[name]
            if path.is_file():
                for labels in read_tsv(path, SUBSETS[name][2]).values():
                    found |= {e.label if isinstance(e, Event) else e for e in labels}
        if not found:
            raise DesedError(
                f"{self.root}: no class found: {self.tsv_paths['synthetic']} and {self.tsv_paths['weak']} "
                "are missing or empty"
            )
        return tuple(sorted(found))

    def subset(self, name: str) -> SedSubset:
        """The clips of one subset; fails naming the subset when more than ``max_missing_fraction`` of its
        audio is missing."""
        if name not in SUBSETS:
            raise DesedError(f"unknown DESED subset {name!r}; subsets: {', '.join(SUBSETS)}")
        kind = SUBSETS[name][2]
        tsv = self.root / self.tsv_paths[name]
        table = read_tsv(tsv, kind, self.classes)
        audio_dir = self.root / self.audio_paths[name]
        clips, missing = [], []
        for filename, entries in table.items():
            path = audio_dir / filename
            if not path.is_file():
                missing.append(filename)
                continue
            if kind == "strong":
                events = tuple(sorted(entries, key=lambda e: (e.onset_s, e.label)))
                clips.append(SedClip(filename, path, name, events, tuple(sorted({e.label for e in events}))))
            elif kind == "weak":
                clips.append(SedClip(filename, path, name, None, tuple(sorted(set(entries)))))
            else:
                clips.append(SedClip(filename, path, name, None, None))
        if table and len(missing) / len(table) > self.max_missing_fraction:
            raise DesedError(
                f"{tsv}: {len(missing)} of {len(table)} clips have no audio in {audio_dir} "
                f"(over {self.max_missing_fraction:.0%}); first: {', '.join(missing[:5])}"
            )
        return SedSubset(name, kind, clips, missing)

    def oracle(self, name: str) -> dict[str, tuple[Event, ...]]:
        """Hidden strong labels of the weak or unlabelled clips (offline corpus only; diagnostics)."""
        if name not in ORACLE:
            raise DesedError(f"no oracle labels for subset {name!r}; subsets with them: {', '.join(ORACLE)}")
        table = read_tsv(self.root / ORACLE[name], "strong", self.classes)
        return {k: tuple(v) for k, v in table.items()}

    def write_missing(self, subsets: Sequence[SedSubset], path: str | Path) -> Path:
        """``missing_files.tsv`` (subset, filename) of the given subsets."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{s.name}\t{f}" for s in subsets for f in s.missing]
        path.write_text("subset\tfilename\n" + "".join(f"{line}\n" for line in lines))
        return path


def load_clip(path: Path, sample_rate_hz: int = 16000, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """A clip as the models read it: mono, resampled, zero-padded or cut to ``seconds``."""
    audio, _ = read_wav(path, sample_rate_hz)
    n = int(round(seconds * sample_rate_hz))
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(audio))] = audio[:n]
    return out


class SedDataset(Dataset):
    """Waveforms of DESED clips with their clip-level tags as a multi-hot vector (zeros when unlabelled)."""

    def __init__(self, clips: Sequence[SedClip], classes: Sequence[str], sample_rate_hz: int = 16000):
        self.clips, self.classes, self.sample_rate_hz = list(clips), tuple(classes), sample_rate_hz

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        clip = self.clips[i]
        if not clip.path.is_file():
            raise DesedError(f"{clip.path}: audio file missing")
        tags = torch.zeros(len(self.classes))
        for tag in clip.tags or ():
            tags[self.classes.index(tag)] = 1.0
        return torch.from_numpy(load_clip(clip.path, self.sample_rate_hz)), tags
