"""Flower simulation vs the plain loop for a 10-client, 10-round fed-dg job: per round and end to end.

Both engines run FedFD (smoke model; generated domains, one held out, so ``--clients`` clients; ``--rounds``
rounds in all, the last an IFA round) with the same seed and data, after a check that their final arrays
agree. Interleaved A/B rounds (core.bench); A = Flower simulation, B = loop. Two ratios: end to end (Ray
start-up and actor start included, paid once per job, as a user pays it) and per federated round in
steady state (median round time from round 2 on). Backend settings are recorded beside the numbers
(``devicelab.federated.simulation``: Ray started by devicelab, one CPU per client actor, two actors on two
cores). Writes ``reports/<profile>/bench/fed_sim_vs_loop.json``.

    python benchmarks/fed_sim_vs_loop.py [--clients 10] [--rounds 10] [--bench-rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics

import numpy as np
import torch

from devicelab.core.bench import interleaved, load_text, ratio_text, row, write_bench
from devicelab.core.config import resolve_config
from devicelab.core.tables import markdown_table
from devicelab.federated.rounds import FederatedConfig
from devicelab.federated.simulation import backend_config
from devicelab.methods.fed_dg.config import FedDGConfig
from devicelab.methods.fed_dg.data import synthetic_domains
from devicelab.methods.fed_dg.recipe import run_one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10, help="federated rounds per job (the last is IFA)")
    parser.add_argument("--per-class", type=int, default=16, help="generated images per class and domain")
    parser.add_argument("--bench-rounds", type=int, default=5)
    parser.add_argument("--profile", default="quick", help="report folder")
    parser.add_argument("--quick", action="store_true", help="3 federated rounds, 3 interleaved rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.bench_rounds = 3, 3
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)

    cfg = resolve_config(FedDGConfig, "smoke")
    source = synthetic_domains(args.clients + 1, 10, args.per_class, 16)
    per_round: dict[str, list[float]] = {"flower": [], "loop": []}

    def run(engine: str) -> dict:
        out = run_one("fedfd", cfg, source, "dom0", 0, engine=engine, rounds=args.rounds - 1, ifa_rounds=1)
        per_round[engine].append(statistics.median(out["round_wall_s"][1:]))  # round 1 holds actor start-up
        return out

    load_before = load_text()
    a, b = run("flower"), run("loop")  # same work: check the arrays first (these runs are the warm-up)
    diff = max(float(np.max(np.abs(a["_arrays"][k] - b["_arrays"][k]))) for k in a["_arrays"])
    for values in per_round.values():
        values.clear()
    timing = interleaved(
        lambda: run("flower"), lambda: run("loop"), rounds=args.bench_rounds, iters=1, warmup=0
    )
    summary = timing.summary()
    flower_rounds, loop_rounds = per_round["flower"], per_round["loop"]
    round_ratios = [f / lo for f, lo in zip(flower_rounds, loop_rounds)]
    quartiles = statistics.quantiles(round_ratios, n=4) if len(round_ratios) > 1 else round_ratios * 3
    summary["per_round"] = {
        "flower_ms": 1000 * statistics.median(flower_rounds),
        "loop_ms": 1000 * statistics.median(loop_rounds),
        "ratio": statistics.median(round_ratios),
        "ratio_iqr": [quartiles[0], quartiles[-1]],
        "ratios": round_ratios,
    }
    pr = summary["per_round"]
    fcfg = FederatedConfig(num_rounds=args.rounds, num_partitions=args.clients)
    jobs = f"{args.clients} clients, {args.rounds} rounds"
    rows = [
        row(
            f"fed-dg FedFD job ({jobs}): time per round, round 2 on",
            "Flower simulation",
            "plain loop",
            pr["ratio"],
            pr["ratio_iqr"],
            "≤ 1.50",
            pr["ratio"] <= 1.5,
            value=f"{pr['flower_ms']:.0f} vs {pr['loop_ms']:.0f} ms",
            note=f"max |Δ arrays| {diff:.1e}",
        ),
        row(
            f"fed-dg FedFD job ({jobs}): end to end, start-up included",
            "Flower simulation",
            "plain loop",
            summary["ratio"],
            summary["ratio_iqr"],
            "≤ 3.00",
            summary["ratio"] <= 3.0,
            value=f"{summary['wall_ms_a'] / 1e3:.1f} vs {summary['wall_ms_b'] / 1e3:.1f} s",
            note=f"{summary['flagged_rounds']}/{summary['rounds']} rounds flagged",
        ),
    ]
    record = {
        "variant_a": "Flower simulation (run_simulation, Ray started by devicelab, one actor per CPU)",
        "variant_b": "plain loop",
        "rounds": args.rounds,
        "clients": args.clients,
        "images_per_client": 10 * args.per_class,
        "backend_config": backend_config(fcfg, "<temp dir>"),
        "max_abs_array_diff": diff,
        "timing": timing,
        "summary": summary,
        "load": [load_before, load_text()],
        "rows": rows,
    }
    path = write_bench("fed_sim_vs_loop", args.profile, record)
    table = [
        {
            "variant": "flower",
            "wall s / job": summary["wall_ms_a"] / 1e3,
            "cpu s (this process)": summary["cpu_ms_a"] / 1e3,
            "ms per round (round 2 on)": pr["flower_ms"],
        },
        {
            "variant": "loop",
            "wall s / job": summary["wall_ms_b"] / 1e3,
            "cpu s (this process)": summary["cpu_ms_b"] / 1e3,
            "ms per round (round 2 on)": pr["loop_ms"],
        },
    ]
    print(markdown_table(table))
    print(f"end to end: flower / loop = {ratio_text(summary['ratio'], summary['ratio_iqr'])} (target ≤ 3)")
    print(f"per round:  flower / loop = {ratio_text(pr['ratio'], pr['ratio_iqr'])} (target ≤ 1.5)")
    print(f"max |Δ| between the engines' arrays: {diff:.1e}; {load_before} before, {load_text()} after")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
