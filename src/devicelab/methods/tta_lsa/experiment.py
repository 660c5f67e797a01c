"""The ``tta-lsa`` experiment: label shift adapter around TTA methods under covariate + label shift.

Park et al., "Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts", ICCV 2023.
Spec ``tta-lsa.md``: train a source model on long-tailed data (§4), train the adapter on its cached features
(§3.4), then run every (TTA method × head) over corruption × severity × target-prior streams (§3.6, §5) and
evaluate the pre-registered claims C0–C3 (§8).
"""

from __future__ import annotations

from devicelab.core.claims import Claim, Conjunction
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import Stage, plan_stages, run_stages
from devicelab.methods.tta_lsa import report
from devicelab.methods.tta_lsa.config import PAIRED_METHODS, TTALSAConfig, validate, variant_name, variants
from devicelab.methods.tta_lsa.data import prepare_data
from devicelab.methods.tta_lsa.recipe import SEED_STAGE, evaluate_stage, train_seed_stage

# ---------------------------------------------------------------------------------------------------------
# run


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


ALL_PROFILES = ("smoke", "quick", "full")
# the shifted targets of C1 (spec §8) and the profiles whose streams hold them
SHIFTED_BY_PROFILE = {
    "uniform": ALL_PROFILES,
    "backward": ALL_PROFILES,
    "backward-10": ("full",),
    "backward-50": ("full",),
}
CONTROL_TOLERANCE = 1.0  # points: the frozen-prior adapter must track the plain method


def _floors() -> tuple[Claim, Conjunction]:
    """Preconditions of C0–C3: the source model learned; and the adapter fed the source prior (``lsa-frozen``)
    stays within a point of the plain method on every target, so a gain comes from the estimated prior
    rather than from refitting the head."""
    source = Claim(
        "F-source",
        "the source model reaches 90 % on the clean, balanced test set",
        method="acc/source/clean",
        margin=90.0,
        kind="threshold",
        profiles=("quick", "full"),
        unit=" %",
    )
    control_methods = {"tent": ("quick", "full"), "bn-adapt": ("full",), "eata": ("full",)}
    control = Conjunction(
        "F-control",
        f"|X+lsa-frozen − X| ≤ {CONTROL_TOLERANCE:g} point on every target",
        parts=tuple(
            Claim(
                f"F-control/{method}/{target}",
                f"{method}+lsa-frozen − {method} on {target}",
                method=f"acc/{method}+lsa-frozen/{target}",
                baseline=f"acc/{method}/{target}",
                margin=CONTROL_TOLERANCE,
                kind="equivalence",
                profiles=tuple(p for p in method_profiles if p in target_profiles),
                unit=" points",
            )
            for method, method_profiles in control_methods.items()
            for target, target_profiles in {"forward": ALL_PROFILES, **SHIFTED_BY_PROFILE}.items()
        ),
        profiles=("quick", "full"),
    )
    return source, control


def _claims() -> tuple[Claim | Conjunction, ...]:
    source, control = _floors()
    c1_parts = tuple(
        Claim(
            f"C1/{method}/{target}",
            f"{method}+lsa − {method} on {target}",
            method=f"acc/{method}+lsa/{target}",
            baseline=f"acc/{method}/{target}",
            margin=2.0,
            profiles=profiles,
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
        )
        for method in PAIRED_METHODS
        for target, profiles in SHIFTED_BY_PROFILE.items()
    )
    c2_parts = tuple(
        Claim(
            f"C2/{method}",
            f"{method}+lsa − {method} on forward-ρ_s",
            method=f"acc/{method}+lsa/forward",
            baseline=f"acc/{method}/forward",
            margin=-1.0,
            profiles=ALL_PROFILES,
            unit=" points",
        )
        for method in PAIRED_METHODS
    )
    return (
        Claim(
            "C0",
            "label shift hurts plain TTA: (tent − source) on forward-ρ_s "
            "minus (tent − source) on backward-ρ_s",
            method="gain/tent-source/forward",
            baseline="gain/tent-source/backward",
            margin=2.0,
            profiles=ALL_PROFILES,
            paper="[paper]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
            floors=(source,),
        ),
        Conjunction(
            "C1",
            "LSA helps under covariate + label shift: X+lsa − X ≥ 2 points for each of bn-adapt, TENT, EATA "
            "on each shifted target",
            parts=c1_parts,
            profiles=ALL_PROFILES,
            paper="[paper]",
            floors=(source, control),
        ),
        Conjunction(
            "C2",
            "LSA does no harm without label shift: X+lsa − X ≥ −1 point for each of bn-adapt, TENT, EATA on "
            "forward-ρ_s",
            parts=c2_parts,
            profiles=ALL_PROFILES,
            paper="[reconstruction]",
            floors=(source,),
        ),
        Claim(
            "C3",
            "the learned adapter beats simple correction: X+lsa − X+logit, "
            "mean over bn-adapt, tent, eata and "
            "the shifted targets",
            method="acc/lsa-mean3/shifted",
            baseline="acc/logit-mean3/shifted",
            margin=0.5,
            profiles=ALL_PROFILES,
            paper="[reconstruction]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
            floors=(source, control),
        ),
    )


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
