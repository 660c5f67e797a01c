"""int8 against float32 for every exported classifier: file size, ORT latency per clip, test accuracy.

For each model of ``exported_classifiers`` whose data loads: the float32 waveform graph, a static int8 copy
(QDQ, weights per channel; activation ranges from 64 clips of the training split, the method's
``calibration_clips``, as ``devicelab export NAME RUN --int8`` uses them) and a dynamic int8 copy; the
log-mel front end stays float32 in both (``core.onnx.quantize_int8``). Latency: batch 1, one thread, int8
against float32 in interleaved blocks. Accuracy: top-1 on the quick profile's test split, int8 minus
float32 per clip, 95 % interval from a paired bootstrap over test clips (2,000 resamples).
Writes ``reports/<profile>/bench/int8_quant.json``.

    python benchmarks/int8_quant.py [--rounds 9] [--models kws asc]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from exported_classifiers import Case, load_cases

from devicelab.core.bench import PerCall, interleaved, load_text, ort_session, row, write_bench
from devicelab.core.onnx import quantize_int8
from devicelab.core.tables import markdown_table

CALIBRATION_CLIPS = 64


def kws_data(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration clips of the training split, as ``export --int8`` draws them; test waves; test labels)."""
    from devicelab.core.config import load_config_yaml
    from devicelab.data.corpora import ensure_corpus
    from devicelab.methods.kws_ssn.config import KwsSsnConfig
    from devicelab.methods.kws_ssn.data import load_task

    config = load_config_yaml(KwsSsnConfig, case.run_dir / "config.yaml")
    root = ensure_corpus(config.corpus, "quick")
    task = load_task(
        root / "gsc",
        caps=config.class_caps,
        seed=config.seed,
        silence_noise_amplitude=config.silence_noise_amplitude,
        max_train_clips=config.max_train_clips,
        test_set=config.test_set,
        extra_root=root,
        source=config.corpus,
    )
    from devicelab.methods.kws_ssn.export import calibration_clips

    calibration = calibration_clips(case.run_dir, CALIBRATION_CLIPS).numpy()
    return calibration, task.test.waves.numpy(), task.test.labels.numpy()


def asc_data(case: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from devicelab.audio.io import read_wav
    from devicelab.core.config import load_config_yaml
    from devicelab.data.corpora import ensure_corpus
    from devicelab.data.datasets.tau2019 import TAU2019
    from devicelab.methods.asc_factorized.config import AscFactorizedConfig

    config = load_config_yaml(AscFactorizedConfig, case.run_dir / "config.yaml")
    corpus = TAU2019(ensure_corpus(config.corpus, "quick"))
    split = corpus.split(config.splits[0], config.unseen_cities)

    def waves(clips) -> np.ndarray:
        out = np.zeros((len(clips), case.samples), dtype=np.float32)
        for i, clip in enumerate(clips):
            audio, _ = read_wav(clip.path, config.sample_rate_hz)
            out[i, : min(len(audio), case.samples)] = audio[: case.samples]
        return out

    from devicelab.methods.asc_factorized.export import calibration_clips

    labels = np.array([corpus.label(c.scene) for c in split.test])
    return calibration_clips(case.run_dir, CALIBRATION_CLIPS).numpy(), waves(split.test), labels


DATA = {"kws": kws_data, "asc": asc_data}


def predictions(session, waves: np.ndarray, batch: int = 32) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate(
        [session.run(None, {name: waves[i : i + batch]})[0].argmax(-1) for i in range(0, len(waves), batch)]
    )


def paired_bootstrap(diff: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of ``diff`` from resampling its items with replacement."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def measure(case: Case, rounds: int, iters: int, workdir: Path) -> dict:
    calibration, test_waves, test_labels = DATA[case.key](case)
    fp32 = case.export(workdir / f"{case.key}.onnx")
    name = "waveform"
    paths = {
        "float32": fp32,
        "int8 static": quantize_int8(
            fp32, workdir / f"{case.key}.static.onnx", [{name: c[None]} for c in calibration]
        ),
        "int8 dynamic": quantize_int8(fp32, workdir / f"{case.key}.dynamic.onnx"),
    }
    sessions = {k: ort_session(p) for k, p in paths.items()}
    correct = {k: predictions(s, test_waves) == test_labels for k, s in sessions.items()}
    clip = {name: test_waves[:1]}
    out: dict = {"kb": {k: p.stat().st_size / 1e3 for k, p in paths.items()}, "n_test": len(test_labels)}
    out["accuracy"] = {k: float(c.mean()) for k, c in correct.items()}
    base = PerCall(lambda: sessions["float32"].run(None, clip))
    for _ in range(20):
        base.fn()
    for variant in ("int8 static", "int8 dynamic"):
        diff = correct[variant].astype(float) - correct["float32"].astype(float)
        call = PerCall(lambda v=variant: sessions[v].run(None, clip))
        for _ in range(20):
            call.fn()
        base.times_ms.clear()
        timing = interleaved(call, base, rounds=rounds, iters=iters, warmup=0)
        out[variant] = {
            "accuracy_diff": float(diff.mean()),
            "accuracy_diff_ci95": paired_bootstrap(diff),
            "latency_ms": call.stats(),
            "float32_latency_ms": base.stats(),
            "timing": timing.summary(),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--models", nargs="*", default=list(DATA), choices=list(DATA))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--quick", action="store_true", help="5 rounds of 20 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.iters = 5, 20
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    cases, missing = load_cases(args.models)
    missing.append("sv: verification scores (EER) are not evaluated here; size and latency in onnx_latency")
    results, table, rows = {}, [], []
    load_before = load_text()
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            r = results[case.key] = measure(case, args.rounds, args.iters, Path(tmp))
            for variant in ("float32", "int8 static", "int8 dynamic"):
                v = r.get(variant, {})
                lat = v.get("latency_ms") or r["int8 static"]["float32_latency_ms"]
                table.append(
                    {
                        "model": case.title,
                        "variant": variant,
                        "kB": r["kb"][variant],
                        "median ms": lat["median"],
                        "p90 ms": lat["p90"],
                        "test acc %": 100 * r["accuracy"][variant],
                    }
                )
            for variant in ("int8 static", "int8 dynamic"):
                v = r[variant]
                lo, hi = v["accuracy_diff_ci95"]
                rows.append(
                    row(
                        f"{case.title}: {variant} vs float32 ONNX, latency per clip",
                        variant,
                        "float32 ONNX",
                        v["timing"]["ratio"],
                        v["timing"]["ratio_iqr"],
                        "size, latency, Δ accuracy with 95 % interval",
                        None,
                        value=f"{r['kb'][variant]:.0f} vs {r['kb']['float32']:.0f} kB; Δacc "
                        f"{100 * v['accuracy_diff']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] points "
                        f"(n {r['n_test']})",
                    )
                )
    print(f"int8 vs float32 (ORT, 1 thread, batch 1); {load_before} before, {load_text()} after")
    print(markdown_table(table))
    for r in rows:
        print(f"{r['figure']}: {r['value']}")
    for m in missing:
        print(f"not measured: {m}")
    path = write_bench(
        "int8_quant",
        args.profile,
        {
            "description": "int8 (static QDQ, dynamic) vs float32 ONNX: size, latency, test accuracy change",
            "pid": os.getpid(),
            "models": {c.key: {"title": c.title, "weights": c.weights} for c in cases},
            "calibration_clips": CALIBRATION_CLIPS,
            "results": results,
            "missing": missing,
            "load": [load_before, load_text()],
            "table": table,
            "rows": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
