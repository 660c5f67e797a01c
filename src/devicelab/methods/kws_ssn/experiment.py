"""kws-ssn: BC-ResNet-1 with SubSpectralNorm vs BatchNorm vs width-matched BatchNorm, trained side by side.

Spec ``kws-ssn.md`` §7: three models x seeds on the same data, last-epoch top-1 test accuracy, claims K1-K3.
One stage per (model, seed) (:mod:`devicelab.core.stages`), each a resumable
:func:`devicelab.core.training.fit` with its own checkpoint, in ``config.workers`` processes of
``config.threads`` torch threads each. ``metrics.json`` keeps the keys the claims are registered with:
``test_acc_ssn``, ``params_bn_wide``...
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicelab.core.claims import ITEMS_SUFFIX, Claim, MetricValue
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.sources import resolve_data
from devicelab.core.stages import StageResults, plan_stages, run_stages
from devicelab.methods.kws_ssn.config import KwsSsnConfig
from devicelab.methods.kws_ssn.data import KwsTask, load_config_task
from devicelab.methods.kws_ssn.recipe import ModelChoice, cache_eval_features, plan_models, train_stage
from devicelab.methods.kws_ssn.report import add_plots, add_tables

PAPER = (
    "SubSpectral Normalization for Neural Audio Data Processing (Chang et al., ICASSP 2021, arXiv 2103.13620)"
)

# precondition of K1 and K2: no verdict is read from a BatchNorm model that has not learned
BN_LEARNED = Claim(
    "F-bn",
    "BC-ResNet-1 BatchNorm reaches 80 % top-1 on the test split",
    method="test_acc_bn",
    margin=80.0,
    kind="threshold",
    profiles=("quick",),
    unit=" %",
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
        floors=(BN_LEARNED,),
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
        floors=(BN_LEARNED,),
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


def model_key(model: ModelChoice, task: KwsTask) -> str:
    """Metric-key suffix of a model; res8/res15 off real GSC v1 get the data set appended, since K3 is defined
    on GSC v1 only (``res15_ssn_v2``, ``res15_ssn_synth_commands``)."""
    key = model.metric_key()
    if model.family != "bcresnet" and not (task.source == "gsc" and task.gsc_version == 1):
        key += f"_v{task.gsc_version}" if task.source == "gsc" else "_" + task.source.replace("-", "_")
    return key


def collect_metrics(groups: Mapping[str, list[dict]], task: KwsTask) -> dict[str, MetricValue]:
    """Per-seed lists per model: test/val accuracy, channel accuracy, real digits as _unknown_; parameters."""
    metrics: dict[str, MetricValue] = {
        "gsc_version": task.gsc_version,
        "train_clips": len(task.train),
        "test_clips": len(task.test),
    }
    for key, runs in groups.items():
        metrics[f"params_{key}"] = runs[0]["params"]
        for metric in ("test_acc", "val_acc", "channel_acc", "real_unknown_frac"):
            if metric in runs[0]:
                metrics[f"{metric}_{key}"] = [r[metric] for r in runs]
        if "test_correct" in runs[0]:  # per-clip scores: a paired bootstrap interval over test clips
            metrics[f"test_acc_{key}{ITEMS_SUFFIX}"] = [r["test_correct"] for r in runs]
    return metrics


def run(config: KwsSsnConfig, ctx: RunContext) -> dict[str, MetricValue]:
    """Train SSN, BN and BN-wide (and ablations, res15 in full) x seeds; report accuracy and diagnostics."""
    models = plan_models(config)  # checks the model names before any data is read
    stages = plan_stages([m.variant for m in models], range(config.seed, config.seed + config.seeds))
    data = resolve_data(ctx, config.corpus)
    task = load_config_task(config, data, skip_bad=ctx.skip_bad)
    if task.skipped:
        ctx.note(f"--skip-bad dropped {len(task.skipped)} bad audio files: {'; '.join(task.skipped)}")
    if data.is_corpus:
        ctx.note(
            f"offline corpus {data.corpus}: numbers compare models within devicelab, not with the papers"
        )
    if task.test_kind == "list test split":
        ctx.note(
            "list test split (testing_list.txt), not the official test set: not comparable with the papers"
        )
    ctx.log(
        event="data",
        source=task.source,
        gsc_version=task.gsc_version,
        train=len(task.train),
        validation=len(task.validation),
        test=len(task.test),
        speakers=task.speakers,
    )
    cache_eval_features(task, config)  # once, before the stages fork
    results: StageResults = run_stages(
        ctx, stages, train_stage, task, workers=config.workers, threads=config.threads
    )
    groups = {model_key(m, task): results.of(m.variant) for m in models}
    metrics = collect_metrics(groups, task)
    add_tables(ctx, config, groups, metrics, task)
    add_plots(ctx, groups)
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
