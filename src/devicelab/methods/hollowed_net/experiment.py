"""``hollowed-net``: Hollowed Net vs LoRA fine-tuning — memory accounting and fidelity, side by side.

Spec ``specs/hollowed-net.md``. One run measures

- memory (§6): the accounted training bytes of one step (W + G + O + A_saved + I) of ``lora`` r = 1/4/16,
  ``full-ft``, ``lora-kept`` m and ``hollowed`` over the m sweep, against the accounted inference bytes of
  the full U-Net (W_all + peak live activations of one no-grad forward), at each benchmark latent size;
- transfer (§5.3): adapter transfer, fused vs unfused outputs, parameter count, inference bytes after fuse;
- fidelity (§10.1): per subject × seed × variant, fine-tune, transfer back, sample the evaluation prompts,
  score DINO-, CLIP-I- and CLIP-T-proxies, prompt-attribute accuracy, denoising MSE and prior drift.

Claims H1-H5 are registered exactly as spec §12 states them.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from devicelab.core.claims import Claim
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import plan_stages, run_stages
from devicelab.methods.hollowed_net.artefacts import resolve_evaluators, resolve_model
from devicelab.methods.hollowed_net.config import HollowedNetConfig, validate, variant_key
from devicelab.methods.hollowed_net.data import read_captioned, read_subjects, resolve_corpus
from devicelab.methods.hollowed_net.evaluators import FidelityScorer
from devicelab.methods.hollowed_net.recipe import (
    FidelityTask,
    memory_section,
    quality_stage,
    transfer_section,
)
from devicelab.methods.hollowed_net.report import fidelity_metrics, memory_table, quality_table

PAPER = "Hollowed Net for On-Device Personalization of Text-to-Image Diffusion Models"


# --------------------------------------------------------------------------------------------------------
# run


def run(config: HollowedNetConfig, ctx: RunContext) -> dict[str, Any]:
    """Stages ``memory`` and ``transfer``, then one fidelity stage per (variant, subject, seed) in parallel
    workers; metrics keep the names the claims use (``dino_hollowed_m6``: mean over subjects, per seed)."""
    validate(config)
    torch.set_num_threads(config.threads)
    t_start = time.perf_counter()
    corpus = resolve_corpus(config, ctx)
    evaluators = resolve_evaluators(config, ctx, corpus)
    model_dir = resolve_model(config, ctx, corpus, evaluators)
    ctx.note(f"base model: {model_dir}")
    manifest_path = model_dir / "manifest.json"
    if manifest_path.is_file():
        import json

        built = json.loads(manifest_path.read_text())
        ctx.note(
            f"tiny-sd one-time build: {built.get('build_seconds')} s, gate {built.get('gate')}, "
            f"passed: {built.get('gate_passed')}"
        )
    metrics: dict[str, Any] = {}

    # memory ------------------------------------------------------------------------------------------------
    mem = ctx.stage("memory", lambda: memory_section(config, ctx, model_dir))
    h1_hw = max(config.memory_latents)
    infer = mem[f"infer_{h1_hw}"]["total"]
    metrics["mem_infer_bytes"] = float(infer)
    for key, acc in mem.items():
        if key.startswith(f"train_{h1_hw}_"):
            metrics[f"mem_train_bytes_{variant_key(key.removeprefix(f'train_{h1_hw}_'))}"] = float(
                acc["total"]
            )
    sweep = [mem[f"train_{h1_hw}_hollowed-m{m}"]["total"] for m in sorted(config.memory_depths)]
    metrics["mem_train_max_consecutive_ratio"] = max((b / a for a, b in zip(sweep, sweep[1:])), default=1.0)
    ctx.add_table(memory_table(mem["rows"]))

    # transfer ----------------------------------------------------------------------------------------------
    metrics.update(ctx.stage("transfer", lambda: transfer_section(config, model_dir)))

    # fidelity ----------------------------------------------------------------------------------------------
    subjects_root = ctx.data_path if (ctx.data_path is not None and corpus is None) else corpus / "subjects"
    subjects = read_subjects(subjects_root)[: config.subjects]
    scorer = FidelityScorer(evaluators) if evaluators is not None else None
    drift_prompts = []
    if corpus is not None and config.eval.drift_prompts:
        drift_prompts = [r.text for r in read_captioned(corpus / "base" / "val")[: config.eval.drift_prompts]]
    subject_ids = [s.subject_id for s in subjects]
    task = FidelityTask(model_dir, dict(zip(subject_ids, subjects)), scorer, drift_prompts)
    stages = plan_stages(config.quality_variants, range(config.seed, config.seed + config.seeds), subject_ids)
    results = run_stages(ctx, stages, quality_stage, task, workers=config.workers, threads=config.threads)
    seed_means = fidelity_metrics(config, results, subject_ids)
    metrics.update(seed_means)
    ctx.add_table(quality_table(config, seed_means))
    ctx.note(f"wall time {time.perf_counter() - t_start:.0f} s (this invocation)")
    return metrics


CLAIMS = (
    Claim(
        "H1a",
        "training ≈ inference: peak ratio of hollowed m = 6",
        method="mem_train_bytes_hollowed_m6",
        baseline="mem_infer_bytes",
        margin=1.10,
        direction="less",
        kind="ratio",
        paper="abstract",
    ),
    Claim(
        "H1b",
        "the problem exists in this regime: peak ratio of lora r = 4, all layers",
        method="mem_train_bytes_lora_r4",
        baseline="mem_infer_bytes",
        margin=1.50,
        direction="greater",
        kind="ratio",
        paper="abstract",
    ),
    Claim(
        "H1c",
        "memory falls with depth: accounted training bytes non-increasing over m = 0..9 "
        "(largest consecutive ratio ≤ 1)",
        method="mem_train_max_consecutive_ratio",
        baseline="",
        margin=1.0,
        direction="less",
        kind="threshold",
        profiles=("smoke", "quick", "full"),
        paper="[summary]",
    ),
    Claim(
        "H2-dino",
        "subject fidelity kept: hollowed m = 6 − lora r = 4 on DINO(-proxy)",
        method="dino_hollowed_m6",
        baseline="dino_lora_r4",
        margin=-0.02,
        paper="abstract",
    ),
    Claim(
        "H2-clip-i",
        "subject fidelity kept: hollowed m = 6 − lora r = 4 on CLIP-I(-proxy)",
        method="clip_i_hollowed_m6",
        baseline="clip_i_lora_r4",
        margin=-0.02,
        paper="abstract",
    ),
    Claim(
        "H3",
        "text fidelity kept: hollowed m = 6 − lora r = 4 on CLIP-T(-proxy)",
        method="clip_t_hollowed_m6",
        baseline="clip_t_lora_r4",
        margin=-0.02,
        paper="abstract",
    ),
    Claim(
        "H4",
        "too much hollowing hurts: DINO(-proxy) at m = 3 − at m = 9",
        method="dino_hollowed_m3",
        baseline="dino_hollowed_m9",
        margin=0.02,
        paper="[summary]",
    ),
    Claim(
        "H5-fuse",
        "lossless transfer: fused vs unfused max |Δ| (fp32) ≤ 1e-4",
        method="h5_fuse_max_abs_diff",
        baseline="",
        margin=1e-4,
        direction="less",
        kind="threshold",
        profiles=("smoke", "quick", "full"),
        paper="abstract",
    ),
    Claim(
        "H5-params",
        "free transfer: parameter count equal after fuse + unload (|difference| ≤ 0)",
        method="h5_param_count_diff",
        baseline="",
        margin=0.0,
        direction="less",
        kind="threshold",
        profiles=("smoke", "quick", "full"),
        paper="abstract",
    ),
    Claim(
        "H5-infer",
        "free transfer: inference peak after fuse within 1% of the base",
        method="mem_infer_bytes_fused",
        baseline="mem_infer_bytes_base_native",
        margin=1.01,
        direction="less",
        kind="ratio",
        profiles=("smoke", "quick", "full"),
        paper="abstract",
    ),
)

EXPERIMENT = Experiment(
    name="hollowed-net",
    paper=PAPER,
    config_cls=HollowedNetConfig,
    run=run,
    claims=CLAIMS,
    corpora=("glyph-world",),
    docs="docs/methods/hollowed-net.md",
    headline=(
        "mem_train_bytes_hollowed_m6",
        "mem_train_bytes_lora_r4",
        "mem_infer_bytes",
        "dino_hollowed_m6",
        "dino_lora_r4",
    ),
    export=None,
)
