"""asc-factorized: LMF-CNN vs the DCASE2019 task 1A baseline CNN vs the factorised CE-only CNN, side by side.

Spec ``asc-factorized.md`` §7: models A (baseline), B (factorized), C (lmf) x seeds on the same batches, on
every split of ``config.splits`` (a stage's condition); seen and unseen test accuracy of the last (quick) or
best validation (full) epoch; claims A1-A4. Metric keys ``metric/variant/split``: ``acc_seen/lmf/official``,
``gap/baseline/leave_cities_out`` (``gap`` = unseen minus seen accuracy), ``params/lmf/official``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicelab.core.claims import ITEMS_SUFFIX, Claim, MetricValue
from devicelab.core.config import ConfigError
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.sources import resolve_data
from devicelab.core.stages import StageResults, metric_key, plan_stages, run_stages
from devicelab.methods.asc_factorized.config import AscFactorizedConfig
from devicelab.methods.asc_factorized.data import SceneTask, load_task
from devicelab.methods.asc_factorized.recipe import plan_variants, train_stage
from devicelab.methods.asc_factorized.report import add_plots, add_tables
from devicelab.methods.asc_factorized.sampler import NoCrossEnvironmentPairsError, SceneEnvironmentSampler

PAPER = (
    "Acoustic Scene Classification Based on a Large-margin Factorized CNN "
    "(Cho et al., DCASE 2019 Workshop, arXiv 1910.06784)"
)
PER_SEED_METRICS = (
    "acc_seen",
    "acc_unseen",
    "gap",
    "params",
    "silhouette_city",
    "silhouette_scene",
    "val_acc",
)

# precondition of A2-A4: no verdict is read from a baseline CNN that has not learned the scenes
BASELINE_LEARNED = Claim(
    "F-A",
    "the baseline CNN (model A) reaches 60 % seen-test accuracy on game-scenes (8 scenes, chance 12.5 %)",
    method="acc_seen/baseline/official",
    margin=60.0,
    kind="threshold",
    profiles=("quick",),
    unit=" %",
)


def _a3(split: str, profiles: tuple[str, ...]) -> Claim:
    return Claim(
        "A3",
        "the LMF-CNN's gain over the baseline is at least 1 point larger on unseen than on seen "
        "environments: "
        "[acc_unseen(C) − acc_unseen(A)] − [acc_seen(C) − acc_seen(A)]",
        method=f"gap/lmf/{split}",
        baseline=f"gap/baseline/{split}",
        margin=1.0,
        profiles=profiles,
        paper='"gain higher on unseen data" (abstract)',
        unit=" points",
        floors=(BASELINE_LEARNED,),
    )


def _a4(split: str, profiles: tuple[str, ...]) -> Claim:
    return Claim(
        "A4",
        "the triplet loss brings the unseen gain: LMF-CNN beats the factorised CE-only CNN on unseen "
        "environments by at least 1 point",
        method=f"acc_unseen/lmf/{split}",
        baseline=f"acc_unseen/factorized/{split}",
        margin=1.0,
        profiles=profiles,
        paper="the triplet loss brings the unseen gain (abstract)",
        unit=" points",
        floors=(BASELINE_LEARNED,),
    )


CLAIMS = (
    Claim(
        "A1",
        "the LMF-CNN has at most 0.40 times the baseline CNN's parameters",
        method="params/lmf/official",
        baseline="params/baseline/official",
        margin=0.40,
        kind="ratio",
        direction="less",
        measurement="exact",
        profiles=("smoke", "quick", "full"),
        paper='"one third" (abstract)',
    ),
    Claim(
        "A2",
        "the LMF-CNN beats the baseline CNN on seen environments by at least 1 point",
        method="acc_seen/lmf/official",
        baseline="acc_seen/baseline/official",
        margin=1.0,
        profiles=("quick", "full"),
        paper='"improves the baseline" (abstract)',
        unit=" points",
        floors=(BASELINE_LEARNED,),
    ),
    _a3("official", ("quick",)),
    _a3("leave_cities_out", ("full",)),
    _a4("official", ("quick",)),
    _a4("leave_cities_out", ("full",)),
)


def collect_metrics(results: StageResults, variants: list[str], splits: list[str], task: SceneTask) -> dict:
    """Per-seed lists keyed ``metric/variant/split``, per-clip correctness for the bootstrap, data counts."""
    metrics: dict[str, MetricValue] = dict(results.per_seed(PER_SEED_METRICS))
    for split in splits:
        for variant in variants:
            runs = results.of(variant, split)
            for part in ("seen", "unseen"):
                metrics[metric_key(f"acc_{part}", variant, split) + ITEMS_SUFFIX] = [
                    r[f"{part}_correct"] for r in runs
                ]
        index = task.splits[split]
        for part, idx in index.parts().items():
            metrics[f"clips_{part}/{split}"] = len(idx)
    return metrics


def run(config: AscFactorizedConfig, ctx: RunContext) -> dict[str, MetricValue]:
    """Train A, B, C (and D, ablations) x seeds x splits; report accuracies, claims and diagnostics."""
    variants = plan_variants(config)  # checks the model names before any data is read
    if not config.splits:
        raise ConfigError("splits: at least one of official, leave_cities_out is needed")
    data = resolve_data(ctx, config.corpus)
    splits = list(dict.fromkeys(config.splits))
    if data.is_corpus and "leave_cities_out" in splits:
        splits.remove("leave_cities_out")
        ctx.note(
            f"{data.corpus}: its official split already holds out cities; leave_cities_out is for TAU 2019"
        )
        splits = splits or ["official"]
    task = load_task(
        data.path,
        splits=splits,
        unseen_cities=config.unseen_cities,
        env_key=config.env_key,
        sample_rate_hz=config.sample_rate_hz,
        clip_seconds=config.clip_seconds,
        n_mels=config.n_mels,
        window_ms=config.window_ms,
        hop_ms=config.hop_ms,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        source=data.corpus or "tau2019",
        skip_bad=ctx.skip_bad,
    )
    if task.skipped:
        ctx.note(f"--skip-bad dropped {len(task.skipped)} bad audio files: {'; '.join(task.skipped)}")
    if data.is_corpus:
        ctx.note(f"offline corpus {data.corpus}: numbers compare models within devicelab, not with the paper")
    for split in splits:  # the sampler's checks, once, before any training
        train = task.splits[split].train
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                SceneEnvironmentSampler(
                    task.scenes[train].tolist(),
                    task.envs[train].tolist(),
                    config.scenes_per_batch,
                    config.envs_per_scene,
                    config.clips_per_env,
                    task.scene_names,
                )
            except NoCrossEnvironmentPairsError as e:
                raise ConfigError(f"{data.path}: split {split}, env_key={config.env_key}: {e}") from None
        for w in caught:
            ctx.note(f"split {split}: {w.message}")
        ctx.log(event="data", split=split, **{k: len(v) for k, v in task.splits[split].parts().items()})
    seeds = range(config.seed, config.seed + config.seeds)
    stages = plan_stages(variants, seeds, splits)
    results = run_stages(ctx, stages, train_stage, task, workers=config.workers, threads=config.threads)
    metrics = collect_metrics(results, variants, splits, task)
    add_tables(ctx, config, results, metrics, variants, splits, task)
    add_plots(ctx, config, results, variants, splits, task)
    return metrics


def _export(run_dir: Path, options: Mapping[str, Any]) -> None:
    from devicelab.methods.asc_factorized.export import export_run

    export_run(run_dir, options)


EXPERIMENT = Experiment(
    name="asc-factorized",
    paper=PAPER,
    config_cls=AscFactorizedConfig,
    run=run,
    claims=CLAIMS,
    corpora=("game-scenes",),
    docs="docs/methods/asc-factorized.md",
    headline=(
        "acc_seen/lmf/official",
        "acc_seen/baseline/official",
        "acc_unseen/lmf/official",
        "acc_unseen/baseline/official",
        "acc_unseen/factorized/official",
    ),
    export=_export,
)
