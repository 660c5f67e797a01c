"""FedUA at 1,000 simulated users: rounds per second and the server's memory (spec §1: "it scales with the
number of users").

Loop engine, generated feature speakers (12 utterances x 20 frames x 40 bands per user), a small TDNN
(``--channels``), c = 64, f = 0.1 (100 users per round), then the warm-up round of all users. For FedUA,
naive positive-only FedAvg and FedAwS: the median wall and CPU time of a training round (1 / CPU time is
the rate on one free core; wall time on a shared machine is inflated by other jobs), the warm-up round,
the server state in bytes (global arrays: FedUA's does not grow with the users, the per-user softmax and
FedAwS tables do) and the bytes of one round's replies, which the server holds while it aggregates. The
peak RSS of the whole process (clients included, an upper bound) is written too.
Writes ``reports/<profile>/bench/fed_ua_scale.json``.

    python benchmarks/fed_ua_scale.py --users 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch

from devicelab.core.bench import write_bench
from devicelab.core.memory import current_peak_rss_bytes, reset_peak_rss
from devicelab.core.tables import markdown_table
from devicelab.federated import FederatedConfig, LocalTraining, run_loop
from devicelab.methods.fed_ua.algorithms import FedAwS, FedUA, NaiveFedAvg
from devicelab.methods.fed_ua.data import synthetic_task
from devicelab.methods.fed_ua.model import ModelConfig


def _mark(marks: list[float], **_: object) -> None:
    marks.append(time.process_time())


def nbytes(arrays: dict) -> int:
    return int(sum(v.nbytes for v in arrays.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--code-length", type=int, default=64)
    parser.add_argument("--profile", default="quick", help="report folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = synthetic_task(args.users, 0, 2, seed=0)
    size = dict(channels=args.channels, embed_dim=args.channels)
    common = dict(original_users=args.users, rounds=args.rounds, fraction=args.fraction, seed=0,
                  train=LocalTraining(0.05, 0.0, 0.0, 10, 1))  # fmt: skip
    algos = {
        "fedua": FedUA(model=ModelConfig(out_dim=args.code_length, **size), code_length=args.code_length,
                       max_users=args.users, **common),
        "naive": NaiveFedAvg(model=ModelConfig(head="softmax", out_dim=args.users, **size), **common),
        "fedaws": FedAwS(model=ModelConfig(head="fedaws", out_dim=args.users, **size), privacy_exempt=True,
                         **common),
    }  # fmt: skip
    rows, record = [], {"users": args.users, "rounds": args.rounds, "fraction": args.fraction, "runs": {}}
    for name, algo in algos.items():
        reset_peak_rss()
        cfg = FederatedConfig(algo.num_rounds, args.users, seed=0, server_eval_every=0, strict_audit=True)
        marks = [time.process_time()]  # CPU time at the end of every round
        t0, c0 = time.perf_counter(), marks[0]
        result = run_loop(algo, task.client_data, cfg, log=partial(_mark, marks))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        train = [r.wall_s for r in result.rounds if r.stage == "train"]
        cpu_rounds = [b - a for a, b in zip(marks, marks[1:])]
        per_round = len(result.rounds[0].ok)
        state = nbytes(result.arrays)
        run = {
            "rounds_per_s": 1.0 / statistics.median(train),
            "rounds_per_cpu_s": 1.0 / statistics.median(cpu_rounds[:-1]),
            "train_round_s": statistics.median(train),
            "train_round_cpu_s": statistics.median(cpu_rounds[:-1]),
            "warmup_round_s": result.rounds[-1].wall_s,
            "warmup_round_cpu_s": cpu_rounds[-1],
            "users_per_round": per_round,
            "server_state_bytes": state,
            "round_replies_bytes": per_round * state,
            "peak_rss_bytes": current_peak_rss_bytes(),
            "wall_s": wall,
            "cpu_s": cpu,
            "warmup_users": len(result.rounds[-1].ok),
        }
        record["runs"][name] = run
        rows.append({"algorithm": name, **{k: v for k, v in run.items() if k != "wall_s"}})
        print(markdown_table(rows[-1:]), flush=True)
    path = write_bench("fed_ua_scale", args.profile, record)
    print(markdown_table(rows))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
