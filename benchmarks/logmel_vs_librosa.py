"""LogMel against librosa on a batch of 64 one-second clips, one thread, interleaved; where the time goes.

Same settings on both sides (BC-ResNet front end: n_fft 512, Hann 480, hop 160, 40 HTK mels, reflect padding,
then log(mel + 1e-6)); parity is checked first. Ratio = LogMel / librosa wall time per batch (median of
per-round ratios, measuring.md). Then LogMel's stages (pad, frame × window, FFT, |X|², mel, log) are timed
one by one on the same batch, each with its FLOP count and bytes moved, beside the machine's measured
one-thread limits (float32 GEMM GFLOP/s, copy bandwidth). Writes ``reports/<profile>/bench/
logmel_vs_librosa.json``.

    python benchmarks/logmel_vs_librosa.py [--rounds 9] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from devicelab.audio.features import LogMel
from devicelab.core.bench import interleaved, load_text, ratio_text, row, write_bench
from devicelab.core.tables import markdown_table

BATCH, SAMPLES, SR = 64, 16000, 16000


def stage_fns(front: LogMel, clips: torch.Tensor) -> dict[str, tuple]:
    """(function, flops, bytes) per stage of LogMel's eager path, each on the previous stage's output."""
    half, n = front.n_fft // 2, front.n_fft
    padded = F.pad(clips.unsqueeze(1), (half, half), mode="reflect").squeeze(1)
    frames = padded.unfold(-1, n, front.hop_length) * front.window
    spec = torch.view_as_real(torch.fft.rfft(frames))
    power = spec[..., 0].square() + spec[..., 1].square()
    mel = torch.matmul(front.mel_fbank, power.mT)
    b, t, f = power.shape
    m = front.n_mels
    return {
        "pad (reflect)": (
            lambda: F.pad(clips.unsqueeze(1), (half, half), mode="reflect"),
            0,
            4 * (clips.numel() + padded.numel()),
        ),
        "frame × window": (
            lambda: padded.unfold(-1, n, front.hop_length) * front.window,
            b * t * n,
            8 * b * t * n,
        ),
        "FFT (rfft)": (
            lambda: torch.fft.rfft(frames),
            int(2.5 * n * math.log2(n)) * b * t,
            4 * b * t * (n + 2 * f),
        ),
        "power Re² + Im²": (
            lambda: spec[..., 0].square() + spec[..., 1].square(),
            3 * b * t * f,
            12 * b * t * f,
        ),
        "mel (matmul)": (
            lambda: torch.matmul(front.mel_fbank, power.mT),
            2 * m * f * b * t,
            4 * b * t * (f + m),
        ),
        "log": (lambda: torch.log(mel + front.log_offset), 2 * b * m * t, 8 * b * m * t),
    }


def machine_limits() -> dict[str, float]:
    """One-thread float32 GEMM GFLOP/s (1024², best of 5) and copy bandwidth GB/s (64 MB, best of 5), from
    CPU time."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    src, dst = torch.randn(16 * 2**20), torch.empty(16 * 2**20)
    gemm, copy = [], []
    for _ in range(5):
        t0 = time.process_time_ns()
        torch.mm(a, b)
        gemm.append(2 * 1024**3 / (time.process_time_ns() - t0))
        t0 = time.process_time_ns()
        dst.copy_(src)
        copy.append(2 * src.numel() * 4 / (time.process_time_ns() - t0))
    return {"gemm_gflops": max(gemm), "copy_gbps": max(copy)}


def stage_profile(front: LogMel, clips: torch.Tensor, rounds: int) -> list[dict]:
    """Median CPU time per stage over ``rounds`` (CPU time: a stage of a few ms is shorter than the time a
    loaded machine keeps a process waiting, so wall time would show the scheduler), on one chunk of
    ``LogMel.CHUNK`` clips as the eager path runs them, scaled to the whole batch."""
    scale = clips.shape[0] / front.CHUNK
    stages = stage_fns(front, clips[: front.CHUNK])
    times: dict[str, list[float]] = {k: [] for k in stages}
    with torch.no_grad():
        for fn, _, _ in stages.values():
            fn()
        for _ in range(rounds):
            for name, (fn, _, _) in stages.items():
                gc.collect()
                c0 = time.process_time_ns()
                for _ in range(10):
                    fn()
                times[name].append((time.process_time_ns() - c0) / 10e6)
    out = []
    for name, (_, flops, nbytes) in stages.items():
        ms, flops, nbytes = statistics.median(times[name]) * scale, flops * scale, nbytes * scale
        out.append(
            {
                "stage": name,
                "cpu ms": ms,
                "MFLOP": flops / 1e6,
                "GFLOP/s": flops / ms / 1e6,
                "GB/s": nbytes / ms / 1e6,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=5, help="batches per timed block (>= 0.2 s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="quick", help="report folder: reports/<profile>/bench/")
    parser.add_argument("--quick", action="store_true", help="5 rounds, 2 batches per block")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.iters = 5, 2
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    # same thread settings for both (measuring.md rule 4): librosa's mel projection runs on BLAS threads
    threadpool_limits(limits=args.threads, user_api="blas")

    rng = np.random.default_rng(0)
    t = np.arange(SAMPLES) / SR
    clips = (
        0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000, (BATCH, 1)) * t)
        + 0.05 * rng.standard_normal((BATCH, SAMPLES))
    ).astype(np.float32)
    clips_torch = torch.from_numpy(clips)
    front = LogMel().eval()

    def run_torch() -> np.ndarray:
        with torch.no_grad():
            return front(clips_torch).numpy()

    def run_librosa() -> np.ndarray:
        return front.librosa_reference(clips)

    max_diff = float(np.abs(run_torch() - run_librosa()).max())  # also warms librosa's numba caches
    if max_diff > 1e-3:
        raise SystemExit(f"LogMel differs from librosa by {max_diff:.2e} > 1e-3; not timing")
    load_before = load_text()
    timing = interleaved(run_torch, run_librosa, rounds=args.rounds, iters=args.iters, warmup=3)
    s = timing.summary()
    stages = stage_profile(front, clips_torch, args.rounds)
    limits = machine_limits()
    total_flops = sum(st["MFLOP"] for st in stages) * 1e6
    table = [
        {
            "variant": "librosa (baseline)",
            "wall ms / batch": s["wall_ms_b"],
            "cpu ms": s["cpu_ms_b"],
            "ratio [IQR]": "1.00",
            "clips/s": BATCH / s["wall_ms_b"] * 1e3,
        },
        {
            "variant": "LogMel",
            "wall ms / batch": s["wall_ms_a"],
            "cpu ms": s["cpu_ms_a"],
            "ratio [IQR]": ratio_text(s["ratio"], s["ratio_iqr"]),
            "clips/s": BATCH / s["wall_ms_a"] * 1e3,
        },
    ]
    print(markdown_table(table))
    print(
        f"max |LogMel - librosa| = {max_diff:.2e} (log-mel units); cpu-time ratio {s['cpu_ratio']:.2f}; "
        f"threads {args.threads}; flagged rounds {s['flagged_rounds']}/{s['rounds']} {s['warning']}; "
        f"{load_before} before, {load_text()} after"
    )
    print(
        f"\nLogMel stages, CPU time (float32, one thread; chunks of {front.CHUNK} clips, summed over the "
        "batch)"
    )
    print(markdown_table(stages))
    print(
        f"total {total_flops / 1e6:.0f} MFLOP; LogMel runs at "
        f"{total_flops / s['cpu_ms_a'] / 1e6:.2f} GFLOP/s of CPU time; this machine (one thread): "
        f"{limits['gemm_gflops']:.1f} GFLOP/s float32 GEMM, {limits['copy_gbps']:.1f} GB/s copy"
    )
    rows = [
        row(
            "log-mel of 64 × 1 s clips, 1 thread",
            "LogMel",
            "librosa",
            s["ratio"],
            s["ratio_iqr"],
            "≤ 1.00",
            s["ratio"] <= 1.0,
            value=f"{s['wall_ms_a']:.1f} vs {s['wall_ms_b']:.1f} ms",
            note=f"parity {max_diff:.1e} dB; {s['flagged_rounds']}/{s['rounds']} rounds flagged",
        )
    ]
    path = write_bench(
        "logmel_vs_librosa",
        args.profile,
        {
            "description": "LogMel / librosa wall time on a batch of 64 one-second clips (front end only)",
            "batch": BATCH,
            "threads": args.threads,
            "pid": os.getpid(),
            "max_abs_diff": max_diff,
            "summary": s,
            "timing": timing,
            "table": table,
            "stages": stages,
            "total_mflop": total_flops / 1e6,
            "machine_limits": limits,
            "load": [load_before, load_text()],
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
