"""phoneme-vgpds scaling: wall time of one bound evaluation against N (frames) and M (inducing inputs).

The collapsed VGPDS bound costs O(N·M²·Q) for Ψ2, O(N·T²·Q) for the block-diagonal q(X) (T frames per token,
fixed), and O(M³) for the Cholesky factors: linear in N at fixed M, quadratic in M while N·M² dominates. The
exact GP marginal likelihood over the same N frames (an N×N Cholesky, O(N³)) is timed beside it as the
contrast.

Every configuration is timed in each of ``--rounds`` rounds, the order reversed in alternate rounds
(interleaved, as ``specs/measuring.md`` asks), one torch thread; the reported time is the median over
rounds of the mean per call in a block. The log-log slopes over the upper half of each grid are in the JSON.
Writes ``reports/<profile>/bench/phoneme_vgpds_scaling.json`` and ``.png``.

    python benchmarks/phoneme_vgpds_scaling.py [--rounds 5] [--quick] [--replot reports/quick/bench/….json]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import NullLocator

from devicelab.core.bench import format_table, write_bench
from devicelab.core.paths import reports_root
from devicelab.core.plots import new_figure
from devicelab.methods.phoneme_vgpds.config import VgpdsConfig
from devicelab.methods.phoneme_vgpds.tokens import pad_tokens
from devicelab.methods.phoneme_vgpds.training import initialise_models

FRAMES_PER_TOKEN = 20
OUTPUT_DIM = 39
LATENT_DIM = 4


def synthetic_tokens(num_frames: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random tokens of FRAMES_PER_TOKEN frames, num_frames in all."""
    rng = np.random.default_rng(seed)
    count = num_frames // FRAMES_PER_TOKEN
    return [np.cumsum(rng.normal(size=(FRAMES_PER_TOKEN, OUTPUT_DIM)), 0) * 0.2 for _ in range(count)]


def bound_call(num_frames: int, num_inducing: int, backward: bool) -> Callable[[], None]:
    """One evaluation of F for one class with N frames and M inducing inputs (with its gradient if asked)."""
    config = VgpdsConfig(latent_dim=LATENT_DIM, num_inducing=num_inducing)
    models = initialise_models(pad_tokens([synthetic_tokens(num_frames)]), config)

    def call() -> None:
        if backward:
            models.zero_grad(set_to_none=True)
            models().bound.sum().backward()
        else:
            with torch.no_grad():
                models()

    return call


def exact_gp_call(num_frames: int) -> Callable[[], None]:
    """The exact GP log marginal likelihood over N frames with known inputs: an N×N Cholesky (O(N³))."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(num_frames, LATENT_DIM, generator=g, dtype=torch.float64)
    y = torch.randn(num_frames, OUTPUT_DIM, generator=g, dtype=torch.float64)

    def call() -> None:
        with torch.no_grad():
            k = torch.exp(-0.5 * torch.cdist(x, x) ** 2) + 0.1 * torch.eye(num_frames, dtype=torch.float64)
            chol = torch.linalg.cholesky(k)
            alpha = torch.cholesky_solve(y, chol)
            (-0.5 * (y * alpha).sum() - OUTPUT_DIM * torch.log(torch.diagonal(chol)).sum()).item()

    return call


def time_interleaved(
    calls: dict[str, Callable[[], None]], rounds: int, min_block_s: float
) -> dict[str, dict]:
    """Median over rounds of the mean wall time per call (ms); order reversed in alternate rounds."""
    names = list(calls)
    iters = {}
    for name in names:  # warm up, and size each block to about min_block_s
        calls[name]()
        t0 = time.perf_counter()
        calls[name]()
        iters[name] = max(1, math.ceil(min_block_s / max(time.perf_counter() - t0, 1e-6)))
    per_round: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(iters[name]):
                calls[name]()
            per_round[name].append((time.perf_counter() - t0) / iters[name] * 1e3)
    return {
        n: {"median_ms": statistics.median(v), "rounds_ms": v, "iters_per_block": iters[n]}
        for n, v in per_round.items()
    }


def loglog_slope(xs: list[int], ys: list[float]) -> float:
    """Least-squares slope of log y on log x over the upper half of the grid, where the leading term rules."""
    half = len(xs) // 2
    return float(np.polyfit(np.log(xs[half:]), np.log(ys[half:]), 1)[0])


def plot_scaling(vs_n: dict, vs_m: dict, exact: dict, png: Path) -> None:
    """Log-log time against N (with the exact GP) and against M, with ∝ N and ∝ M² guides."""
    fig, (ax_n, ax_m) = new_figure(ncols=2, figsize=(10.0, 4.0))
    n_grid, m_grid = vs_n["N"], vs_m["M"]
    ax_n.loglog(n_grid, vs_n["bound_ms"], "o-", label=f"VGPDS bound (M={vs_n['M']})")
    ax_n.loglog(n_grid, vs_n["grad_ms"], "s-", label="bound + gradient")
    ax_n.loglog(exact["N"], exact["ms"], "^--", label="exact GP, N×N Cholesky")
    ax_n.loglog(n_grid, vs_n["bound_ms"][-1] * np.array(n_grid) / n_grid[-1], ":", color="gray", label="∝ N")
    ax_n.set_xlabel("N (frames)")
    ax_n.set_ylabel("ms per evaluation")
    ax_m.loglog(m_grid, vs_m["bound_ms"], "o-", label=f"VGPDS bound (N={vs_m['N']})")
    ax_m.loglog(m_grid, vs_m["grad_ms"], "s-", label="bound + gradient")
    guide = vs_m["bound_ms"][-1] * (np.array(m_grid) / m_grid[-1]) ** 2
    ax_m.loglog(m_grid, guide, ":", color="gray", label="∝ M²")
    ax_m.set_xlabel("M (inducing inputs)")
    for ax, grid in ((ax_n, n_grid), (ax_m, m_grid)):
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(grid, [str(v) for v in grid])
        ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller grids (a check that the script runs)")
    parser.add_argument("--min-block-s", type=float, default=0.05, help="target wall time of one timed block")
    parser.add_argument("--profile", default="quick", help="report folder: reports/<profile>/bench/")
    parser.add_argument(
        "--replot", type=Path, default=None, help="redraw the PNG from a written JSON and stop"
    )
    args = parser.parse_args()
    if args.replot is not None:
        record = json.loads(args.replot.read_text())
        plot_scaling(record["vs_N"], record["vs_M"], record["exact_gp"], args.replot.with_suffix(".png"))
        return
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    n_grid = [200, 400, 800, 1600] if args.quick else [200, 400, 800, 1600, 3200, 6400]
    m_grid = [5, 10, 20, 40] if args.quick else [5, 10, 20, 40, 80, 120]
    n_fixed_m, m_fixed_n = 20, (800 if args.quick else 1600)
    exact_grid = [n for n in n_grid if n <= 3200]

    calls: dict[str, Callable[[], None]] = {}
    for n in n_grid:
        calls[f"bound N={n} M={n_fixed_m}"] = bound_call(n, n_fixed_m, backward=False)
        calls[f"grad N={n} M={n_fixed_m}"] = bound_call(n, n_fixed_m, backward=True)
    for m in m_grid:
        calls[f"bound N={m_fixed_n} M={m}"] = bound_call(m_fixed_n, m, backward=False)
        calls[f"grad N={m_fixed_n} M={m}"] = bound_call(m_fixed_n, m, backward=True)
    for n in exact_grid:
        calls[f"exact N={n}"] = exact_gp_call(n)
    timings = time_interleaved(calls, args.rounds, args.min_block_s)

    def series(kind: str, fixed: str, grid: list[int], axis: str) -> list[float]:
        keys = [f"{kind} N={v} {fixed}" if axis == "N" else f"{kind} {fixed} M={v}" for v in grid]
        return [timings[k]["median_ms"] for k in keys]

    vs_n = {k: series(k, f"M={n_fixed_m}", n_grid, "N") for k in ("bound", "grad")}
    vs_m = {k: series(k, f"N={m_fixed_n}", m_grid, "M") for k in ("bound", "grad")}
    exact = [timings[f"exact N={n}"]["median_ms"] for n in exact_grid]
    slopes = {
        "bound_vs_N": loglog_slope(n_grid, vs_n["bound"]),
        "grad_vs_N": loglog_slope(n_grid, vs_n["grad"]),
        "bound_vs_M": loglog_slope(m_grid, vs_m["bound"]),
        "grad_vs_M": loglog_slope(m_grid, vs_m["grad"]),
        "exact_gp_vs_N": loglog_slope(exact_grid, exact),
    }

    rows_n = [
        {"N": n, "M": n_fixed_m, "bound ms": b, "bound+grad ms": g, "exact GP ms": e}
        for n, b, g, e in zip(n_grid, vs_n["bound"], vs_n["grad"], exact + [float("nan")] * len(n_grid))
    ]
    rows_m = [
        {"N": m_fixed_n, "M": m, "bound ms": b, "bound+grad ms": g}
        for m, b, g in zip(m_grid, vs_m["bound"], vs_m["grad"])
    ]
    print(
        f"One bound evaluation, Q={LATENT_DIM}, D={OUTPUT_DIM}, {FRAMES_PER_TOKEN} frames per token, 1 thread"
    )
    print(format_table(rows_n))
    print(format_table(rows_m))
    print("log-log slopes (upper half of each grid):", {k: round(v, 2) for k, v in slopes.items()})

    png = reports_root() / args.profile / "bench" / "phoneme_vgpds_scaling.png"
    plot_scaling(
        {"N": n_grid, "M": n_fixed_m, **{f"{k}_ms": v for k, v in vs_n.items()}},
        {"N": m_fixed_n, "M": m_grid, **{f"{k}_ms": v for k, v in vs_m.items()}},
        {"N": exact_grid, "ms": exact},
        png,
    )

    path = write_bench(
        "phoneme_vgpds_scaling",
        args.profile,
        {
            "description": "wall time of one VGPDS bound evaluation (and with its gradient) vs N and M; "
            "exact GP (N×N Cholesky) for contrast",
            "setup": {
                "latent_dim": LATENT_DIM,
                "output_dim": OUTPUT_DIM,
                "frames_per_token": FRAMES_PER_TOKEN,
                "rounds": args.rounds,
                "threads": 1,
                "dtype": "float64",
            },
            "vs_N": {"M": n_fixed_m, "N": n_grid, **{f"{k}_ms": v for k, v in vs_n.items()}},
            "vs_M": {"N": m_fixed_n, "M": m_grid, **{f"{k}_ms": v for k, v in vs_m.items()}},
            "exact_gp": {"N": exact_grid, "ms": exact},
            "loglog_slopes": slopes,
            "timings": timings,
            "plot": str(png),
        },
    )
    print(f"wrote {path} and {png}")


if __name__ == "__main__":
    main()
