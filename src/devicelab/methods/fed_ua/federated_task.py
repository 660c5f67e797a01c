"""fed-ua as a deployable Flower task: ``devicelab fed app DIR --task
devicelab.methods.fed_ua.federated_task:make_task --stages train,warmup --num-partitions N ...``.

Each SuperNode serves one user: it draws its codeword on its first call and keeps it, and later its
threshold, in ``context.state``. Run config keys: ``profile``, ``seed``, ``overrides`` (a JSON or YAML mapping
of FedUAConfig keys), ``data-root`` (a VoxCeleb1-layout folder; without it the generated feature speakers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from devicelab.core.config import resolve_config
from devicelab.methods.fed_ua.config import FedUAConfig
from devicelab.methods.fed_ua.data import FeatureConfig, load_vox_task, synthetic_task
from devicelab.methods.fed_ua.recipe import make_algorithm


def make_task(run_config: dict[str, Any], node_config: dict[str, Any] | None = None):
    """(FedUA, data_fn) for ``num-partitions`` users, all original (no late joiners in a deployment)."""
    cfg = resolve_config(
        FedUAConfig,
        str(run_config.get("profile", "smoke")),
        yaml.safe_load(str(run_config.get("overrides", "{}")) or "{}"),
    )
    users = int(run_config["num-partitions"])
    root = str((node_config or {}).get("data-root", "") or run_config.get("data-root", ""))
    if root:
        task = load_vox_task(Path(root), users, 0, cfg.unseen_users, features=FeatureConfig(cfg.n_mels))
    else:
        task = synthetic_task(users, 0, 2)
    algo = make_algorithm("fedua", cfg, int(run_config.get("seed", 0)), task)
    return algo, task.client_data
