"""Importing devicelab.federated sets the Flower/Ray variables before flwr or ray is imported."""

import json
import os
import subprocess
import sys
from pathlib import Path

from devicelab.federated.env import VARIABLES, child_env

PROBE = r"""
import json, os, sys
seen = {}
class Probe:
    def find_spec(self, name, path=None, target=None):
        if name in ("flwr", "ray") and name not in seen:
            seen[name] = {k: os.environ.get(k) for k in %r}
        return None
sys.meta_path.insert(0, Probe())
import devicelab.federated
import devicelab.federated.apps  # imports flwr
print(json.dumps({"final": {k: os.environ.get(k) for k in %r}, "at_import": seen}))
"""


def test_import_sets_variables_before_flwr():
    keys = sorted(VARIABLES)
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["FLWR_TELEMETRY_ENABLED"] = "1"  # a hostile value that must be overridden
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (keys, keys)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["final"] == VARIABLES
    assert "flwr" in data["at_import"], "the probe did not see flwr being imported"
    for module, values in data["at_import"].items():
        assert values == VARIABLES, f"{module} was imported before the environment was set: {values}"


def test_child_env_overrides_base():
    env = child_env({"PATH": "/bin", "RAY_USAGE_STATS_ENABLED": "1"})
    # this interpreter's bin/ comes first, so Flower finds its sibling executables (flower-superexec)
    assert env["PATH"] == f"{Path(sys.executable).parent}:/bin"
    assert all(env[k] == v for k, v in VARIABLES.items())
