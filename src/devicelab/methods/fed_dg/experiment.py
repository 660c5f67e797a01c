"""The ``fed-dg`` experiment: FedFD / FedFD-A against FedAvg, FedProx, FedBN, FedSR and test-time BN,
leave-one-domain-out, on ``glyph-digits`` (quick) or a real domain data set given with ``--data`` (full).

Every (method, held-out domain, seed) is one stage of :mod:`devicelab.core.stages`, run in ``workers``
processes of ``client_threads`` torch threads. Sweeps use the plain-loop engine; the first
FedFD sub-run is repeated for ``flower_check_rounds`` rounds under Flower and the largest array difference
between the engines goes into ``metrics.json`` (``specs/flower.md`` §6).
"""

from __future__ import annotations

import statistics
from typing import Any

from devicelab.core.claims import Claim
from devicelab.core.config import ConfigError
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import Stage, plan_stages, run_stages
from devicelab.methods.fed_dg.config import CLAIM_METHODS, FedDGConfig
from devicelab.methods.fed_dg.data import DirectoryDomains, domain_source
from devicelab.methods.fed_dg.export import export_run
from devicelab.methods.fed_dg.recipe import METRIC_SOURCES, flower_check_stage, lodo_stage
from devicelab.methods.fed_dg.report import alpha_table, comparison_table, paired_table

PAPER = "Feature Diversification and Adaptation for Federated Domain Generalization (ECCV 2024)"


def plan(cfg: FedDGConfig, domains: list[str]) -> list[Stage]:
    """FedAvg and FedFD with every claim seed, the baselines with the baseline seeds; each held-out domain."""
    held = list(cfg.held_out) or domains
    unknown = [d for d in held if d not in domains]
    if unknown:
        raise ConfigError(f"held_out: unknown domain(s) {', '.join(unknown)}; domains: {', '.join(domains)}")
    return plan_stages(CLAIM_METHODS, cfg.seeds, held) + plan_stages(cfg.baselines, cfg.baseline_seeds, held)


def run(cfg: FedDGConfig, ctx: RunContext) -> dict[str, Any]:
    """Leave-one-domain-out sweep of method and baselines; returns per-seed LODO means (%)."""
    source, dataset = domain_source(cfg, ctx)
    if isinstance(source, DirectoryDomains) and source.cache_dir is not None:
        source.prepare()  # decode every image once per corpus; stages then read cached arrays
    stages = plan(cfg, source.domains())
    held = list(dict.fromkeys(s.condition for s in stages))
    if cfg.backbone == "resnet18" and not cfg.init_weights:
        ctx.note("resnet18 trained from scratch (no init_weights): not comparable with the paper's numbers")
    workers = cfg.workers if cfg.engine == "loop" else 1  # the Flower engine starts its own Ray workers
    done = run_stages(ctx, stages, lodo_stage, source, workers=workers, threads=cfg.client_threads)
    results = {(s.variant, s.condition, s.seed): done[s.name] for s in stages}
    prefix = "" if dataset in ("glyph", "synthetic") else f"{dataset}_"
    metrics: dict[str, Any] = {}
    for key, (method, mode) in METRIC_SOURCES.items():
        seeds = cfg.seeds if method in CLAIM_METHODS else cfg.baseline_seeds
        if method not in CLAIM_METHODS and method not in cfg.baselines:
            continue
        metrics[prefix + key] = [statistics.fmean(results[(method, d, s)][mode] for d in held) for s in seeds]
    ctx.add_table(comparison_table(metrics, prefix))
    ctx.add_table(paired_table(results, held, cfg.seeds))
    layers = len(results[("fedfd", held[0], cfg.seeds[0])].get("alpha_ifa", []))
    for key, name in (("alpha_ifa_init", "fedfd_a_adapter_init"), ("alpha_ifa", "fedfd_a")):
        for i in range(layers):  # mean alpha per BN layer: over held-out domains, one value per seed
            metrics[f"alpha/{name}/l{i + 1}"] = [
                statistics.fmean(results[("fedfd", d, s)][key][i] for d in held) for s in cfg.seeds
            ]
    if layers:
        ctx.add_table(alpha_table(metrics, layers))
    if cfg.flower_check_rounds > 0:
        check = Stage("flower-check", cfg.seeds[0], held[0])
        metrics.update(
            run_stages(ctx, [check], flower_check_stage, source, workers=1, threads=cfg.client_threads)[
                check.name
            ]
        )
        ctx.note(
            f"engines: loop vs Flower on {held[0]}, seed {cfg.seeds[0]}, {cfg.flower_check_rounds} rounds "
            f"(the last an adapter round): largest |array difference| {metrics['flower_max_abs_diff']:.3g}"
        )
    metrics["wall_per_run_s"] = statistics.fmean(r["wall_s"] for r in results.values())
    if dataset == "synthetic":
        ctx.note("smoke profile: generated domains, numbers carry no meaning")
    ctx.note(f"{dataset}: held-out domains {', '.join(held)}; train_per_domain={cfg.train_per_domain}")
    return metrics


# preconditions of Q1–Q3: FedAvg learned; the instance adapter moved (differs from its initial values)
FEDAVG_LEARNED = Claim(
    "F-fedavg",
    "FedAvg LODO mean accuracy on glyph-digits reaches 60 %",
    method="fedavg",
    margin=60.0,
    kind="threshold",
    profiles=("quick",),
    unit=" %",
)
ADAPTER_MOVED = Claim(
    "F-adapter",
    "the instance feature adapter moved: FedFD-A differs from FedFD-A with the adapter at its initial values",
    method="fedfd_a",
    baseline="fedfd_a_adapter_init",
    margin=0.0,
    direction="either",
    strict=True,
    profiles=("quick",),
    unit=" pt",
)


def _claims() -> tuple[Claim, ...]:
    q = dict(profiles=("smoke", "quick"), paper=PAPER, unit=" pt")
    f = dict(profiles=("full",), paper=PAPER, unit=" pt")
    return (
        Claim(
            "Q1",
            "diversification generalises better (LODO mean acc, FedFD − FedAvg ≥ +1.0 pt)",
            "fedfd",
            "fedavg",
            1.0,
            floors=(FEDAVG_LEARNED,),
            **q,
        ),
        Claim(
            "Q2",
            "the adapter adds to it (LODO mean acc, FedFD-A − FedFD ≥ +0.5 pt)",
            "fedfd_a",
            "fedfd",
            0.5,
            floors=(FEDAVG_LEARNED, ADAPTER_MOVED),
            **q,
        ),
        Claim(
            "Q3",
            "learned mixing beats raw instance statistics (FedFD-A − (FedFD + TTBN) > 0.0 pt)",
            "fedfd_a",
            "fedfd_ttbn",
            0.0,
            strict=True,
            floors=(FEDAVG_LEARNED, ADAPTER_MOVED),
            **q,
        ),
        Claim(
            "F1",
            "PACS LODO mean acc: FedFD-A − FedAvg ≥ +2.0 pt",
            "pacs_fedfd_a",
            "pacs_fedavg",
            2.0,
            **f,
        ),
        Claim(
            "F2",
            "PACS LODO mean acc: FedFD-A − FedSR > 0.0 pt",
            "pacs_fedfd_a",
            "pacs_fedsr",
            0.0,
            strict=True,
            **f,
        ),
        Claim(
            "F3",
            "PACS LODO mean acc: FedFD-A − FedFD ≥ +0.5 pt",
            "pacs_fedfd_a",
            "pacs_fedfd",
            0.5,
            **f,
        ),
        Claim(
            "F4",
            "Office-Home LODO mean acc: FedFD-A − FedAvg ≥ +1.0 pt",
            "officehome_fedfd_a",
            "officehome_fedavg",
            1.0,
            **f,
        ),
    )


CLAIMS = _claims()

EXPERIMENT = Experiment(
    name="fed-dg",
    paper=PAPER,
    config_cls=FedDGConfig,
    run=run,
    claims=CLAIMS,
    corpora=("glyph-digits",),
    docs="docs/methods/fed-dg.md",
    headline=(
        "fedavg",
        "fedfd",
        "fedfd_a",
        "fedfd_a_adapter_init",
        "fedfd_ttbn",
        "flower_max_abs_diff",
        "fedprox",
        "fedbn_ttbn",
        "fedsr",
    ),
    export=export_run,
)
