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


class PerCall:
    """A callable that records the wall and CPU time of every call (for median and p90 per clip)."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn, self.times_ms, self.cpu_ms = fn, [], []

    def __call__(self) -> None:
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        self.fn()
        self.cpu_ms.append((time.process_time_ns() - c0) / 1e6)
        self.times_ms.append((time.perf_counter_ns() - t0) / 1e6)

    def stats(self) -> dict[str, float]:
        """Wall median and p90, the same for CPU time (``cpu_``), and the number of calls."""
        return {
            "median": statistics.median(self.times_ms),
            "p90": p90(self.times_ms),
            "cpu_median": statistics.median(self.cpu_ms),
            "cpu_p90": p90(self.cpu_ms),
            "n": len(self.times_ms),
        }


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session as ``measuring.md`` prescribes: fixed threads, sequential, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ratio_text(ratio: float, iqr: tuple[float, float] | list[float]) -> str:
    return f"{ratio:.2f} [{iqr[0]:.2f}, {iqr[1]:.2f}]"


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} (1 / 5 min) on {os.cpu_count()} cores"


def row(
    figure: str,
    method: str,
    baseline: str,
    ratio: float,
    iqr: tuple[float, float] | list[float],
    target: str,
    met: bool | None,
    value: str = "",
    note: str = "",
) -> dict[str, Any]:
    """One line of the benchmark table: a figure, its baseline, the ratio with its IQR and the target."""
    return {
        "figure": figure,
        "method": method,
        "baseline": baseline,
        "value": value,
        "ratio": ratio,
        "ratio_iqr": list(iqr),
        "target": target,
        "met": met,
        "note": note,
    }


def rows_table(rows: list[Mapping[str, Any]]) -> str:
    """The markdown table of benchmark rows (``met``: yes / **no** / –)."""
    return markdown_table(
        [
            {
                "benchmark": r.get("benchmark", ""),
                "figure": r["figure"],
                "method": r["method"],
                "baseline": r["baseline"],
                "value": r["value"],
                "ratio [IQR]": ratio_text(r["ratio"], r["ratio_iqr"]) if r["ratio"] == r["ratio"] else "–",
                "target": r["target"],
                "met": {True: "yes", False: "**no**", None: "–"}[r["met"]],
            }
            for r in rows
        ]
    )


# name -> (script under benchmarks/, what it measures); `devicelab bench` runs them in this order
BENCHMARKS: dict[str, tuple[str, str]] = {
    "logmel": (
        "logmel_vs_librosa.py",
        "LogMel vs librosa, where the time goes, FLOPs vs the machine's limit",
    ),
    "onnx-latency": ("onnx_latency.py", "ORT latency per clip of every exported classifier, MACs, MAC/s"),
    "int8": ("int8_quant.py", "int8 vs float32 ONNX: size, latency, accuracy difference with 95 % interval"),
    "fed-overhead": ("fed_sim_vs_loop.py", "Flower simulation vs the plain loop, per round and end to end"),
}


def benchmarks_dir() -> Path:
    """The repository's ``benchmarks/`` folder (the scripts are not part of the installed package)."""
    return Path(__file__).resolve().parents[3] / "benchmarks"


def bench_rows(profile: str, names: list[str] | None = None, root: Path | None = None) -> list[dict]:
    """The ``rows`` of every benchmark JSON under ``reports/<profile>/bench/`` (registry order)."""
    from devicelab.core.paths import reports_root

    folder = (root or reports_root()) / profile / "bench"
    out = []
    for name in names or list(BENCHMARKS):
        path = folder / f"{Path(BENCHMARKS[name][0]).stem}.json"
        if path.exists():
            for r in json.loads(path.read_text()).get("rows", []):
                out.append({"benchmark": name, **r})
    return out


def bench_section(profile: str, root: Path | None = None) -> list[str]:
    """Markdown lines for the report: the benchmark table, or nothing when no benchmark has run."""
    rows = bench_rows(profile, root=root)
    if not rows:
        return []
    return [
        "## Benchmarks",
        "",
        f"From `reports/{profile}/bench/*.json` (`devicelab bench`); each ratio is the median of interleaved "
        "per-round ratios against the named baseline, measured in the same process, with its IQR.",
        "",
        rows_table(rows),
        "",
    ]


def run_benchmarks(names: list[str], profile: str, quick: bool = False) -> list[dict]:
    """Run each named benchmark in its own process (``--profile``; ``--quick``: fewer rounds, for a check),
    then print and return the rows of all of them."""
    import subprocess
    import sys

    from devicelab.core.config import ConfigError

    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    folder = benchmarks_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no benchmarks folder (run from a source checkout)")
    failed = []
    for name in names:
        cmd = [sys.executable, str(folder / BENCHMARKS[name][0]), "--profile", profile]
        print(f"\n== {name}: {BENCHMARKS[name][1]} ({load_text()})", flush=True)
        if subprocess.run(cmd + (["--quick"] if quick else [])).returncode != 0:
            failed.append(name)
    rows = bench_rows(profile, names)
    print("\n" + rows_table(rows))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return rows
