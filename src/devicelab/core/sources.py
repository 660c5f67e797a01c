"""The data of a run: the real data set given with ``--data``, or the offline corpus of the run's profile."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devicelab.core.run import RunContext


@dataclass(frozen=True)
class DataSource:
    """Where a run reads its data: ``path``; ``corpus`` is the offline corpus's name (None: real data)."""

    path: Path
    corpus: str | None

    @property
    def is_corpus(self) -> bool:
        return self.corpus is not None


def resolve_data(ctx: RunContext, corpus: str) -> DataSource:
    """``--data PATH`` when given, else the built corpus ``corpus`` for the run's profile (built if missing).

    A ``--data`` folder holding a corpus ``manifest.json`` is a built corpus (e.g. another profile's copy) and
    keeps its corpus name; any other folder is the paper's real data set, which the method's loader checks.
    """
    if ctx.data_path is None:
        return DataSource(ctx.corpus(corpus), corpus)
    path = Path(ctx.data_path)
    manifest = path / "manifest.json"
    if manifest.is_file():
        try:
            name = json.loads(manifest.read_text()).get("corpus") or corpus
        except (json.JSONDecodeError, AttributeError):
            name = corpus
        return DataSource(path, str(name))
    return DataSource(path, None)
