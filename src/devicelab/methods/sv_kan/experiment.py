"""sv-kan: ResNet speaker embeddings with a triplet loss, with and without the keyword adversary, against GE2E
and GMM-UBM, trained side by side (spec ``sv-kan.md`` §7).

One stage per (network variant, seed) (:mod:`devicelab.core.stages`), each a resumable
:func:`devicelab.core.training.fit`; GMM-UBM is trained once. Metric keys follow ``metric/variant``:
``eer_avg/kan``, ``eer_gap/base``, ``probe_acc/kan``...
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
from devicelab.methods.sv_kan.config import SvKanConfig
from devicelab.methods.sv_kan.data import SvTask, load_corpus, load_librispeech, load_voxceleb
from devicelab.methods.sv_kan.recipe import NETWORK_VARIANTS, check_config, train_stage
from devicelab.methods.sv_kan.report import add_plots, add_tables

PAPER = (
    "An End-to-End Text-independent Speaker Verification Framework with a Keyword Adversarial Network "
    "(Yun et al., Interspeech 2019, arXiv 1908.02612)"
)

# precondition of every claim on learned models: the plain SE network verifies speakers at all (quick)
BASE_LEARNED = Claim(
    "F-base",
    "The plain SE network (Base) reaches an average EER ≤ 10 % on synth-speakers quick trials",
    method="eer_avg/base",
    margin=10.0,
    direction="less",
    kind="threshold",
    profiles=("quick",),
    unit=" %",
)
# precondition of S2: the data make Base text-dependent; otherwise S2 is not evaluable
TEXT_DEPENDENT = Claim(
    "F-gap",
    "Base's NTK − TK EER gap is at least 1.0 point (else S2 is not evaluable: no text dependence in "
    "the data)",
    method="eer_gap/base",
    margin=1.0,
    kind="threshold",
    profiles=("quick", "full"),
    unit=" points",
)

CLAIMS = (
    Claim(
        "S1",
        "KAN's average EER (TK and NTK, n_enrol 1) is at most 0.90 × Base's",
        method="eer_avg/kan",
        baseline="eer_avg/base",
        margin=0.9,
        direction="less",
        kind="ratio",
        profiles=("quick", "full"),
        paper="3.36 vs 6.34 % Avg EER (group 2) [summary]",
        floors=(BASE_LEARNED,),
    ),
    Claim(
        "S2",
        "KAN's NTK − TK EER gap is at most 0.80 × Base's",
        method="eer_gap/kan",
        baseline="eer_gap/base",
        margin=0.8,
        direction="less",
        kind="ratio",
        profiles=("quick", "full"),
        paper="2.80 vs 7.23 points (group 2) [summary]",
        floors=(BASE_LEARNED, TEXT_DEPENDENT),
    ),
    Claim(
        "S3",
        "A keyword probe on frozen KAN embeddings is at least 5 points less accurate than on Base's "
        "(project check)",
        method="probe_acc/kan",
        baseline="probe_acc/base",
        margin=5.0,
        direction="less",
        profiles=("quick", "full"),
        paper="– (project check)",
        unit=" points",
        floors=(BASE_LEARNED,),
    ),
    Claim(
        "S4",
        "KAN's average EER is at most 0.90 × GE2E's",
        method="eer_avg/kan",
        baseline="eer_avg/ge2e",
        margin=0.9,
        direction="less",
        kind="ratio",
        profiles=("full",),
        paper="3.36 vs 5.29 % Avg EER (group 2) [summary]",
        floors=(BASE_LEARNED,),
    ),
)


def load_task(config: SvKanConfig, ctx: RunContext) -> SvTask:
    """The corpus (default), or the LibriSpeech or VoxCeleb1 root given with ``--data``."""
    data = resolve_data(ctx, config.corpus)
    if data.is_corpus:
        return load_corpus(
            data.path,
            n_mels=config.n_mels,
            seed=config.seed,
            max_train_utterances=config.max_train_utterances,
            allow_balanced=config.allow_balanced,
            source=data.corpus or config.corpus,
            skip_bad=ctx.skip_bad,
        )
    if (data.path / "wav").is_dir() and not any(data.path.glob("*/*/*/*.trans.txt")):
        return load_voxceleb(
            data.path,
            n_mels=config.n_mels,
            seed=config.seed,
            max_train_utterances=config.max_train_utterances,
        )
    return load_librispeech(
        data.path,
        train_subsets=config.train_subsets,
        test_subset=config.test_subset,
        keyword_source=config.keyword_source,
        vocabulary_size=config.vocabulary_size,
        min_word_letters=config.min_word_letters,
        crop_s=2.0,
        n_mels=config.n_mels,
        seed=config.seed,
        max_train_utterances=config.max_train_utterances,
    )


def run(config: SvKanConfig, ctx: RunContext) -> dict[str, MetricValue]:
    check_config(config)
    task = load_task(config, ctx)
    variants = list(config.variants)
    if not task.keywords and "kan" in variants:
        variants.remove("kan")
        ctx.note(
            f"no keyword labels ({task.source}): KAN not trained; TK/NTK claims not evaluated: no alignments"
        )
    if task.skipped:
        ctx.note(f"--skip-bad dropped {len(task.skipped)} bad audio files: {'; '.join(task.skipped)}")
    if task.source not in ("librispeech", "voxceleb1"):
        ctx.note(
            f"offline corpus {task.source}: synthetic voices of a few people; EERs compare models within "
            "devicelab, not with the paper"
        )
    ctx.log(
        event="data",
        source=task.source,
        train=len(task.train),
        test=len(task.test),
        real=len(task.real) if task.real else 0,
        keywords=len(task.keywords),
        confound=task.confound,
        preferred_fraction=task.preferred_fraction,
    )
    networks = [v for v in variants if v in NETWORK_VARIANTS]
    stages = plan_stages(networks, range(config.seed, config.seed + config.seeds))
    if "gmm-ubm" in variants:
        stages += plan_stages(["gmm-ubm"], [config.seed])
    results = run_stages(ctx, stages, train_stage, task, workers=config.workers, threads=config.threads)
    metrics: dict[str, MetricValue] = dict(results.per_seed())
    metrics["train_utterances"] = len(task.train)
    metrics["test_utterances"] = len(task.test)
    if task.confound is not None:
        metrics["corpus_confound"] = float(task.confound)
    if task.preferred_fraction is not None:
        metrics["train_preferred_fraction"] = float(task.preferred_fraction)
    gap = metrics.get("eer_gap/base")
    if isinstance(gap, list) and gap and sum(gap) / len(gap) < TEXT_DEPENDENT.margin:
        ctx.note(
            f"S2 not evaluable: no text dependence in the data (Base's NTK − TK gap "
            f"{sum(gap) / len(gap):.2f} < {TEXT_DEPENDENT.margin:g} point)"
        )
    groups = {v: results.of(v) for v in variants}
    add_tables(ctx, config, variants, metrics, task)
    add_plots(ctx, groups)
    return metrics


def _export(run_dir: Path, options: Mapping[str, Any]) -> None:
    from devicelab.methods.sv_kan.export import export_run

    export_run(run_dir, options)


EXPERIMENT = Experiment(
    name="sv-kan",
    paper=PAPER,
    config_cls=SvKanConfig,
    run=run,
    claims=CLAIMS,
    corpora=("synth-speakers",),
    docs="docs/methods/sv-kan.md",
    headline=(
        "eer_avg/kan",
        "eer_avg/base",
        "eer_gap/kan",
        "eer_gap/base",
        "probe_acc/kan",
        "probe_acc/base",
    ),
    export=_export,
)
