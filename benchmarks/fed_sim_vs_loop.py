"""Flower simulation vs the plain loop: wall-time ratio for the same fed-dg rounds (target ≤ 1.5×).

Both engines run FedFD (smoke model on the generated domains, ``--rounds`` FedFD rounds + 1 IFA round) with
the same seed and data, after a check that their final arrays agree. Interleaved A/B rounds (core.bench);
A = Flower simulation, B = loop. Two ratios: end to end (Ray and actor start-up included, as a user pays
it) and per federated round in steady state (median round time from round 2 on, start-up excluded).
Writes ``reports/<profile>/bench/fed_sim_vs_loop.json``.

    python benchmarks/fed_sim_vs_loop.py --rounds 5 --bench-rounds 5
"""

from __future__ import annotations

import argparse
import logging
import statistics

import numpy as np
import torch

from devicelab.core.bench import interleaved, write_bench
from devicelab.core.config import resolve_config
from devicelab.core.tables import markdown_table
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import domain_source
from devicelab.methods.fed_dg.recipe import run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="FedFD rounds per run (plus one IFA round)")
    parser.add_argument("--per-class", type=int, default=16, help="generated images per class and domain")
    parser.add_argument("--bench-rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", default="quick", help="report folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)

    cfg = resolve_config(FedDGConfig, "smoke")
    source, _ = domain_source(cfg, None)
    if args.per_class != 16:
        from devicelab.methods.fed_dg.data import synthetic_domains

        source = synthetic_domains(3, 10, args.per_class, 16)

    per_round: dict[str, list[float]] = {"flower": [], "loop": []}

    def run(engine: str) -> dict:
        out = run_one("fedfd", cfg, source, "dom0", 0, engine=engine, rounds=args.rounds, ifa_rounds=1)
        per_round[engine].append(statistics.median(out["round_wall_s"][1:]))  # round 1 holds actor start-up
        return out

    a, b = run("flower"), run("loop")  # same work: check the arrays first
    diff = max(float(np.max(np.abs(a["_arrays"][k] - b["_arrays"][k]))) for k in a["_arrays"])
    for values in per_round.values():
        values.clear()
    timing = interleaved(
        lambda: run("flower"), lambda: run("loop"), rounds=args.bench_rounds, iters=1, warmup=args.warmup
    )
    summary = timing.summary()
    flower_rounds, loop_rounds = per_round["flower"][args.warmup :], per_round["loop"][args.warmup :]
    round_ratios = [f / lo for f, lo in zip(flower_rounds, loop_rounds)]
    quartiles = statistics.quantiles(round_ratios, n=4) if len(round_ratios) > 1 else round_ratios * 3
    summary["per_round"] = {
        "flower_ms": 1000 * statistics.median(flower_rounds),
        "loop_ms": 1000 * statistics.median(loop_rounds),
        "ratio": statistics.median(round_ratios),
        "ratio_iqr": [quartiles[0], quartiles[-1]],
        "ratios": round_ratios,
    }
    record = {
        "variant_a": "flower simulation (run_simulation, Ray, 2 actors)",
        "variant_b": "plain loop",
        "rounds": args.rounds + 1,
        "clients": 2,
        "images_per_client": 10 * args.per_class,
        "max_abs_array_diff": diff,
        "target_ratio": 1.5,
        "timing": timing,
        "summary": summary,
    }
    path = write_bench("fed_sim_vs_loop", args.profile, record)
    rows = [
        {
            "variant": "flower",
            "wall ms": summary["wall_ms_a"],
            "cpu ms (this process)": summary["cpu_ms_a"],
            "ms per round (round 2 on)": summary["per_round"]["flower_ms"],
        },
        {
            "variant": "loop",
            "wall ms": summary["wall_ms_b"],
            "cpu ms (this process)": summary["cpu_ms_b"],
            "ms per round (round 2 on)": summary["per_round"]["loop_ms"],
        },
    ]
    print(markdown_table(rows))
    q1, q3 = summary["ratio_iqr"]
    pr = summary["per_round"]
    print(f"end to end: flower / loop = {summary['ratio']:.2f} (IQR {q1:.2f}–{q3:.2f}; target ≤ 1.5)")
    r1, r3 = pr["ratio_iqr"]
    print(f"per round:  flower / loop = {pr['ratio']:.2f} (IQR {r1:.2f}–{r3:.2f})")
    print(f"max |Δ| between the engines' arrays: {diff:.1e}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
