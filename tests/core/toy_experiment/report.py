"""The toy's table: test accuracy per width, mean ± std over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devicelab.core.stages import metric_key
from devicelab.core.tables import format_per_seed, markdown_table


def accuracy_table(metrics: Mapping[str, Sequence[float]], variants: Sequence[str]) -> str:
    rows = [{"model": v, "test acc %": format_per_seed(metrics[metric_key("accuracy", v)])} for v in variants]
    return markdown_table(rows)
