"""The committed word and sentence lists (``resources/``), written for devicelab."""

from __future__ import annotations

from functools import cache
from importlib import resources


def _lines(name: str) -> list[str]:
    text = resources.files("devicelab.data.speech").joinpath("resources", name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@cache
def command_words() -> tuple[str, ...]:
    """The 35 Speech Commands v0.02 words; the first ten are the keywords of the 12-class task."""
    return tuple(_lines("commands_words.txt"))


def keywords10() -> tuple[str, ...]:
    return command_words()[:10]


@cache
def keyword_phrases() -> dict[str, str]:
    """keyword id -> phrase (20 phrases of 1-2.5 s for synth-speakers)."""
    return dict(line.split("\t", 1) for line in _lines("keywords_en.txt"))


@cache
def sentences() -> tuple[str, ...]:
    """Short sentences for synth-phones."""
    return tuple(_lines("sentences_en.txt"))
