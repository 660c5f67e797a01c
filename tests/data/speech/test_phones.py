"""Phone tables: engine symbols -> TIMIT 61, the 61 -> 39 folding, and errors for unknown symbols."""

from __future__ import annotations

import numpy as np
import pytest

from devicelab.data.speech import Phone, Rendering
from devicelab.data.speech.phones import (
    UnmappedPhoneError,
    fold,
    fold_map,
    symbol_table,
    timit39,
    timit61,
    to_timit,
)


def rendering(symbols: list[tuple[str, int, int]], engine: str = "espeak-ng") -> Rendering:
    n = symbols[-1][2]
    return Rendering(
        np.zeros(n, np.float32), 16000, [Phone(*s) for s in symbols], None, engine, "en-us+m3", "text"
    )


def test_sets_have_61_and_39_labels() -> None:
    assert len(timit61()) == 61 and len(timit39()) == 39
    folding = fold_map()
    assert (
        folding["ax-h"] == "ah" and folding["ao"] == "aa" and folding["q"] is None and folding["epi"] == "sil"
    )
    assert all(v in timit39() for v in folding.values() if v is not None)


def test_tables_map_into_the_61_set() -> None:
    for table in ("espeak", "cmu", "mbrola"):
        mapping = symbol_table(table)
        assert mapping and all(set(labels) <= set(timit61()) for labels in mapping.values())


def test_to_timit_marks_edges_splits_and_merges() -> None:
    r = rendering(
        [
            ("_", 0, 100),
            ("h", 100, 200),
            ("'A@", 200, 400),
            ("_:", 400, 500),
            ("_", 500, 600),
            ("s", 600, 700),
            ("_:", 700, 800),
        ]
    )
    segments = to_timit(r, "espeak")
    assert [(s.label, s.start, s.end) for s in segments] == [
        ("h#", 0, 100),
        ("hh", 100, 200),
        ("aa", 200, 300),
        ("r", 300, 400),
        ("pau", 400, 600),
        ("s", 600, 700),
        ("h#", 700, 800),
    ]
    assert [s.label for s in fold(segments, drop_hsharp=True)] == ["hh", "aa", "r", "sil", "s"]


def test_unmapped_symbol_names_symbol_engine_voice_and_text() -> None:
    with pytest.raises(
        UnmappedPhoneError, match=r"'Q7' from engine espeak-ng, voice 'en-us\+m3', text 'text'"
    ):
        to_timit(rendering([("_", 0, 10), ("Q7", 10, 20)]), "espeak")
