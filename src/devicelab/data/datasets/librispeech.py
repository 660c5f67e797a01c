"""LibriSpeech (OpenSLR 12) in its published layout, and the LibriSpeech view of ``synth-speakers``.

```
ROOT/  SPEAKERS.TXT  CHAPTERS.TXT                    (optional here; parsed when present)
  <subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt:04d>.flac|.wav
  <subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt       "<utt id> TRANSCRIPT"
  <subset>/<speaker>/<chapter>/<speaker>-<chapter>.alignment.txt   optional word alignments
```
Word alignments follow the Montreal-Forced-Aligner release of ``CorentinJ/librispeech-alignments``: one
line per utterance, ``<utt id> ",W1,W2,," "t1,t2,..."`` (words and end times in seconds; empty words are
silences); unaligned utterances have no line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from devicelab.audio.io import read_wav

AUDIO_SUFFIXES = (".flac", ".wav")


class LibriSpeechError(ValueError):
    """A missing or malformed part of a LibriSpeech tree; the message names the file (and line)."""


@dataclass(frozen=True)
class AlignedWord:
    word: str  # "" for silence
    start_s: float
    end_s: float


@dataclass
class LibriUtterance:
    utt_id: str
    speaker: str
    chapter: str
    path: Path
    text: str
    alignment: list[AlignedWord] | None = field(default=None)

    def audio(self, sample_rate_hz: int = 16000) -> np.ndarray:
        audio, _ = read_wav(self.path, sample_rate_hz)
        return audio


def parse_alignment_line(line: str, source: str = "") -> tuple[str, list[AlignedWord]]:
    """``<utt id> ",W1,W2," "t1,t2,t3"`` -> (utt id, words with start and end times)."""
    parts = line.strip().split(" ")
    if len(parts) != 3:
        raise LibriSpeechError(f'{source}: expected \'<utt id> "words" "end times"\', got {line.strip()!r}')
    utt_id, words_field, times_field = parts
    words = words_field.strip('"').split(",")
    try:
        ends = [float(t) for t in times_field.strip('"').split(",")]
    except ValueError:
        raise LibriSpeechError(f"{source}: end times are not numbers in {line.strip()!r}") from None
    if len(words) != len(ends):
        raise LibriSpeechError(f"{source}: {len(words)} words but {len(ends)} end times")
    if any(b < a for a, b in zip(ends, ends[1:])):
        raise LibriSpeechError(f"{source}: end times are not increasing")
    starts = [0.0, *ends[:-1]]
    return utt_id, [AlignedWord(w, s, e) for w, s, e in zip(words, starts, ends)]


def read_speakers_txt(path: Path) -> dict[str, dict[str, str]]:
    """``SPEAKERS.TXT``: ``ID | SEX | SUBSET | MINUTES | NAME`` lines (``;`` starts a comment)."""
    table = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4:
            raise LibriSpeechError(f"{path}:{number}: expected 'ID | SEX | SUBSET | MINUTES | NAME'")
        table[cells[0]] = {
            "sex": cells[1],
            "subset": cells[2],
            "minutes": cells[3],
            "name": cells[4] if len(cells) > 4 else "",
        }
    return table


class LibriSpeech:
    """A LibriSpeech root: subsets, transcripts checked against the audio, optional alignments."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise LibriSpeechError(f"{self.root}: LibriSpeech root not found")
        if not self.subsets:
            raise LibriSpeechError(
                f"{self.root}: no subset folders (<subset>/<speaker>/<chapter>/*.trans.txt), "
                "e.g. train-clean-100/, test-clean/"
            )

    @cached_property
    def subsets(self) -> list[str]:
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and next(p.glob("*/*/*.trans.txt"), None)
        )

    @cached_property
    def speaker_info(self) -> dict[str, dict[str, str]]:
        path = self.root / "SPEAKERS.TXT"
        return read_speakers_txt(path) if path.is_file() else {}

    def utterances(self, subset: str, with_alignments: bool = True) -> list[LibriUtterance]:
        """Every transcribed utterance of ``subset``; a transcript line without audio is an error."""
        folder = self.root / subset
        if not folder.is_dir():
            raise LibriSpeechError(
                f"{folder}: subset folder missing (found: {', '.join(self.subsets) or 'none'})"
            )
        out = []
        for trans in sorted(folder.glob("*/*/*.trans.txt")):
            chapter_dir = trans.parent
            alignments = self._alignments(chapter_dir, trans) if with_alignments else {}
            for number, line in enumerate(trans.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                utt_id, _, text = line.strip().partition(" ")
                parts = utt_id.split("-")
                if len(parts) != 3:
                    raise LibriSpeechError(
                        f"{trans}:{number}: utterance id {utt_id!r} is not <speaker>-<chapter>-<n>"
                    )
                audio = next(
                    (
                        chapter_dir / f"{utt_id}{s}"
                        for s in AUDIO_SUFFIXES
                        if (chapter_dir / f"{utt_id}{s}").is_file()
                    ),
                    None,
                )
                if audio is None:
                    raise LibriSpeechError(
                        f"{trans}:{number}: audio {chapter_dir / utt_id}.flac (or .wav) missing"
                    )
                out.append(LibriUtterance(utt_id, parts[0], parts[1], audio, text, alignments.get(utt_id)))
        if not out:
            raise LibriSpeechError(
                f"{folder}: no transcripts (<speaker>/<chapter>/<speaker>-<chapter>.trans.txt)"
            )
        return out

    def _alignments(self, chapter_dir: Path, trans: Path) -> dict[str, list[AlignedWord]]:
        path = chapter_dir / trans.name.replace(".trans.txt", ".alignment.txt")
        if not path.is_file():
            return {}
        out = {}
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                utt_id, words = parse_alignment_line(line, f"{path}:{number}")
                out[utt_id] = words
        return out

    def speakers(self, subset: str) -> list[str]:
        return sorted({u.speaker for u in self.utterances(subset, with_alignments=False)})
