"""Where things live: the data cache (``$DEVICELAB_DATA``), run folders and reports."""

from __future__ import annotations

import os
from pathlib import Path


def ensure_folder(path: Path, variable: str) -> Path:
    """Create ``path``, the folder named by environment variable ``variable``, or raise a ConfigError naming
    the variable (``DEVICELAB_DATA=/proc/x: cannot create ...``)."""
    from devicelab.core.config import ConfigError

    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError("not writable")
    except OSError as e:
        reason = e.strerror or str(e)
        given = os.environ.get(variable)
        where = f"{variable}={given}" if given else f"{path} (the default of {variable})"
        raise ConfigError(
            f"{where}: cannot create or write the folder ({reason}); set {variable} to a writable folder"
        ) from None
    return path


def data_root() -> Path:
    """``$DEVICELAB_DATA``, default ``~/.cache/devicelab``."""
    return Path(os.environ.get("DEVICELAB_DATA") or Path.home() / ".cache" / "devicelab").expanduser()


def runs_root() -> Path:
    """``$DEVICELAB_RUNS``, default ``./runs``."""
    return Path(os.environ.get("DEVICELAB_RUNS") or "runs")


def reports_root() -> Path:
    """``$DEVICELAB_REPORTS``, default ``./reports``."""
    return Path(os.environ.get("DEVICELAB_REPORTS") or "reports")


def portable_path(path: Path) -> str:
    """``path`` as written into run notes and reports: ``$DEVICELAB_DATA/...`` for the data cache, relative
    to the current folder where it lies below it, so a report holds no machine's absolute paths."""
    path = Path(path).resolve()
    for root, name in ((data_root().resolve(), "$DEVICELAB_DATA"), (Path.cwd().resolve(), "")):
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        return f"{name}/{rel}" if name else str(rel)
    return str(path)
