"""ONNX Runtime latency per clip of every exported classifier, front end inside the graph, one thread.

For each model of ``exported_classifiers`` (kws-ssn BC-ResNet-1, asc-factorized LMF CNN, sv-kan embedder):
the exported graph (front end as the two-stage DFT of ``devicelab.audio.factored_dft``) is timed at batch 1
against (a) PyTorch eager at one thread and (b) the same model exported with the spectrum as ONNX ``DFT``
(the eager formulation), in interleaved blocks in this process (measuring.md, "ONNX Runtime latency per
clip"); parity is checked first. Beside each latency: conv + matmul MACs per clip and the achieved MAC/s.
Writes ``reports/<profile>/bench/onnx_latency.json``.

    python benchmarks/onnx_latency.py [--rounds 9] [--iters 40] [--models kws asc sv]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from exported_classifiers import CASES, Case, load_cases

from devicelab.core.bench import PerCall, interleaved, load_text, ort_session, ratio_text, row, write_bench
from devicelab.core.onnx import onnx_parity
from devicelab.core.tables import markdown_table

TARGET_MS = {"kws": 0.5}  # issue 22: BC-ResNet-1 with front end, median and p90


def dft_op_variant(case: Case, path: Path) -> Path:
    """The same model exported with the eager spectrum (``torch.fft.rfft`` -> ONNX ``DFT``)."""
    model = copy.deepcopy(case.model)
    for module in model.modules():
        if hasattr(module, "_factored"):
            module._factored = None
    return case.export(path, model)


def node_profile(path: Path, feed: dict, runs: int = 300) -> dict:
    """ONNX Runtime's own per-node kernel times (median over ``runs`` calls, µs), summed by operator type,
    split into front end (nodes up to the log, :func:`front_end_nodes`) and the rest."""
    import json
    import statistics
    from collections import defaultdict

    import onnx
    import onnxruntime as ort

    from devicelab.core.onnx import front_end_nodes

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_profiling = True
    so.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["args"]["op_name"], e["name"].removesuffix("_kernel_time"))].append(e["dur"])
    front = set(front_end_nodes(onnx.load(str(path))))
    out: dict = {"front_end_us": 0.0, "rest_us": 0.0, "by_op_us": defaultdict(float)}
    for (op, name), durations in per_node.items():
        us = statistics.median(durations)
        # ORT renames fused nodes; a node whose name starts with a front-end node's belongs to it
        in_front = name in front or any(name.startswith(f + "_") or name.startswith(f + "/") for f in front)
        out["front_end_us" if in_front else "rest_us"] += us
        out["by_op_us"][op] += us
    out["by_op_us"] = dict(sorted(out["by_op_us"].items(), key=lambda kv: -kv[1]))
    return out


def measure(case: Case, rounds: int, iters: int, workdir: Path) -> dict:
    clip = 0.1 * torch.randn(1, case.samples, generator=torch.Generator().manual_seed(0))
    check = 0.1 * torch.randn(3, case.samples, generator=torch.Generator().manual_seed(1))
    paths = {
        "graph": case.export(workdir / f"{case.key}.onnx"),
        "dft": dft_op_variant(case, workdir / "dft.onnx"),
    }
    parity = {k: onnx_parity(case.model, p, check) for k, p in paths.items()}
    sessions = {k: ort_session(p) for k, p in paths.items()}
    feed = {sessions["graph"].get_inputs()[0].name: clip.numpy()}
    calls = {k: PerCall(lambda s=s: s.run(None, feed)) for k, s in sessions.items()}

    def eager() -> None:
        with torch.no_grad():
            case.model(clip)

    calls["eager"] = PerCall(eager)
    for fn in calls.values():  # >= 20 untimed runs each
        for _ in range(20):
            fn.fn()
    vs_eager = interleaved(calls["graph"], calls["eager"], rounds=rounds, iters=iters, warmup=0)
    graph_2 = PerCall(calls["graph"].fn)
    vs_dft = interleaved(graph_2, calls["dft"], rounds=rounds, iters=iters, warmup=0)
    per_call = {k: f.stats() for k, f in calls.items()}
    both = PerCall(calls["graph"].fn)
    both.times_ms, both.cpu_ms = (
        calls["graph"].times_ms + graph_2.times_ms,
        calls["graph"].cpu_ms + graph_2.cpu_ms,
    )
    per_call["graph"] = both.stats()
    macs = case.macs()
    profile = node_profile(paths["graph"], feed)
    return {
        "node_profile": profile,
        "parity": parity,
        "per_call_ms": per_call,
        "vs_eager": vs_eager,
        "vs_dft": vs_dft,
        "macs": macs,
        "onnx_kb": {k: p.stat().st_size / 1e3 for k, p in paths.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=40, help="calls per timed block")
    parser.add_argument("--models", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 20 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.iters = 5, 20
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    cases, missing = load_cases(args.models)
    results, table, rows = {}, [], []
    load_before = load_text()
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            r = measure(case, args.rounds, args.iters, Path(tmp))
            results[case.key] = r
            pc, macs = r["per_call_ms"], r["macs"]
            total = macs["classifier"] + macs["front_end"]
            se, sd = r["vs_eager"].summary(), r["vs_dft"].summary()
            for variant, label in (
                ("graph", "ORT, two-stage DFT"),
                ("dft", "ORT, DFT op"),
                ("eager", "eager"),
            ):
                table.append(
                    {
                        "model": case.title,
                        "variant": label,
                        "median ms": pc[variant]["median"],
                        "p90 ms": pc[variant]["p90"],
                        "cpu median ms": pc[variant]["cpu_median"],
                        "cpu p90 ms": pc[variant]["cpu_p90"],
                        "M MACs": total / 1e6 if variant != "eager" else float("nan"),
                        "G MAC/s": total / pc[variant]["median"] / 1e6,
                    }
                )
            target = TARGET_MS.get(case.key)
            med, p90 = pc["graph"]["median"], pc["graph"]["p90"]
            value = (
                f"median {med:.3f} ms, p90 {p90:.3f} ms (CPU time {pc['graph']['cpu_median']:.3f} / "
                f"{pc['graph']['cpu_p90']:.3f}); {total / 1e6:.2f} M MACs "
                f"({macs['front_end'] / 1e6:.2f} front end); {total / med / 1e6:.1f} G MAC/s"
            )
            rows.append(
                row(
                    f"{case.title}: ORT latency per clip, 1 thread",
                    "ORT (two-stage DFT front end)",
                    "PyTorch eager",
                    se["ratio"],
                    se["ratio_iqr"],
                    f"median and p90 ≤ {target} ms" if target else "report",
                    (med <= target and p90 <= target) if target else None,
                    value=value,
                    note=f"parity {r['parity']['graph']:.1e}; weights: {case.weights}",
                )
            )
            rows.append(
                row(
                    f"{case.title}: front-end formulation in the graph",
                    "two-stage DFT (conv + matmul)",
                    "ONNX DFT op",
                    sd["ratio"],
                    sd["ratio_iqr"],
                    "report",
                    None,
                    value=f"{pc['dft']['median']:.3f} ms with the DFT op",
                )
            )
    print(
        f"ONNX Runtime 1 thread, batch 1, front end in the graph; {load_before} before, {load_text()} after"
    )
    print(markdown_table(table))
    for case in cases:
        r = results[case.key]
        print(
            f"{case.key}: ORT/eager {ratio_text(r['vs_eager'].ratio, r['vs_eager'].ratio_iqr)}, "
            f"two-stage/DFT op {ratio_text(r['vs_dft'].ratio, r['vs_dft'].ratio_iqr)}, parity "
            f"{r['parity']['graph']:.1e}, weights {case.weights}"
        )
    for case in cases:
        prof = results[case.key]["node_profile"]
        ops = ", ".join(f"{op} {us:.0f}" for op, us in list(prof["by_op_us"].items())[:6])
        print(
            f"{case.key} ORT profile (µs per call, node medians): front end {prof['front_end_us']:.0f}, "
            f"the rest {prof['rest_us']:.0f}; by operator: {ops}"
        )
    for m in missing:
        print(f"not measured: {m}")
    path = write_bench(
        "onnx_latency",
        args.profile,
        {
            "description": "ORT latency per clip (front end in the graph) vs eager and vs the DFT-op graph",
            "pid": os.getpid(),
            "models": {c.key: {"title": c.title, "weights": c.weights, "samples": c.samples} for c in cases},
            "results": {
                k: {
                    **{n: v for n, v in r.items() if n not in ("vs_eager", "vs_dft")},
                    "vs_eager": r["vs_eager"].summary(),
                    "vs_dft": r["vs_dft"].summary(),
                    "raw": {"vs_eager": asdict(r["vs_eager"]), "vs_dft": asdict(r["vs_dft"])},
                }
                for k, r in results.items()
            },
            "missing": missing,
            "load": [load_before, load_text()],
            "table": table,
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
