"""Side-by-side timing as ``specs/measuring.md`` prescribes: interleaved rounds, median of per-round ratios.

Used by ``benchmarks/`` only; unit tests never assert a time.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devicelab.core.tables import markdown_table


@dataclass
class Timing:
    """Per-call wall and CPU times of two variants measured in interleaved rounds."""

    wall_ms_a: list[float] = field(default_factory=list)
    wall_ms_b: list[float] = field(default_factory=list)
    cpu_ms_a: list[float] = field(default_factory=list)
    cpu_ms_b: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    cpu_ratios: list[float] = field(default_factory=list)
    load: list[tuple[float, float]] = field(default_factory=list)
    flagged_rounds: int = 0

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def ratio_iqr(self) -> tuple[float, float]:
        q = statistics.quantiles(self.ratios, n=4) if len(self.ratios) > 1 else [self.ratio] * 3
        return q[0], q[2]

    def summary(self) -> dict[str, Any]:
        q1, q3 = self.ratio_iqr
        return {
            "wall_ms_a": statistics.median(self.wall_ms_a),
            "wall_ms_b": statistics.median(self.wall_ms_b),
            "cpu_ms_a": statistics.median(self.cpu_ms_a),
            "cpu_ms_b": statistics.median(self.cpu_ms_b),
            "ratio": self.ratio,
            "ratio_iqr": [q1, q3],
            "cpu_ratio": statistics.median(self.cpu_ratios),
            "rounds": len(self.ratios),
            "flagged_rounds": self.flagged_rounds,
            "warning": "more than half the rounds ran under heavy load"
            if self.flagged_rounds * 2 > len(self.ratios)
            else "",
        }


def interleaved(
    a: Callable[[], Any], b: Callable[[], Any], rounds: int = 9, iters: int = 20, warmup: int = 3
) -> Timing:
    """Time ``a`` against ``b``: A B / B A alternating rounds; ratio = a / b per round."""
    for f in (a, b):
        for _ in range(warmup):
            f()
    cores = os.cpu_count() or 1
    out = Timing()
    for r in range(rounds):
        order = (a, b) if r % 2 == 0 else (b, a)
        wall, cpu = {}, {}
        load_before = os.getloadavg()[0]
        for f in order:
            gc.collect()
            t0, c0 = time.perf_counter_ns(), time.process_time_ns()
            for _ in range(iters):
                f()
            wall[f] = (time.perf_counter_ns() - t0) / iters / 1e6
            cpu[f] = (time.process_time_ns() - c0) / iters / 1e6
        load_after = os.getloadavg()[0]
        out.load.append((load_before, load_after))
        if max(load_before, load_after) > 2 * cores:
            out.flagged_rounds += 1
        out.wall_ms_a.append(wall[a])
        out.wall_ms_b.append(wall[b])
        out.cpu_ms_a.append(cpu[a])
        out.cpu_ms_b.append(cpu[b])
        out.ratios.append(wall[a] / wall[b])
        out.cpu_ratios.append(cpu[a] / cpu[b] if cpu[b] else float("nan"))
    return out


def environment() -> dict[str, Any]:
    """What produced a number: CPU, cores, library versions, thread settings, math-library variables."""
    env: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "math_env": {
            k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
    }
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info

        env["threadpools"] = [
            {k: i.get(k) for k in ("internal_api", "num_threads")} for i in threadpool_info()
        ]
    except ImportError:
        pass
    return env


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_bench(name: str, profile: str, record: Mapping[str, Any], root: Path | None = None) -> Path:
    """Write ``reports/<profile>/bench/<name>.json`` with the environment added."""
    from devicelab.core.paths import reports_root

    path = (root or reports_root()) / profile / "bench" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "environment": environment(),
        **{k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in record.items()},
    }
    path.write_text(json.dumps(data, indent=2, default=float))
    return path


# the benchmarks' tables are the run tables (one implementation, in core.tables)
format_table = markdown_table
