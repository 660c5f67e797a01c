"""VoxCeleb1 in its published layout (and the VoxCeleb view of ``synth-speakers``).

```
ROOT/wav/<speaker id>/<video id>/<nnnnn>.wav     16 kHz mono (dev and test archives unpack into wav/)
ROOT/veri_test2.txt                              Vox1-O (cleaned): "<1|0> <enrol path> <test path>"
ROOT/list_test_all2.txt  list_test_hard2.txt     Vox1-E, Vox1-H (optional)
ROOT/vox1_meta.csv                               optional, TAB: VoxCeleb1 ID, VGGFace1 ID, Gender,
                                                 Nationality, Set
```
Without ``vox1_meta.csv`` the test speakers are id10270-id10309 (the published split).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from devicelab.audio.io import read_wav

TEST_SPEAKERS = frozenset(f"id{n}" for n in range(10270, 10310))
TRIAL_LISTS = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}


class VoxCelebError(ValueError):
    """A missing or malformed part of a VoxCeleb tree; the message names the file (and line)."""


@dataclass(frozen=True)
class Trial:
    target: int  # 1 same speaker, 0 different
    enrol: str  # path relative to wav/
    test: str


@dataclass(frozen=True)
class VoxUtterance:
    speaker: str
    session: str  # video id
    path: Path

    @property
    def rel(self) -> str:
        return f"{self.speaker}/{self.session}/{self.path.name}"

    def audio(self, sample_rate_hz: int = 16000) -> np.ndarray:
        audio, _ = read_wav(self.path, sample_rate_hz)
        return audio


class VoxCeleb1:
    """A VoxCeleb1 root: utterances per speaker, metadata, trial lists checked against the audio."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.wav_dir = self.root / "wav"
        if not self.wav_dir.is_dir():
            raise VoxCelebError(f"{self.wav_dir}: missing (the dev and test archives unpack into wav/)")

    @cached_property
    def utterances(self) -> list[VoxUtterance]:
        out = [
            VoxUtterance(p.parent.parent.name, p.parent.name, p)
            for p in sorted(self.wav_dir.glob("*/*/*.wav"))
        ]
        if not out:
            raise VoxCelebError(f"{self.wav_dir}: no <speaker>/<video>/<n>.wav files")
        return out

    @cached_property
    def meta(self) -> dict[str, dict[str, str]]:
        """``vox1_meta.csv`` rows by speaker id ({} when the file is absent)."""
        path = self.root / "vox1_meta.csv"
        if not path.is_file():
            return {}
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        if rows and "VoxCeleb1 ID" not in rows[0]:
            raise VoxCelebError(
                f"{path}: expected TAB-separated columns 'VoxCeleb1 ID', 'Gender', 'Set', ..."
            )
        return {r["VoxCeleb1 ID"].strip(): {k.strip(): (v or "").strip() for k, v in r.items()} for r in rows}

    def speakers(self, subset: str | None = None) -> list[str]:
        """All speakers, or those of ``subset`` (from the metadata, else the published dev/test split)."""
        present = sorted({u.speaker for u in self.utterances})
        if subset is None:
            return present
        if self.meta:
            return [s for s in present if self.meta.get(s, {}).get("Set") == subset]
        if subset not in ("dev", "test"):
            raise VoxCelebError(f"subset {subset!r}: without vox1_meta.csv only 'dev' and 'test' are known")
        return [s for s in present if (s in TEST_SPEAKERS) == (subset == "test")]

    def utterances_of(self, speakers: list[str] | set[str]) -> list[VoxUtterance]:
        wanted = set(speakers)
        return [u for u in self.utterances if u.speaker in wanted]

    def trials(self, name: str = "O") -> list[Trial]:
        """A trial list: ``O``/``E``/``H`` or a file name or path relative to the root; every file checked."""
        path = self.root / TRIAL_LISTS.get(name, name)
        if not path.is_file():
            raise VoxCelebError(f"{path}: trial list missing")
        trials = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 3 or parts[0] not in ("0", "1"):
                raise VoxCelebError(f"{path}:{number}: expected '<1|0> <enrol> <test>', got {line.strip()!r}")
            for rel in parts[1:]:
                if not (self.wav_dir / rel).is_file():
                    raise VoxCelebError(f"{path}:{number}: {self.wav_dir / rel} missing")
            trials.append(Trial(int(parts[0]), parts[1], parts[2]))
        if not trials:
            raise VoxCelebError(f"{path}: no trials")
        return trials
