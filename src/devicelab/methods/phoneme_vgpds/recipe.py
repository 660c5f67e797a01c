"""One stage of phoneme-vgpds: fit one system per class on one seed's tokens and classify the test tokens.

Systems (spec §4, all with the same tokens, features, class prior and argmax rule): ``gmm`` (bag of frames),
``gmm-hmm`` (left-to-right, Viterbi-trained), ``bgplvm`` (Bayesian GP-LVM, no dynamics), ``vgpds``
(unconstrained) and ``cvgpds`` (the variance constraint of ``vgpds.constraint``, V1 by default). A stage's
condition is the data: ``phones`` (the phone tokens of the corpus or TIMIT) or ``synthetic`` (the
lengthscale-only set of spec §7); VGPDS and CVGPDS also fit the parameter-estimation set of §7
(``estimation``). GP systems train through :func:`devicelab.core.training.fit` with a
checkpoint per stage, so ``--resume`` continues a killed stage to the uninterrupted result.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from devicelab.core.config import ConfigError
from devicelab.core.seeding import child_rng, seed_everything
from devicelab.core.stages import Stage
from devicelab.methods.phoneme_vgpds.config import PhonemeVgpdsConfig, VgpdsConfig
from devicelab.methods.phoneme_vgpds.data import PhoneTask, SeedSplit, draw_split, synthetic_split
from devicelab.methods.phoneme_vgpds.hmm import FrameGmmClassifier, GmmHmmClassifier
from devicelab.methods.phoneme_vgpds.synthetic import estimation_set
from devicelab.methods.phoneme_vgpds.training import VgpdsClassifier
from devicelab.metrics import accuracy, per_class_accuracy

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

SYSTEMS = ("gmm", "gmm-hmm", "bgplvm", "vgpds", "cvgpds")
GP_SYSTEMS = ("bgplvm", "vgpds", "cvgpds")
CONDITIONS = ("phones", "synthetic")
ESTIMATION_SYSTEMS = ("vgpds", "cvgpds")  # fitted to the parameter-estimation set (condition "estimation")
BOOTSTRAP_RESAMPLES = 2000


def check_variants(variants: list[str]) -> list[str]:
    """The configured systems; an unknown or repeated one is a one-line error naming it and the choices."""
    for v in variants:
        if v not in SYSTEMS:
            raise ConfigError(f"variants: unknown system {v!r}; valid: {', '.join(SYSTEMS)}")
    if len(set(variants)) != len(variants):
        raise ConfigError(f"variants repeat: {', '.join(variants)}")
    return list(variants)


def gp_config(config: PhonemeVgpdsConfig, system: str, seed: int) -> VgpdsConfig:
    """The GP model of a system: CVGPDS as configured, VGPDS without the constraint, BGPLVM without the
    constraint and with K_t = I (spec §4); everything else identical."""
    base = replace(config.vgpds, seed=seed)
    if system == "cvgpds":
        if base.constraint.name == "none":
            raise ConfigError(
                "vgpds.constraint.name=none: cvgpds needs a constraint (nystrom, latent_var, snr)"
            )
        return base
    unconstrained = replace(base, constraint=replace(base.constraint, name="none"))
    if system == "vgpds":
        return unconstrained
    return replace(unconstrained, latent_prior="isotropic")


def bootstrap_interval(correct: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> list[float]:
    """95 % percentile bootstrap interval of the accuracy (%) over test tokens (spec §7)."""
    if len(correct) == 0:
        return [float("nan"), float("nan")]
    rng = child_rng(seed, "bootstrap")
    means = correct[rng.integers(0, len(correct), size=(resamples, len(correct)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> list[list[int]]:
    """Counts (true class, predicted class)."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix.tolist()


def split_of(task: PhoneTask, stage: Stage, config: PhonemeVgpdsConfig) -> SeedSplit:
    if stage.condition == "synthetic":
        return synthetic_split(config.synthetic, stage.seed)
    return draw_split(task, stage.seed, config.train_tokens_per_class, config.test_tokens_per_class)


def fit_and_score(
    system: str, split: SeedSplit, config: PhonemeVgpdsConfig, seed: int, ctx: RunContext | None, name: str
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fit ``system`` per class and predict the test tokens; returns (predictions, diagnostics)."""
    seed_everything(seed)
    if system == "gmm":
        clf = FrameGmmClassifier(replace(config.gmm, seed=seed), config.vgpds.use_class_prior)
        return clf.fit(split.train).predict(split.test), {}
    if system == "gmm-hmm":
        clf = GmmHmmClassifier(replace(config.hmm, seed=seed), config.vgpds.use_class_prior)
        return clf.fit(split.train).predict(split.test), {}
    gp = VgpdsClassifier(gp_config(config, system, seed))
    start = time.perf_counter()
    gp.fit(
        split.train,
        checkpoint=ctx.checkpoint(name) if ctx is not None else None,
        log_fn=ctx.log if ctx is not None else None,
        desc=name,
    )
    train_s = time.perf_counter() - start
    predictions = gp.predict(split.test)
    models = gp.models
    with torch.no_grad():
        terms = models()
        snr = terms.noise_precision * models.data_variance
        diagnostics: dict[str, Any] = {
            "nystrom_ratio": float(terms.nystrom_ratio.mean()),
            "snr": float(snr.mean()),
            "bound_per_frame": float(terms.bound.sum() / terms.stats.frames.sum()),
            "train_s": train_s,
            "score_s": time.perf_counter() - start - train_s,
            "nystrom_ratio_per_class": terms.nystrom_ratio.tolist(),
            "snr_per_class": snr.tolist(),
            "history_bound_per_frame": [h["bound_per_frame"] for h in gp.history],
            "history_iteration": [int(h["iteration"]) for h in gp.history],
        }
        if hasattr(models, "log_time_inverse_lengthscale_sq"):
            lengthscale = torch.exp(-0.5 * models.log_time_inverse_lengthscale_sq)
            diagnostics["time_lengthscale_s_per_class"] = lengthscale.tolist()
    return predictions, diagnostics


def estimation_stage(config: PhonemeVgpdsConfig, stage: Stage, ctx: RunContext | None) -> dict[str, Any]:
    """Fit one VGPDS (``vgpds`` or ``cvgpds``) to sequences drawn from a known VGPDS (spec §7, parameter
    estimation; no claim): relative errors of ℓ_t and β, and the bound per frame of held-out sequences
    (``score_c`` of §2.6, summed over the held-out sequences)."""
    data = estimation_set(replace(config.estimation, seed=config.estimation.seed + stage.seed))
    seed_everything(stage.seed)
    gp = VgpdsClassifier(gp_config(config, stage.variant, stage.seed))
    gp.fit(
        [data.train],
        checkpoint=ctx.checkpoint(stage.name) if ctx is not None else None,
        log_fn=ctx.log if ctx is not None else None,
        desc=stage.name,
    )
    with torch.no_grad():
        terms = gp.models()
        lengthscale = float(torch.exp(-0.5 * gp.models.log_time_inverse_lengthscale_sq)[0])
        precision = float(terms.noise_precision[0])
    held_out = gp.score(data.held_out)[:, 0]  # (K,)
    true_lengthscale, true_precision = data.truth["time_lengthscale_s"], data.truth["noise_precision"]
    return {
        "name": stage.name,
        "system": stage.variant,
        "condition": stage.condition,
        "seed": stage.seed,
        "time_lengthscale_s": lengthscale,
        "noise_precision": precision,
        "lengthscale_rel_error": abs(lengthscale - true_lengthscale) / true_lengthscale,
        "noise_precision_rel_error": abs(precision - true_precision) / true_precision,
        "heldout_bound_per_frame": float(held_out.sum()) / sum(len(s) for s in data.held_out),
        "nystrom_ratio": float(terms.nystrom_ratio[0]),
    }


def train_stage(task: PhoneTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Fit one system on one seed's tokens of one condition; accuracy (%), per-token correctness,
    per-class accuracy, confusion matrix and, for GP systems, r, β·v̂, ℓ_t and the bound curve."""
    config: PhonemeVgpdsConfig = ctx.config
    if stage.condition == "estimation":
        return estimation_stage(config, stage, ctx)
    split = split_of(task, stage, config)
    predictions, diagnostics = fit_and_score(stage.variant, split, config, stage.seed, ctx, stage.name)
    num_classes = len(split.train)
    pred, labels = torch.as_tensor(predictions), torch.as_tensor(split.test_labels)
    correct = 100.0 * (predictions == split.test_labels)
    return {
        "name": stage.name,
        "system": stage.variant,
        "condition": stage.condition,
        "seed": stage.seed,
        "accuracy": accuracy(pred, labels),
        "accuracy_ci": bootstrap_interval(correct, stage.seed),
        "correct": correct.tolist(),  # per test token: the claims' paired bootstrap reads it
        "per_class_accuracy": per_class_accuracy(pred, labels, num_classes),
        "confusion": confusion_matrix(split.test_labels, predictions, num_classes),
        "train_tokens": sum(len(t) for t in split.train),
        "test_tokens": len(split.test),
        **diagnostics,
    }
