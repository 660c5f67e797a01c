"""Phone labels: engine symbols -> TIMIT 61-set labels (committed tables), and the 61 -> 39 folding.

The tables live beside this module in ``resources/``: ``phones_espeak.tsv``, ``phones_cmu.tsv`` (flite,
festival), ``phones_mbrola.tsv`` and ``timit_61_39.tsv`` (Lee & Hon 1989, as Kaldi's
``egs/timit/s5/conf/phones.60-48-39.map``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from devicelab.data.speech.engines import Rendering

STRESS_MARKS = "',%="


class UnmappedPhoneError(ValueError):
    """An engine symbol without a TIMIT label; the message names symbol, engine, voice and text."""


def _read_table(name: str) -> dict[str, str]:
    text = resources.files("devicelab.data.speech").joinpath("resources", name).read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = line.split("\t")[:2]
        table[key] = value.strip()
    return table


@cache
def fold_map() -> dict[str, str | None]:
    """TIMIT 61-set label -> 39-set label (``None`` for ``q``, which is dropped)."""
    return {k: (None if v == "-" else v) for k, v in _read_table("timit_61_39.tsv").items()}


def timit61() -> list[str]:
    return sorted(fold_map())


def timit39() -> list[str]:
    return sorted({v for v in fold_map().values() if v is not None})


@cache
def symbol_table(name: str) -> dict[str, tuple[str, ...]]:
    """Engine symbol -> TIMIT 61-set labels for table ``name`` (``espeak``, ``cmu``, ``mbrola``)."""
    file = f"phones_{name}.tsv"
    table = {k: tuple(v.split()) for k, v in _read_table(file).items()}
    known = fold_map()
    for symbol, labels in table.items():
        bad = [label for label in labels if label not in known]
        if bad:
            raise ValueError(f"{file}: {symbol!r} maps to {bad}, not TIMIT 61-set labels")
    return table


@dataclass
class Segment:
    label: str  # TIMIT 61-set label
    start: int
    end: int


def to_timit(rendering: Rendering, table: str) -> list[Segment]:
    """TIMIT 61-set segments of a rendering.

    Symbols are mapped by the table, multi-label symbols split evenly, adjacent pauses merged, edge pauses
    labelled ``h#`` and inner ones ``pau``; an unknown symbol raises :class:`UnmappedPhoneError`."""
    mapping = symbol_table(table)
    segments: list[Segment] = []
    for phone in rendering.phones:
        symbol = phone.symbol.strip(STRESS_MARKS) if table != "cmu" else phone.symbol
        if symbol not in mapping:
            raise UnmappedPhoneError(
                f"unmapped phone {phone.symbol!r} from engine {rendering.engine}, voice {rendering.voice!r}, "
                f"text {rendering.text!r}: add it to phones_{table}.tsv"
            )
        labels = mapping[symbol]
        bounds = [
            phone.start + round(i * (phone.end - phone.start) / len(labels)) for i in range(len(labels) + 1)
        ]
        for label, start, end in zip(labels, bounds[:-1], bounds[1:]):
            if end <= start:
                continue
            if segments and label == "pau" and segments[-1].label == "pau":
                segments[-1].end = end
            else:
                segments.append(Segment(label, start, end))
    for i in (0, len(segments) - 1):
        if segments and segments[i].label == "pau":
            segments[i].label = "h#"
    return segments


def scale_segments(segments: list[Segment], from_hz: int, to_hz: int, n_samples: int) -> list[Segment]:
    """Move segment boundaries to another sample rate (the last segment ends at ``n_samples``)."""
    out = []
    for i, s in enumerate(segments):
        start = round(s.start * to_hz / from_hz)
        end = n_samples if i == len(segments) - 1 else min(n_samples, round(s.end * to_hz / from_hz))
        if end > start:
            out.append(Segment(s.label, start, end))
    return out


def fold(segments: list[Segment], drop_hsharp: bool = False) -> list[Segment]:
    """Fold 61 -> 39 labels; ``q`` is dropped and, with ``drop_hsharp``, so are edge ``h#`` segments."""
    folding = fold_map()
    out = []
    for s in segments:
        if drop_hsharp and s.label == "h#":
            continue
        label = folding.get(s.label)
        if s.label not in folding:
            raise UnmappedPhoneError(f"{s.label!r} is not a TIMIT 61-set label")
        if label is not None:
            out.append(Segment(label, s.start, s.end))
    return out
