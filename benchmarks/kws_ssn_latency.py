"""kws-ssn deployment numbers: ONNX Runtime latency per 1 s clip vs PyTorch eager, MACs, training throughput.

1. Latency (measuring.md, "ONNX Runtime latency per clip"): the folded SSN model with the log-mel front end
   inside the graph, batch 1, one thread, ORT against PyTorch eager in interleaved blocks in this process;
   parity is checked first. The BatchNorm model's ORT latency is measured beside it (SSN / BN ratio).
2. MACs: ``FlopCounterMode`` on one eval-mode forward of the classifier at (1, 1, 40, 101): conv + matmul
   MACs.
3. Training throughput, SSN vs BN, one thread, batch 100: model only (pre-built log-mel features) and end to
   end (noise augmentation + log-mel + model), interleaved.
Writes ``reports/<profile>/bench/kws_ssn_latency.json``.

    python benchmarks/kws_ssn_latency.py [--run-dir runs/kws-ssn/<id>] [--rounds 9]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from devicelab.audio.augment import BackgroundNoiseMixer
from devicelab.audio.features import LogMel
from devicelab.core.bench import interleaved, write_bench
from devicelab.core.onnx import onnx_parity
from devicelab.core.tables import markdown_table
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.export import deployable, export_waveform_model, load_trained
from devicelab.methods.kws_ssn.recipe import build_bcresnet
from devicelab.nn.utils import count_parameters


def ort_session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class PerCall:
    """A callable that records the wall time of every call (for median and p90 per clip)."""

    def __init__(self, fn):
        self.fn, self.times_ms = fn, []

    def __call__(self):
        t0 = time.perf_counter_ns()
        self.fn()
        self.times_ms.append((time.perf_counter_ns() - t0) / 1e6)


def _ratio(summary: dict) -> str:
    q1, q3 = summary["ratio_iqr"]
    return f"{summary['ratio']:.2f} [{q1:.2f}, {q3:.2f}]"


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def latency(models: dict[str, torch.nn.Module], rounds: int, iters: int, workdir: Path) -> dict:
    clip = 0.1 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(0))
    out: dict = {}
    sessions = {}
    for name, model in models.items():
        path = export_waveform_model(model, workdir / f"{name}.onnx")
        out[f"parity_{name}"] = onnx_parity(model, path, 0.1 * torch.randn(4, 16000))
        sessions[name] = ort_session(path)
    feeds = {n: {s.get_inputs()[0].name: clip.numpy()} for n, s in sessions.items()}
    for name in sessions:  # >= 20 untimed runs each
        for _ in range(20):
            sessions[name].run(None, feeds[name])
    ort_ssn = PerCall(lambda: sessions["ssn"].run(None, feeds["ssn"]))
    model = models["ssn"]

    def eager_call():
        with torch.no_grad():
            model(clip)

    eager_ssn = PerCall(eager_call)
    for _ in range(20):
        eager_call()
    out["ort_vs_eager"] = interleaved(ort_ssn, eager_ssn, rounds=rounds, iters=iters, warmup=0)
    ort_bn = PerCall(lambda: sessions["bn"].run(None, feeds["bn"]))
    ort_ssn2 = PerCall(lambda: sessions["ssn"].run(None, feeds["ssn"]))
    out["ort_ssn_vs_bn"] = interleaved(ort_ssn2, ort_bn, rounds=rounds, iters=iters, warmup=0)
    out["per_call_ms"] = {
        name: {"median": statistics.median(f.times_ms), "p90": p90(f.times_ms), "n": len(f.times_ms)}
        for name, f in (("ort_ssn", ort_ssn), ("eager_ssn", eager_ssn), ("ort_bn", ort_bn))
    }
    return out


def macs(config: KwsSsnConfig) -> dict[str, dict[str, int]]:
    out = {}
    for variant in ("ssn", "bn", "bn-wide"):
        model = build_bcresnet(config, variant).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.zeros(1, 1, 40, 101))
        out[variant] = {"conv_matmul_macs": counter.get_total_flops() // 2, "params": count_parameters(model)}
    return out


def training_throughput(config: KwsSsnConfig, rounds: int, iters: int) -> dict:
    g = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(config.batch_size, 16000, generator=g)
    labels = torch.arange(config.batch_size) % 12
    features = LogMel()(waves).unsqueeze(1)
    mixer = BackgroundNoiseMixer([0.1 * torch.randn(160000, generator=g)])
    front = LogMel()

    def step_fn(variant: str, end_to_end: bool):
        torch.manual_seed(0)
        model = build_bcresnet(config, variant).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-3)
        rng = np.random.default_rng(0)

        def step():
            if end_to_end:
                with torch.no_grad():
                    x = front(mixer(waves, labels, rng)).unsqueeze(1)
            else:
                x = features
            loss = F.cross_entropy(model(x), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    out = {}
    for mode, e2e in (("model_only", False), ("end_to_end", True)):
        gc.collect()
        out[mode] = interleaved(step_fn("ssn", e2e), step_fn("bn", e2e), rounds=rounds, iters=iters, warmup=3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="a finished kws-ssn run (default: untrained "
        "models; latency and MACs do not depend on the weights)",
    )
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--latency-iters", type=int, default=25, help="clips per timed block (9 x 25 >= 200)")
    parser.add_argument("--train-iters", type=int, default=3, help="training steps per timed block")
    parser.add_argument("--profile", default="quick", help="report folder: reports/<profile>/bench/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    config = KwsSsnConfig()
    if args.run_dir is not None:
        classifiers = {v: load_trained(args.run_dir, f"{v}-seed{config.seed}") for v in ("ssn", "bn")}
    else:
        classifiers = {v: build_bcresnet(config, v).eval() for v in ("ssn", "bn")}
    models = {v: deployable(m) for v, m in classifiers.items()}
    with tempfile.TemporaryDirectory() as tmp:
        lat = latency(models, args.rounds, args.latency_iters, Path(tmp))
    mac = macs(config)
    train = training_throughput(config, args.rounds, args.train_iters)

    s_oe, s_sb = lat["ort_vs_eager"].summary(), lat["ort_ssn_vs_bn"].summary()
    pc = lat["per_call_ms"]
    rows = [
        {
            "variant": "PyTorch eager, SSN folded (baseline)",
            "median ms/clip": pc["eager_ssn"]["median"],
            "p90 ms": pc["eager_ssn"]["p90"],
            "ratio [IQR]": "1.00",
        },
        {
            "variant": "ORT, SSN folded",
            "median ms/clip": pc["ort_ssn"]["median"],
            "p90 ms": pc["ort_ssn"]["p90"],
            "ratio [IQR]": f"{s_oe['ratio']:.2f} [{s_oe['ratio_iqr'][0]:.2f}, {s_oe['ratio_iqr'][1]:.2f}]",
        },
        {
            "variant": "ORT, BN model (SSN/BN ratio)",
            "median ms/clip": pc["ort_bn"]["median"],
            "p90 ms": pc["ort_bn"]["p90"],
            "ratio [IQR]": "SSN/BN " + _ratio(s_sb),
        },
    ]
    print("Latency per 1 s clip, batch 1, 1 thread, log-mel front end inside the graph")
    print(markdown_table(rows))
    print(
        f"parity (max abs logits diff, ORT vs eager): SSN {lat['parity_ssn']:.2e}, BN {lat['parity_bn']:.2e}"
    )
    print("\nconv + matmul MACs per 1 s clip (classifier only, FlopCounterMode)")
    print(markdown_table([{"model": k, **v} for k, v in mac.items()]))
    train_rows = []
    for mode, timing in train.items():
        s = timing.summary()
        train_rows.append(
            {
                "mode": mode,
                "SSN ms/step": s["wall_ms_a"],
                "BN ms/step": s["wall_ms_b"],
                "SSN/BN [IQR]": f"{s['ratio']:.2f} [{s['ratio_iqr'][0]:.2f}, {s['ratio_iqr'][1]:.2f}]",
                "SSN clips/s": config.batch_size / s["wall_ms_a"] * 1e3,
                "BN clips/s": config.batch_size / s["wall_ms_b"] * 1e3,
                "flagged": f"{s['flagged_rounds']}/{s['rounds']}",
            }
        )
    print(f"\nTraining throughput, batch {config.batch_size}, 1 thread")
    print(markdown_table(train_rows))
    path = write_bench(
        "kws_ssn_latency",
        args.profile,
        {
            "description": "ORT vs eager latency per clip (front end in graph, SSN folded), MACs, training "
            "throughput SSN vs BN",
            "weights": str(args.run_dir) if args.run_dir else "untrained",
            "pid": os.getpid(),
            "latency": {k: (v.summary() if hasattr(v, "summary") else v) for k, v in lat.items()},
            "latency_raw": {k: asdict(v) for k, v in lat.items() if hasattr(v, "summary")},
            "macs": mac,
            "training": {k: v.summary() for k, v in train.items()},
            "training_raw": {k: asdict(v) for k, v in train.items()},
            "tables": {"latency": rows, "training": train_rows},
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
