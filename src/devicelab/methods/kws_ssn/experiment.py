"""kws-ssn: BC-ResNet-1 with SubSpectralNorm vs BatchNorm vs width-matched BatchNorm, trained side by side.

Spec ``kws-ssn.md`` §7: three models x seeds on the same data, last-epoch top-1 test accuracy, claims K1-K3.
One ``ctx.stage`` per (variant, seed), each a resumable :func:`devicelab.core.training.fit` with its own
checkpoint; stages run in ``config.jobs`` forked processes of ``config.threads`` torch threads each.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from devicelab.audio.augment import BackgroundNoiseMixer
from devicelab.core.checkpoint import save_model
from devicelab.core.claims import Claim, MetricValue
from devicelab.core.config import ConfigError, to_dict
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.seeding import seed_everything
from devicelab.core.training import fit
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.data import KwsTask, load_task
from devicelab.methods.kws_ssn.recipe import (
    BCRESNET_VARIANTS,
    TrainSpec,
    accuracy,
    bcresnet_spec,
    compute_features,
    honk_spec,
    make_optimizer,
    make_train_epoch,
    per_class_accuracy,
    predict,
)
from devicelab.methods.kws_ssn.report import add_plots, add_tables
from devicelab.nn.bcresnet import count_parameters
from devicelab.nn.honk import HONK_CONFIGS

PAPER = (
    "SubSpectral Normalization for Neural Audio Data Processing (Chang et al., ICASSP 2021, arXiv 2103.13620)"
)

CLAIMS = (
    Claim(
        "K1",
        "BC-ResNet-1 with SSN beats BatchNorm by at least 0.3 points of top-1 test accuracy",
        method="test_acc_ssn",
        baseline="test_acc_bn",
        margin=0.3,
        profiles=("quick", "full"),
        paper="+0.5 (GSC v1), +0.4 (v2); arXiv 2106.04140 Table 2",
        unit=" points",
    ),
    Claim(
        "K2",
        "BC-ResNet-1 with SSN beats a BatchNorm model widened to the same parameter count",
        method="test_acc_ssn",
        baseline="test_acc_bn_wide",
        margin=0.0,
        strict=True,
        profiles=("quick", "full"),
        paper="+0.4 (GSC v1), +0.2 (v2); arXiv 2106.04140 Table 2",
        unit=" points",
    ),
    Claim(
        "K3",
        "res15 with SSN (S=4, affine sub) beats res15 with BatchNorm on GSC v1 MFCC-40 by at least 0.5 "
        "points",
        method="test_acc_res15_ssn",
        baseline="test_acc_res15_bn",
        margin=0.5,
        profiles=("full",),
        paper="about 1 % [summary]",
        unit=" points",
    ),
)


@dataclass(frozen=True)
class Job:
    """One training run: a stage of the experiment."""

    name: str  # stage and checkpoint name, e.g. "ssn-seed1"
    family: str  # "bcresnet" or a honk model ("res15", "res8")
    variant: str  # bcresnet variant, or "ssn" / "bn" for honk models
    seed: int
    groups: int = 0  # honk SSN groups

    def metric_key(self) -> str:
        """Key part of this run's metrics: ``ssn``, ``bn_wide``, ``res15_ssn``, ``res15_ssn_s8``."""
        base = self.variant.replace("-", "_")
        return (
            base
            if self.family == "bcresnet"
            else f"{self.family}_{base}" + (f"_s{self.groups}" if self.groups else "")
        )


def plan_jobs(config: KwsSsnConfig) -> list[Job]:
    """Every (model, seed) to train, seed-major so that an interrupted run holds complete comparisons."""
    for variant in [*config.variants, *config.ablations]:
        if variant not in BCRESNET_VARIANTS:
            raise ConfigError(
                f"variants/ablations: unknown variant {variant!r}; valid: {', '.join(BCRESNET_VARIANTS)}"
            )
    for model in config.honk_models:
        if model not in HONK_CONFIGS:
            raise ConfigError(f"honk_models: unknown model {model!r}; valid: {', '.join(HONK_CONFIGS)}")
    jobs = []
    for k in range(config.seeds):
        seed = config.seed + k
        for variant in [*config.variants, *config.ablations]:
            jobs.append(Job(f"{variant}-seed{seed}", "bcresnet", variant, seed))
        for model in config.honk_models:
            jobs.append(Job(f"{model}-ssn-seed{seed}", model, "ssn", seed))
            jobs.append(Job(f"{model}-bn-seed{seed}", model, "bn", seed))
            for s in config.honk_s_sweep:
                if s != config.honk_ssn_groups:
                    jobs.append(Job(f"{model}-ssn-s{s}-seed{seed}", model, "ssn", seed, groups=s))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ConfigError(f"variants repeat: {', '.join(names)}")
    return jobs


def _train_spec(config: KwsSsnConfig, job: Job) -> TrainSpec:
    if job.family == "bcresnet":
        return bcresnet_spec(config, job.variant)
    return honk_spec(config, job.family, job.variant, job.groups or config.honk_ssn_groups)


def train_and_evaluate(config: KwsSsnConfig, ctx: RunContext, task: KwsTask, job: Job) -> dict[str, Any]:
    """Train one model with the recipe, then evaluate it on every set; returns the stage's JSON result."""
    torch.set_num_threads(config.threads)
    seed_everything(job.seed)
    spec = _train_spec(config, job)
    optimizer = make_optimizer(spec.model, config, spec.weight_decay)
    mixer = BackgroundNoiseMixer(
        task.noises,
        noise_prob=config.noise_prob,
        max_amplitude=config.noise_amplitude,
        silence_max_amplitude=config.silence_noise_amplitude,
        max_shift_ms=config.shift_ms,
    )
    train_epoch = make_train_epoch(spec, optimizer, task.train.waves, task.train.labels, mixer, job.seed)
    val_features = compute_features(spec.frontend, task.validation.waves)

    def epoch_with_validation(epoch: int) -> dict[str, float]:
        record = train_epoch(epoch)
        record["val_acc"] = accuracy(predict(spec.model, val_features), task.validation.labels)
        return record

    history = fit(
        spec.model,
        optimizer,
        epoch_with_validation,
        spec.epochs,
        checkpoint=ctx.checkpoint(job.name),
        log=ctx.log,
        desc=job.name,
    )
    test_pred = predict(spec.model, compute_features(spec.frontend, task.test.waves))
    result: dict[str, Any] = {
        "name": job.name,
        "family": job.family,
        "variant": job.variant,
        "seed": job.seed,
        "groups": job.groups,
        "params": count_parameters(spec.model),
        "test_acc": accuracy(test_pred, task.test.labels),
        "val_acc": history[-1]["val_acc"],
        "per_class_acc": per_class_accuracy(test_pred, task.test.labels),
        "history": history,
    }
    if task.channel is not None:
        result["channel_acc"] = accuracy(
            predict(spec.model, compute_features(spec.frontend, task.channel.waves)), task.channel.labels
        )
    if task.real is not None:
        real_pred = predict(spec.model, compute_features(spec.frontend, task.real.waves))
        result["real_unknown_frac"] = float((real_pred == 1).float().mean())
    save_model(
        ctx.run_dir / "models" / job.name,
        spec.model,
        {
            "family": job.family,
            "variant": job.variant,
            "seed": job.seed,
            "groups": job.groups,
            "test_acc": result["test_acc"],
            "config": to_dict(config),
        },
    )
    return result


# forked workers inherit the loaded task through this module-level slot (set only around the pool)
_WORKER_STATE: tuple[KwsSsnConfig, RunContext, KwsTask] | None = None


def _worker_job(job: Job) -> dict[str, Any]:
    assert _WORKER_STATE is not None
    config, ctx, task = _WORKER_STATE
    return train_and_evaluate(config, ctx, task, job)


def run_jobs(config: KwsSsnConfig, ctx: RunContext, task: KwsTask, jobs: list[Job]) -> dict[str, dict]:
    """Run every job as a memoised stage; with ``config.jobs > 1`` unfinished ones train in parallel."""
    global _WORKER_STATE
    pending = [j for j in jobs if not ctx.has_stage(j.name)]
    if config.jobs <= 1 or len(pending) <= 1:
        return {j.name: ctx.stage(j.name, lambda j=j: train_and_evaluate(config, ctx, task, j)) for j in jobs}
    _WORKER_STATE = (config, ctx, task)
    try:
        with cf.ProcessPoolExecutor(
            max_workers=config.jobs, mp_context=multiprocessing.get_context("fork")
        ) as pool:
            futures = {j.name: pool.submit(_worker_job, j) for j in pending}
            return {j.name: ctx.stage(j.name, lambda j=j: futures[j.name].result()) for j in jobs}
    finally:
        _WORKER_STATE = None


def _resolve_data(config: KwsSsnConfig, ctx: RunContext) -> tuple[Path, Path | None, str]:
    """(Speech Commands root, synth-commands folder or None, source name) from ``--data`` or the corpus."""
    if ctx.data_path is not None:
        data = Path(ctx.data_path)
        if (data / "gsc").is_dir() and (data / "manifest.json").is_file():  # a built synth-commands folder
            return data / "gsc", data, config.corpus
        return data, None, "gsc"
    corpus = ctx.corpus(config.corpus)
    return corpus / "gsc", corpus, config.corpus


def model_key(job: Job, task: KwsTask) -> str:
    """Metric-key suffix of a job's model; honk models off real GSC v1 get the data set appended, since K3
    is defined on GSC v1 only (``res15_ssn_v2``, ``res15_ssn_synth_commands``)."""
    key = job.metric_key()
    if job.family != "bcresnet" and not (task.source == "gsc" and task.gsc_version == 1):
        key += f"_v{task.gsc_version}" if task.source == "gsc" else "_" + task.source.replace("-", "_")
    return key


def collect_metrics(
    results: Mapping[str, dict], groups: Mapping[str, list[Job]], task: KwsTask
) -> dict[str, MetricValue]:
    """Per-seed lists per model: test/val accuracy, channel accuracy, real digits as _unknown_; parameters."""
    metrics: dict[str, MetricValue] = {
        "gsc_version": task.gsc_version,
        "train_clips": len(task.train),
        "test_clips": len(task.test),
    }
    for key, runs in groups.items():
        metrics[f"params_{key}"] = results[runs[0].name]["params"]
        for metric in ("test_acc", "val_acc", "channel_acc", "real_unknown_frac"):
            if metric in results[runs[0].name]:
                metrics[f"{metric}_{key}"] = [results[j.name][metric] for j in runs]
    return metrics


def run(config: KwsSsnConfig, ctx: RunContext) -> dict[str, MetricValue]:
    """Train SSN, BN and BN-wide (and ablations, res15 in full) x seeds; report accuracy and diagnostics."""
    torch.set_num_threads(config.threads)
    jobs = plan_jobs(config)  # checks the variant names before any data is read
    root, extra_root, source = _resolve_data(config, ctx)
    task = load_task(
        root,
        caps=config.class_caps,
        seed=config.seed,
        silence_noise_amplitude=config.silence_noise_amplitude,
        max_train_clips=config.max_train_clips,
        test_set=config.test_set,
        extra_root=extra_root,
        source=source,
    )
    if source != "gsc":
        ctx.note(f"offline corpus {source}: numbers compare models within devicelab, not with the papers")
    if task.test_kind == "list test split":
        ctx.note(
            "list test split (testing_list.txt), not the official test set: not comparable with the papers"
        )
    ctx.log(
        event="data",
        source=source,
        gsc_version=task.gsc_version,
        train=len(task.train),
        validation=len(task.validation),
        test=len(task.test),
        speakers=task.speakers,
    )
    results = run_jobs(config, ctx, task, jobs)
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(model_key(job, task), []).append(job)
    metrics = collect_metrics(results, groups, task)
    add_tables(ctx, config, results, groups, metrics, task)
    add_plots(ctx, results, groups)
    return metrics


def _export(run_dir: Path, options: Mapping[str, Any]) -> None:
    from devicelab.methods.kws_ssn.export import export_run

    export_run(run_dir, options)


EXPERIMENT = Experiment(
    name="kws-ssn",
    paper=PAPER,
    config_cls=KwsSsnConfig,
    run=run,
    claims=CLAIMS,
    corpora=("synth-commands",),
    docs="docs/methods/kws-ssn.md",
    headline=("test_acc_ssn", "test_acc_bn", "test_acc_bn_wide"),
    export=_export,
)
