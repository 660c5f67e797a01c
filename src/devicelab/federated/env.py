"""Process environment for Flower and Ray: no telemetry, no update checks, no run-time installs, loopback Ray.

``apply()`` must run before ``flwr`` or ``ray`` is imported (Ray reads its flags at import time);
``devicelab.federated`` calls it first. ``child_env()`` gives the same set to subprocesses
(SuperLink, SuperNode, ``flwr run``). See ``specs/flower.md`` section 3.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

VARIABLES: dict[str, str] = {
    "FLWR_TELEMETRY_ENABLED": "0",  # Flower sends telemetry events by default
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # the flwr CLI checks online for updates
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # a SuperLink would `uv sync` the app's deps
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keeps Ray's GCS, raylet and object store on 127.0.0.1
    "RAY_USAGE_STATS_ENABLED": "0",  # Ray's own usage reporting
}


def apply() -> None:
    """Set every variable of :data:`VARIABLES` in ``os.environ`` (overriding other values)."""
    os.environ.update(VARIABLES)


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a subprocess: ``base`` (default ``os.environ``) plus :data:`VARIABLES`.

    The interpreter's own ``bin/`` folder goes first on ``PATH``: a SuperLink starts ``flower-superexec`` by
    name, which must be this environment's even when the venv is not activated (``make test``).
    """
    env = dict(os.environ if base is None else base)
    env.update(VARIABLES)
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join(filter(None, [bin_dir, env.get("PATH", "")]))
    return env
