"""LogMel (torch.stft + mel matrix) against librosa on a batch of 64 one-second clips, interleaved.

Same settings on both sides (BC-ResNet front end: n_fft 512, Hann 480, hop 160, 40 HTK mels, reflect padding,
then log(mel + 1e-6)); parity is checked first. Ratio = LogMel / librosa wall time per batch (median of
per-round ratios, measuring.md). Writes ``reports/<profile>/bench/logmel_vs_librosa.json``.

    python benchmarks/logmel_vs_librosa.py [--rounds 9] [--threads 1]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from devicelab.audio.features import LogMel
from devicelab.core.bench import interleaved, write_bench
from devicelab.core.tables import markdown_table

BATCH, SAMPLES, SR = 64, 16000, 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=5, help="batches per timed block (>= 0.2 s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="quick", help="report folder: reports/<profile>/bench/")
    args = parser.parse_args()
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
    timing = interleaved(run_torch, run_librosa, rounds=args.rounds, iters=args.iters, warmup=3)
    s = timing.summary()
    rows = [
        {
            "variant": "librosa (baseline)",
            "wall ms / batch": s["wall_ms_b"],
            "cpu ms": s["cpu_ms_b"],
            "ratio [IQR]": "1.00",
            "clips/s": BATCH / s["wall_ms_b"] * 1e3,
        },
        {
            "variant": "LogMel (torch)",
            "wall ms / batch": s["wall_ms_a"],
            "cpu ms": s["cpu_ms_a"],
            "ratio [IQR]": f"{s['ratio']:.2f} [{s['ratio_iqr'][0]:.2f}, {s['ratio_iqr'][1]:.2f}]",
            "clips/s": BATCH / s["wall_ms_a"] * 1e3,
        },
    ]
    print(markdown_table(rows))
    print(
        f"max |LogMel - librosa| = {max_diff:.2e} (log-mel units); cpu-time ratio {s['cpu_ratio']:.2f}; "
        f"threads {args.threads}; flagged rounds {s['flagged_rounds']}/{s['rounds']} {s['warning']}"
    )
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
            "table": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
