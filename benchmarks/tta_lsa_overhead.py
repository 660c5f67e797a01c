"""Compute overhead of the label shift adapter per test batch, against the same TTA method without it.

Spec ``tta-lsa.md`` §7 ("adapter overhead: ms per batch, parameters"), measured as ``measuring.md`` asks:
both variants in one process, interleaved rounds, median of per-round ratios with its IQR, same inputs.
For each method, variant A is ``method`` with the ``lsa`` head (adapter forward + EMA estimate every batch),
variant B the same method with the plain head.

    python benchmarks/tta_lsa_overhead.py --profile quick   # -> reports/quick/bench/tta_lsa_overhead.json
"""

from __future__ import annotations

import argparse

import torch

from devicelab.core.bench import interleaved, write_bench
from devicelab.core.tables import markdown_table
from devicelab.methods.tta_lsa.adapter import LabelShiftAdapter
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.heads import make_head
from devicelab.methods.tta_lsa.streams import lt_prior
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY
from devicelab.nn.tiny_cnn import TinyCNN

SETTINGS = {
    "smoke": {"rounds": 3, "iters": 3, "methods": ["tent"]},
    "quick": {"rounds": 9, "iters": 20, "methods": ["source", "bn-adapt", "tent", "eata"]},
    "full": {"rounds": 9, "iters": 50, "methods": ["source", "bn-adapt", "tent", "eata", "sar", "lame"]},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(SETTINGS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    settings = SETTINGS[args.profile]
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    torch.manual_seed(0)
    model = TinyCNN().eval()
    pi_s = torch.as_tensor(lt_prior(10, 10, "forward"), dtype=torch.float32)
    adapter = LabelShiftAdapter(10, model.feature_dim, pi_s)
    x = torch.randn(args.batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(1))

    rows, records = [], {}
    for name in settings["methods"]:
        plain = TTA_REGISTRY.build(name, model)
        lsa = TTA_REGISTRY.build(name, model, head=make_head("lsa", pi_s, adapter, PriorEstimator(pi_s)))
        # same work: a zero-initialised adapter must give the plain method's logits exactly
        if not torch.equal(plain(x), lsa(x)):
            raise AssertionError(f"{name}: zero-initialised lsa head differs from the plain head")
        with torch.no_grad():  # time a non-trivial adapter (same cost, non-zero output)
            torch.nn.init.normal_(adapter.mlp[-1].weight, std=1e-3)
        plain.reset()
        lsa.reset()
        timing = interleaved(
            lambda m=lsa: m(x),
            lambda m=plain: m(x),
            rounds=settings["rounds"],
            iters=settings["iters"],
            warmup=3,
        )
        with torch.no_grad():
            torch.nn.init.zeros_(adapter.mlp[-1].weight)
        summary = timing.summary()
        records[name] = summary
        rows.append(
            {
                "method": name,
                "with lsa (ms/batch)": summary["wall_ms_a"],
                "alone (ms/batch)": summary["wall_ms_b"],
                "ratio": summary["ratio"],
                "ratio IQR": f"{summary['ratio_iqr'][0]:.3f}–{summary['ratio_iqr'][1]:.3f}",
                "cpu ratio": summary["cpu_ratio"],
                "flagged rounds": summary["flagged_rounds"],
            }
        )
    params = {
        "adapter": sum(p.numel() for p in adapter.parameters()),
        "source_model": sum(p.numel() for p in model.parameters()),
    }
    path = write_bench(
        "tta_lsa_overhead",
        args.profile,
        {
            "what": "per-batch wall time of TTA method + label shift adapter (A) vs the method alone (B)",
            "batch_size": args.batch_size,
            "threads": args.threads,
            "backbone": "cnn-tiny (16/32/64), 32×32 inputs",
            "parameters": params,
            "methods": records,
        },
    )
    print(markdown_table(rows))
    print(f"adapter parameters: {params['adapter']:,} (source model: {params['source_model']:,})")
    for name, rec in records.items():
        if rec["warning"]:
            print(f"warning ({name}): {rec['warning']}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
