"""The ``tta-lsa`` experiment: label shift adapter around TTA methods under covariate + label shift.

Park et al., "Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts", ICCV 2023.
Spec ``tta-lsa.md``: train a source model on long-tailed data (§4), train the adapter on its cached features
(§3.4), then run every (TTA method × head) over corruption × severity × target-prior streams (§3.6, §5) and
evaluate the pre-registered claims C0–C3 (§8).
"""

from __future__ import annotations

from devicelab.core.claims import Claim
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import Stage, plan_stages, run_stages
from devicelab.methods.tta_lsa import report
from devicelab.methods.tta_lsa.config import PAIRED_METHODS, TTALSAConfig, validate, variant_name, variants
from devicelab.methods.tta_lsa.data import prepare_data
from devicelab.methods.tta_lsa.recipe import SEED_STAGE, evaluate_stage, train_seed_stage


def run(cfg: TTALSAConfig, ctx: RunContext) -> dict[str, list[float]]:
    """Stages ``source-and-adapter-seedS`` (source model, then adapter), then one stage per (variant, seed) of
    online evaluation, each in parallel workers; then metrics, tables and plots."""
    validate(cfg)
    pools = prepare_data(cfg, ctx)
    seeds = range(cfg.seed, cfg.seed + cfg.seeds)
    names = [variant_name(m, h) for m, h in variants(cfg)]
    parallel = {"workers": cfg.workers, "threads": cfg.threads}
    trained = run_stages(ctx, plan_stages([SEED_STAGE], seeds), train_seed_stage, pools, **parallel)
    evaluated = run_stages(ctx, plan_stages(names, seeds), evaluate_stage, pools, **parallel)
    per_seed = [{name: evaluated[Stage(name, seed).name] for name in names} for seed in seeds]
    metrics = report.aggregate(cfg, per_seed)
    metrics["adapter_params"] = trained.of(SEED_STAGE)[-1]["adapter_params"]
    if "clean_balanced_acc" in trained.of(SEED_STAGE)[0]:  # the source model on the clean test set
        metrics["acc/source/clean"] = [r["clean_balanced_acc"] for r in trained.of(SEED_STAGE)]
    report.write_report(cfg, ctx, metrics, per_seed, EXPERIMENT.claims)
    return metrics


# ---------------------------------------------------------------------------------------------------------
# claims (spec §8): Δ in online-accuracy points, averaged over corruptions (and severities), then over seeds

PAPER = (
    "Park, Yang, Choo, Yun: Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts, "
    "ICCV 2023"
)


# spec §8: C0, C1 and C3 also need a positive paired difference in >= 4 of 5 seeds (full), >= 2 of 3 (quick)
PAIRED_SEED_FRACTION = 2 / 3


def _claims() -> tuple[Claim, ...]:
    claims = [
        Claim(
            "C0",
            "label shift hurts plain TTA: (tent − source) on forward-ρ_s "
            "minus (tent − source) on backward-ρ_s",
            method="gain/tent-source/forward",
            baseline="gain/tent-source/backward",
            margin=2.0,
            profiles=("smoke", "quick", "full"),
            paper="[paper]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
        )
    ]
    shifted_by_profile = {
        "uniform": ("smoke", "quick", "full"),
        "backward": ("smoke", "quick", "full"),
        "backward-10": ("full",),
        "backward-50": ("full",),
    }
    for method in PAIRED_METHODS:
        for target, profiles in shifted_by_profile.items():
            claims.append(
                Claim(
                    f"C1/{method}/{target}",
                    f"LSA helps under covariate + label shift: {method}+lsa − {method} on {target}",
                    method=f"acc/{method}+lsa/{target}",
                    baseline=f"acc/{method}/{target}",
                    margin=2.0,
                    profiles=profiles,
                    paper="[paper]",
                    unit=" points",
                    paired_seed_fraction=PAIRED_SEED_FRACTION,
                )
            )
    for method in PAIRED_METHODS:
        claims.append(
            Claim(
                f"C2/{method}",
                f"LSA does no harm without label shift: {method}+lsa − {method} on forward-ρ_s",
                method=f"acc/{method}+lsa/forward",
                baseline=f"acc/{method}/forward",
                margin=-1.0,
                profiles=("smoke", "quick", "full"),
                paper="[reconstruction]",
                unit=" points",
            )
        )
    claims.append(
        Claim(
            "C3",
            "the learned adapter beats simple correction: X+lsa − X+logit, "
            "mean over bn-adapt, tent, eata and "
            "the shifted targets",
            method="acc/lsa-mean3/shifted",
            baseline="acc/logit-mean3/shifted",
            margin=0.5,
            profiles=("smoke", "quick", "full"),
            paper="[reconstruction]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
        )
    )
    return tuple(claims)


EXPERIMENT = Experiment(
    name="tta-lsa",
    paper=PAPER,
    config_cls=TTALSAConfig,
    run=run,
    claims=_claims(),
    corpora=("glyph-digits",),
    docs="docs/methods/tta-lsa.md",
    headline=(
        "acc/tent/shifted",
        "acc/tent+lsa/shifted",
        "acc/tent+logit/shifted",
        "acc/tent+lsa-oracle/shifted",
    ),
)
