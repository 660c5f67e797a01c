"""Markdown tables and per-seed numbers, as run tables and the report print them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def format_per_seed(
    values: float | Sequence[float],
    digits: int = 2,
    *,
    scale: float = 1.0,
    sign: bool = False,
    n: bool = True,
) -> str:
    """``96.60 ± 0.21 (n=5)`` for a per-seed list (sample std; ``n`` off drops the count), ``96.60`` for a
    number; ``sign`` writes ``+0.40`` for differences."""
    spec = f"{'+' if sign else ''}.{digits}f"
    if isinstance(values, int | float):
        return f"{values * scale:{spec}}"
    xs = [float(v) * scale for v in values]
    mean = statistics.fmean(xs) if xs else math.nan
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{mean:{spec}} ± {std:.{digits}f}" + (f" (n={len(xs)})" if n else "")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts); the columns are ``columns`` or the first row's keys. Floats
    print with 4 significant digits, missing cells as ``–``."""
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(rows[0])

    def cell(v: Any) -> str:
        if v is None:
            return "–"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
