"""Where things live: the data cache (``$DEVICELAB_DATA``), run folders and reports."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    """``$DEVICELAB_DATA``, default ``~/.cache/devicelab``."""
    return Path(os.environ.get("DEVICELAB_DATA") or Path.home() / ".cache" / "devicelab").expanduser()


def runs_root() -> Path:
    """``$DEVICELAB_RUNS``, default ``./runs``."""
    return Path(os.environ.get("DEVICELAB_RUNS") or "runs")


def reports_root() -> Path:
    """``$DEVICELAB_REPORTS``, default ``./reports``."""
    return Path(os.environ.get("DEVICELAB_REPORTS") or "reports")
