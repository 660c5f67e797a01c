"""fed-dg as a deployable Flower task: ``devicelab fed app DIR --task
devicelab.methods.fed_dg.federated_task:make_task --stages train,ifa --set held-out=<domain> ...``.

Each SuperNode reads only its own source domain from its node-local ``data-root`` (``--set data-root=...``
on ``devicelab fed supernode``); the server reads the held-out domain from the run config's ``data-root``.
Without a data root the generated smoke domains are used (a loopback check).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devicelab.core.config import resolve_config
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import DirectoryDomains, LodoSplit, synthetic_domains
from devicelab.methods.fed_dg.recipe import make_algorithm


def make_task(run_config: dict[str, Any], node_config: dict[str, Any] | None = None):
    """(algorithm, data_fn) of one leave-one-domain-out run; keys: profile, method, held-out, seed,
    overrides (a JSON object of FedDGConfig keys), data-root."""
    cfg = resolve_config(
        FedDGConfig,
        str(run_config.get("profile", "smoke")),
        json.loads(str(run_config.get("overrides", "{}")) or "{}"),
    )
    root = str((node_config or {}).get("data-root", "") or run_config.get("data-root", ""))
    source = DirectoryDomains(Path(root), cfg.image_size) if root else synthetic_domains(3, 10, 16, 16)
    held_out = str(run_config.get("held-out", "")) or source.domains()[0]
    seed = int(run_config.get("seed", 0))
    split = LodoSplit(source, held_out, cfg.train_per_domain, cfg.test_per_domain, seed)
    eval_data = split.test_set() if node_config is None else None
    algo = make_algorithm(str(run_config.get("method", "fedfd")), cfg, seed, source.num_classes(), eval_data)
    return algo, split.client_data
