"""sed-tritrain: tri-training with a domain-adversarial branch vs the DCASE 2019 task 4 mean-teacher CRNN
and a supervised CRNN, trained side by side (spec ``sed-tritrain.md`` §7).

One stage per (system, seed) (:mod:`devicelab.core.stages`), each a resumable
:func:`devicelab.core.training.fit`; the log-mel features are computed once per run and handed to the
workers. Metric keys follow ``metric/variant``: ``event_f1/tritrain``, ``event_f1/mean-teacher``...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicelab.core.claims import Claim, MetricValue
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.sources import resolve_data
from devicelab.core.stages import plan_stages, run_stages
from devicelab.methods.sed_tritrain.config import SedTritrainConfig
from devicelab.methods.sed_tritrain.data import load_task
from devicelab.methods.sed_tritrain.recipe import plan_variants, train_stage
from devicelab.methods.sed_tritrain.report import add_plots, add_tables
from devicelab.metrics.sed import library_versions

PAPER = (
    "Weakly Labeled Sound Event Detection Using Tri-training and Adversarial Learning "
    "(Park et al., DCASE 2019 Workshop)"
)

# precondition of C1-C3 on the offline corpus: no verdict is read from a baseline that has not learned
B1_LEARNED = Claim(
    "F-b1",
    "The mean-teacher CRNN (B1) reaches 25 % event-based macro F1 on the real-like test split",
    method="event_f1/mean-teacher",
    margin=25.0,
    kind="threshold",
    profiles=("quick",),
    unit=" %",
)


def _claims(split_key: str, split: str, profiles: tuple[str, ...], c3_profiles: tuple[str, ...]):
    return (
        Claim(
            "C1",
            f"Tri-training + DANN beats the DCASE 2019 mean-teacher baseline by ≥ 2 points of event-based "
            f"macro F1 on {split}",
            method=f"{split_key}/tritrain",
            baseline=f"{split_key}/mean-teacher",
            margin=2.0,
            profiles=profiles,
            paper="'a considerable performance improvement over the baseline model' (abstract; no numbers)",
            unit=" points",
            floors=(B1_LEARNED,),
        ),
        Claim(
            "C2",
            "The unlabelled real data help: tri-training + DANN beats the supervised CRNN (S + W) by "
            f"≥ 2 points "
            f"of event-based macro F1 on {split}",
            method=f"{split_key}/tritrain",
            baseline=f"{split_key}/supervised",
            margin=2.0,
            profiles=profiles,
            unit=" points",
            floors=(B1_LEARNED,),
        ),
        Claim(
            "C3",
            "The adversarial branch adds to tri-training: M beats M without D (μ = 0) in event-based "
            f"macro F1 "
            f"on {split} (needs ablations=true)",
            method=f"{split_key}/tritrain",
            baseline=f"{split_key}/tritrain-no-dann",
            margin=0.0,
            strict=True,
            profiles=c3_profiles,
            unit=" points",
            floors=(B1_LEARNED,),
        ),
    )


# quick: the real-like test split (eval/public) of game-events; full: DESED validation, as the paper
CLAIMS = _claims("event_f1", "the real-domain test split", ("quick",), ("quick",)) + _claims(
    "val_event_f1", "the DESED validation set", ("full",), ("full",)
)


def run(config: SedTritrainConfig, ctx: RunContext) -> dict[str, MetricValue]:
    """Train M, B1, B0 (and A1-A3 with ``ablations``) × seeds; evaluate on the real-domain sets."""
    variants = plan_variants(config)  # checks the names before any data is read
    stages = plan_stages(variants, range(config.seed, config.seed + config.seeds))
    data = resolve_data(ctx, config.corpus)
    task = load_task(data.path, config, data.corpus or "desed", skip_bad=ctx.skip_bad)
    if task.missing:
        subsets = sorted({s for s, _ in task.missing})
        path = ctx.run_dir / "missing_files.tsv"
        path.write_text("subset\tfilename\n" + "".join(f"{s}\t{f}\n" for s, f in task.missing))
        ctx.note(f"{len(task.missing)} listed clips have no audio ({', '.join(subsets)}); see {path.name}")
    if task.skipped:
        ctx.note(f"--skip-bad dropped {len(task.skipped)} bad audio files: {'; '.join(task.skipped)}")
    if data.is_corpus:
        ctx.note(
            f"offline corpus {data.corpus}: numbers compare systems within devicelab, not with the paper"
        )
    elif config.frontend != "full":
        ctx.note("real data with the quick front end: not comparable with the DCASE 2019 baseline")
    versions = library_versions()
    ctx.note("metrics: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    ctx.log(
        event="data",
        source=task.source,
        classes=list(task.classes),
        **{s.name: len(s) for s in (task.synthetic, task.synthetic_valid, task.weak, task.unlabeled)},
        validation=len(task.validation),
        test=len(task.test),
    )
    results = run_stages(ctx, stages, train_stage, task, workers=config.workers, threads=config.threads)
    metrics: dict[str, MetricValue] = dict(results.per_seed())
    groups = {v: results.of(v) for v in variants}
    if "supervised" in groups and "domain_gap/supervised" in metrics:
        metrics["domain_gap"] = metrics["domain_gap/supervised"]  # spec §7: B0's synthetic-valid − real-test
    add_tables(ctx, config, variants, metrics, task, versions)
    add_plots(ctx, groups, task, config)
    return metrics


def _export(run_dir: Path, options: Mapping[str, Any]) -> None:
    from devicelab.methods.sed_tritrain.export import export_run

    export_run(run_dir, options)


EXPERIMENT = Experiment(
    name="sed-tritrain",
    paper=PAPER,
    config_cls=SedTritrainConfig,
    run=run,
    claims=CLAIMS,
    corpora=("game-events",),
    docs="docs/methods/sed-tritrain.md",
    headline=("event_f1/tritrain", "event_f1/mean-teacher", "event_f1/supervised", "domain_gap"),
    export=_export,
)
