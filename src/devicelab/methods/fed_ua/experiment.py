"""The ``fed-ua`` experiment: FedUA against naive positive-only FedAvg, FedAwS and centralised softmax on
``synth-speakers`` (quick) or VoxCeleb1 given with ``--data`` (full), spec §7.

Every (variant, seed) is one stage of :mod:`devicelab.core.stages`. Claim-bearing variants (FedUA, naive,
FedAwS, centralised softmax: the floor) run with every claim seed; the code-length curve and FedUV's BCH
codewords run with ``report_seeds``. The federated variants use the loop engine; FedUA is repeated for
``flower_check_rounds`` rounds under Flower and the largest array difference goes into ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicelab.core.claims import ITEMS_SUFFIX, Claim
from devicelab.core.config import ConfigError
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.sources import resolve_data
from devicelab.core.stages import Stage, plan_stages, run_stages
from devicelab.data.datasets.voxceleb import VoxCelebError
from devicelab.methods.fed_ua.codes import BCHCode
from devicelab.methods.fed_ua.config import CLAIM_VARIANTS, FedUAConfig
from devicelab.methods.fed_ua.data import FeatureConfig, SpeakerTask, load_vox_task, synthetic_task
from devicelab.methods.fed_ua.recipe import check_variant, flower_check_stage, train_stage
from devicelab.methods.fed_ua.report import code_length_plot, comparison_table, privacy_table

PAPER = (
    "Federated Learning of User Authentication Models (Hosseini et al., arXiv 2007.04618, 2020); "
    "FedUV (ICML 2021, arXiv 2104.08776) as the BCH option"
)
PER_USER = ("fpr_unseen_per_user", "tpr_per_user")


def report_variants(cfg: FedUAConfig) -> list[str]:
    """The reported-only variants: the code-length curve and FedUV-style BCH at matched c."""
    out = [f"fedua-c{c}" for c in cfg.code_lengths if c != cfg.code_length]
    if cfg.report_bch:
        out.append(f"feduv-bch{cfg.bch_n}")
    for v in out:
        check_variant(v)
    return out


def check_config(cfg: FedUAConfig) -> None:
    """Settings that only make sense together, checked before any data is read (one-line errors)."""
    if cfg.codebook == "bch" or cfg.report_bch:
        try:
            BCHCode(cfg.bch_n, cfg.bch_k)
        except ValueError as e:
            raise ConfigError(f"bch_n={cfg.bch_n}, bch_k={cfg.bch_k}: {e}") from None
    if cfg.late_users and not 1 <= cfg.join_round <= cfg.rounds:
        raise ConfigError(
            f"join_round={cfg.join_round}: late users need 1 ≤ join_round ≤ rounds={cfg.rounds}"
        )
    if not cfg.seeds:
        raise ConfigError("seeds: empty; the claims need seeds [0, 1, 2]")


def plan(cfg: FedUAConfig) -> list[Stage]:
    """Claim variants with every claim seed, then the reported-only variants with ``report_seeds``."""
    check_config(cfg)
    return plan_stages(CLAIM_VARIANTS, cfg.seeds) + plan_stages(report_variants(cfg), cfg.report_seeds)


def load_task(cfg: FedUAConfig, ctx: RunContext) -> SpeakerTask:
    """Generated feature speakers (``corpus="synthetic"``), the built corpus, or VoxCeleb1 from ``--data``."""
    if cfg.corpus == "synthetic" and ctx.data_path is None:
        return synthetic_task(cfg.original_users, cfg.late_users, cfg.unseen_users or 8)
    data = resolve_data(ctx, cfg.corpus)
    try:
        return load_vox_task(
            data.path,
            cfg.original_users,
            cfg.late_users,
            cfg.unseen_users,
            cfg.unseen_from_dev,
            cfg.warmup_sessions,
            cfg.test_sessions,
            FeatureConfig(n_mels=cfg.n_mels, crop_s=cfg.crop_s),
            source=data.corpus or "voxceleb1",
        )
    except VoxCelebError as e:  # a one-line error naming the file or speaker
        raise ConfigError(str(e)) from None


def run(cfg: FedUAConfig, ctx: RunContext) -> dict[str, Any]:
    """Train every variant x seed, evaluate at the users' own thresholds, cross-check the engines."""
    stages = plan(cfg)  # checks the variants before any data is read
    task = load_task(cfg, ctx)
    for note in task.notes:
        ctx.note(note)
    ctx.log(event="data", source=task.source, users=len(task.users), unseen=len(task.unseen),
            late=task.late_users)  # fmt: skip
    done = run_stages(ctx, stages, train_stage, task, workers=cfg.workers, threads=cfg.client_threads)
    metrics: dict[str, Any] = {}
    for stage in stages:
        for key, value in done[stage.name].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics.setdefault(stage.key(key), []).append(float(value))
            elif key in PER_USER:
                metrics.setdefault(f"{stage.key(key.removesuffix('_per_user'))}{ITEMS_SUFFIX}", []).append(
                    value
                )
    metrics["target_tpr"] = [cfg.q] * len(cfg.seeds)
    variants = list(dict.fromkeys(s.variant for s in stages))
    ctx.add_table(comparison_table(metrics, variants))
    if "recovery_single/fedua" in metrics:
        ctx.add_table(privacy_table(metrics))
        ctx.note(
            "codeword recovery (no claim): the server reads v_u from one client's unmasked output-layer "
            "update (rank one, left factor v_u); the 1.42 Message API has no secure aggregation (spec §2.1)"
        )
    code_length_plot(ctx, metrics, list(cfg.code_lengths), cfg.code_length)
    if cfg.flower_check_rounds > 0:
        check = Stage("flower-check", cfg.seeds[0])
        metrics.update(run_stages(ctx, [check], flower_check_stage, task, workers=1)[check.name])
    ctx.note("FedAwS replies carry the user's class embedding: it runs privacy-exempt (shares embeddings)")
    if task.source != "voxceleb1":
        ctx.note(f"{task.source}: numbers compare methods within devicelab, not with the papers")
    return metrics


# Preconditions of every claim that needs a learned model (issue #21): registered before any run.
CENTRAL_LEARNED = Claim(
    "F-central",
    "the centralised softmax baseline reaches EER ≤ 10 % on seen users",
    method="eer_seen/central",
    margin=10.0,
    kind="threshold",
    direction="less",
    profiles=("quick", "full"),
    unit=" %",
)
TPR_ON_TARGET = Claim(
    "F-tpr",
    "FedUA's mean test TPR lies within 0.1 of q (spec §7 sanity check)",
    method="tpr/fedua",
    baseline="target_tpr",
    margin=0.1,
    kind="equivalence",
    profiles=("quick", "full"),
)
FLOORS = (CENTRAL_LEARNED, TPR_ON_TARGET)


def _claims() -> tuple[Claim, ...]:
    q = dict(profiles=("smoke", "quick"), paper="n/a (FedUA tables not available)", floors=FLOORS)
    f = dict(profiles=("full",), paper="n/a (FedUA tables not available)", floors=FLOORS)
    return (
        Claim("Q1", "rejects unseen users where naive FL cannot: FPR_unseen at τ_u (q = 0.9), "
              "FedUA − naive ≤ −0.30", "fpr_unseen/fedua", "fpr_unseen/naive", 0.30, direction="less", **q),
        Claim("Q2", "comparable to the server-side spread-out approach without sharing embeddings: "
              "EER_unseen, FedUA − FedAwS ≤ +3.0 pt", "eer_unseen/fedua", "eer_unseen/fedaws", -3.0,
              direction="less", unit=" pt", **q),
        Claim("Q3", "late users join with no output-layer change: FPR_unseen at τ_u, FedUA late − FedUA "
              "original ≤ +0.05", "fpr_unseen_late/fedua", "fpr_unseen_orig/fedua", -0.05, direction="less",
              **q),
        Claim("F1", "VoxCeleb1: FPR_unseen at τ_u (q = 0.9), FedUA − naive ≤ −0.30", "fpr_unseen/fedua",
              "fpr_unseen/naive", 0.30, direction="less", **f),
        Claim("F2", "VoxCeleb1: EER_unseen, FedUA − FedAwS ≤ +3.0 pt", "eer_unseen/fedua",
              "eer_unseen/fedaws", -3.0, direction="less", unit=" pt", **f),
        Claim("F3", "VoxCeleb1: EER_unseen, FedUA − centralised softmax ≤ +5.0 pt", "eer_unseen/fedua",
              "eer_unseen/central", -5.0, direction="less", unit=" pt", **f),
        Claim("F4", "VoxCeleb1: FPR_unseen at τ_u, FedUA late − FedUA original ≤ +0.05",
              "fpr_unseen_late/fedua", "fpr_unseen_orig/fedua", -0.05, direction="less", **f),
    )  # fmt: skip


CLAIMS = _claims()


def _export(run_dir: Path, options: Mapping[str, Any]) -> None:
    from devicelab.methods.fed_ua.export import export_run

    export_run(run_dir, options)


EXPERIMENT = Experiment(
    name="fed-ua",
    paper=PAPER,
    config_cls=FedUAConfig,
    run=run,
    claims=CLAIMS,
    corpora=("synth-speakers",),
    docs="docs/methods/fed-ua.md",
    headline=(
        "fpr_unseen/fedua",
        "fpr_unseen/naive",
        "eer_unseen/fedua",
        "eer_unseen/fedaws",
        "eer_seen/central",
        "tpr/fedua",
    ),
    export=_export,
)
