"""Training of one sed-tritrain stage: tri-training (M), its ablations and the baselines (spec §2.3, §4).

Every variant trains F + heads with Adam on batches of ``batch_synthetic`` strong synthetic clips (S),
``batch_weak`` weak real clips (W) and ``batch_unlabeled`` unlabelled real clips (U):

- ``tritrain`` (M): L = L_lab(F1) + L_lab(F2) + λ_orth·L_orth + L_t + μ·L_dom (spec §2.3), the final head Ft
  also learning from the pseudo-labels of §2.4 after warm-up; ``tritrain-no-dann`` (A1) is μ = 0.
- ``mean-teacher`` (B1): the DCASE 2019 task 4 baseline, student BCE on S and W plus the ramped MSE
  consistency to an EMA teacher on all clips.
- ``supervised`` (B0): the first two terms of B1. ``dann`` (A2): B0 + μ·L_dom on S, W, U.
- ``oracle`` (A3): B0 with the hidden strong labels of W and U (offline corpus only).

Training runs in chunks of ``refresh_every`` steps, each one epoch of :func:`devicelab.core.training.fit`
(checkpointed); pseudo-labels are recomputed at the start of every chunk after warm-up from the checkpointed
weights, so a resumed run labels exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.core.checkpoint import load_model_weights, save_model
from devicelab.core.config import ConfigError, to_dict
from devicelab.core.run import RunContext
from devicelab.core.seeding import seed_everything, torch_generator
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.methods.sed_tritrain.config import ABLATIONS, VARIANTS, SedTritrainConfig
from devicelab.methods.sed_tritrain.data import N_MELS, SedSet, SedTask, Standardize
from devicelab.methods.sed_tritrain.labels import detect
from devicelab.methods.sed_tritrain.model import (
    CRNN,
    CNNFeatures,
    ConvHead,
    DomainClassifier,
    MeanTeacher,
    RecurrentHead,
    TriTrainingCRNN,
    consistency_weight,
    init_weights,
    orthogonality_penalty,
)
from devicelab.methods.sed_tritrain.pseudo import (
    PseudoLabels,
    frame_precision_recall,
    label_clips,
    masked_bce,
    pool_fraction,
    select_pool,
)
from devicelab.metrics.sed import (
    event_based_f1,
    intersection_f1,
    psds,
    segment_based_f1,
    tag_f1,
    write_dcase_tsv,
)
from devicelab.nn.gradient_reversal import dann_lambda


@dataclass(frozen=True)
class SystemPlan:
    """What a variant trains: tri-training or one CRNN, and which extra terms (spec §4)."""

    tritrain: bool = False
    mu: float = 0.0  # weight of the domain loss (0: no D)
    mean_teacher: bool = False
    oracle: bool = False
    unlabeled: bool = True  # whether U clips enter the batch


def plan_variants(config: SedTritrainConfig) -> list[str]:
    """The variants the config asks for (ablations appended); unknown names are a one-line error."""
    for v in config.variants:
        if v not in VARIANTS:
            raise ConfigError(f"variants: unknown variant {v!r}; valid: {', '.join(VARIANTS)}")
    variants = list(config.variants) + [a for a in ABLATIONS if config.ablations and a not in config.variants]
    if len(set(variants)) != len(variants):
        raise ConfigError(f"variants repeat: {', '.join(variants)}")
    return variants


def system_plan(variant: str, config: SedTritrainConfig) -> SystemPlan:
    return {
        "tritrain": SystemPlan(tritrain=True, mu=config.mu, mean_teacher=config.mean_teacher),
        "tritrain-no-dann": SystemPlan(tritrain=True, mu=0.0, mean_teacher=config.mean_teacher),
        "mean-teacher": SystemPlan(mean_teacher=True),
        "supervised": SystemPlan(unlabeled=False),
        "dann": SystemPlan(mu=config.mu),
        "oracle": SystemPlan(oracle=True),
    }[variant]


# --- models ------------------------------------------------------------------------------------------------


def build_features(config: SedTritrainConfig) -> CNNFeatures:
    return CNNFeatures(config.cnn_channels, config.cnn_pools, N_MELS, config.dropout, config.bn_momentum)


def build_head(
    config: SedTritrainConfig, in_dim: int, num_classes: int, pooling: str = "attention"
) -> nn.Module:
    return RecurrentHead(in_dim, config.gru_hidden, config.gru_layers, num_classes, config.dropout, pooling)


def build_crnn(config: SedTritrainConfig, num_classes: int) -> CRNN:
    """The DCASE 2019 baseline CRNN at the config's sizes, initialised as the baseline [ref]."""
    features = build_features(config)
    model = CRNN(features, build_head(config, features.out_dim, num_classes))
    init_weights(model, config.linear_init)
    return model


def build_tritrain(config: SedTritrainConfig, num_classes: int) -> TriTrainingCRNN:
    """F, labellers F1/F2 made different by ``labeler_diversity``, final head Ft and D (spec §2.2)."""
    features = build_features(config)
    d = features.out_dim
    f1 = build_head(config, d, num_classes)
    if config.labeler_diversity == "arch":
        f2: nn.Module = ConvHead(d, num_classes)
    elif config.labeler_diversity == "pooling":
        f2 = build_head(config, d, num_classes, pooling="linear_softmax")
    else:
        f2 = build_head(config, d, num_classes)  # different init draw; L_orth pushes them apart
    final = build_head(config, d, num_classes)
    domain = DomainClassifier(d, config.domain_hidden, config.dann_attach)
    model = TriTrainingCRNN(features, [f1, f2], final, domain)
    init_weights(model, config.linear_init)
    return model


class SedSystem(nn.Module):
    """What one stage trains and checkpoints: the standardiser, the network and, where used, D and the EMA
    teacher."""

    def __init__(self, task: SedTask, config: SedTritrainConfig, plan: SystemPlan):
        super().__init__()
        k = len(task.classes)
        self.norm = Standardize(task.mean, task.std)
        if plan.tritrain:
            self.net: nn.Module = build_tritrain(config, k)
            self.domain: nn.Module | None = self.net.domain
        else:
            self.net = build_crnn(config, k)
            self.domain = None
            if plan.mu > 0:
                self.domain = DomainClassifier(
                    self.net.features.out_dim, config.domain_hidden, config.dann_attach
                )
                init_weights(self.domain, config.linear_init)
        self.teacher = MeanTeacher(self.student(), config.ema_max) if plan.mean_teacher else None

    def student(self) -> CRNN:
        """F + the deployed head (Ft for tri-training)."""
        return self.net.final_crnn() if isinstance(self.net, TriTrainingCRNN) else self.net


class SedDetector(nn.Module):
    """The deployed model: (front end →) standardiser → F → head; returns the frame posteriors (B, T', K)."""

    def __init__(self, norm: Standardize, crnn: CRNN, frontend: nn.Module | None = None):
        super().__init__()
        self.frontend = frontend
        self.norm = norm
        self.crnn = crnn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frontend is not None:
            x = self.frontend(x)
        return self.crnn(self.norm(x))[0]


# --- batches and losses ------------------------------------------------------------------------------------


def _features(s: SedSet, idx: torch.Tensor) -> torch.Tensor:
    return s.features[idx].float().unsqueeze(1)  # (B, 1, T, M)


def teacher_input(x_log: torch.Tensor, scale: float) -> torch.Tensor:
    """The baseline's teacher input: |ε|, ε ~ N(0, scale), added to the linear mel before the log [ref]."""
    return torch.log(torch.exp(x_log) + (scale * torch.randn_like(x_log)).abs())


def domain_loss(logits: torch.Tensor, n_synthetic: int) -> torch.Tensor:
    """L_dom = ½ mean BCE(D, 0) over synthetic frames + ½ mean BCE(D, 1) over real frames (spec §2.3)."""
    synth, real = logits[:n_synthetic], logits[n_synthetic:]
    return 0.5 * F.binary_cross_entropy_with_logits(
        synth, torch.zeros_like(synth)
    ) + 0.5 * F.binary_cross_entropy_with_logits(real, torch.ones_like(real))


def supervised_loss(strong, weak, y_strong, tags, n_s: int, n_w: int) -> torch.Tensor:
    """BCE(strong[S], y_S) + BCE(weak[W], tags_W)."""
    return F.binary_cross_entropy(strong[:n_s], y_strong) + F.binary_cross_entropy(
        weak[n_s : n_s + n_w], tags
    )


def pseudo_loss(strong, weak, batch_pl: dict[str, torch.Tensor], n_s: int, n_w: int) -> torch.Tensor:
    """mBCE(strong[P], ŷ, m) + mBCE(weak[P ∩ U], ĝ, g_mask) (spec §2.3)."""
    frame = masked_bce(strong[n_s:], batch_pl["targets"], batch_pl["mask"])
    clip = masked_bce(weak[n_s + n_w :], batch_pl["clip_targets"][n_w:], batch_pl["clip_mask"][n_w:])
    return frame + clip


@torch.no_grad()
def frame_posteriors(
    model: nn.Module, x: torch.Tensor, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode (strong (N, T', K), weak (N, K)) of a (norm, CRNN-like) callable on log-mels (N, T, M)."""
    model.eval()
    strong, weak = [], []
    for i in range(0, len(x), batch_size):
        s, w = model(x[i : i + batch_size].float().unsqueeze(1))
        strong.append(s.numpy())
        weak.append(w.numpy())
    return np.concatenate(strong), np.concatenate(weak)


class _Eval(nn.Module):
    def __init__(self, norm: nn.Module, net: nn.Module):
        super().__init__()
        self.norm, self.net = norm, net

    def forward(self, x):
        return self.net(self.norm(x))


class _Labeler(nn.Module):
    def __init__(self, norm: nn.Module, features: nn.Module, head: nn.Module):
        super().__init__()
        self.norm, self.features, self.head = norm, features, head

    def forward(self, x):
        return self.head(self.features(self.norm(x)))


def refresh_pseudo_labels(
    system: SedSystem, task: SedTask, config: SedTritrainConfig, step: int
) -> tuple[PseudoLabels, dict[str, float]]:
    """Label W ∪ U with F1 and F2 in eval mode (spec §2.4) and select the pool for ``step``."""
    net: TriTrainingCRNN = system.net  # type: ignore[assignment]
    was_training = system.training
    system.eval()
    x = torch.cat([task.weak.features, task.unlabeled.features])
    p1, q1 = frame_posteriors(_Labeler(system.norm, net.features, net.labelers[0]), x)
    p2, q2 = frame_posteriors(_Labeler(system.norm, net.features, net.labelers[1]), x)
    system.train(was_training)
    n_w, k = len(task.weak), len(task.classes)
    tags = np.concatenate([task.weak.tags.numpy(), np.zeros((len(task.unlabeled), k), np.float32)])
    is_weak = np.arange(len(x)) < n_w
    labels = label_clips(
        p1, p2, q1, q2, tags, is_weak, config.median_window, config.tau_clip, config.tau_hi, config.tau_lo
    )
    fraction = 1.0
    if config.pool_schedule == "linear":
        fraction = pool_fraction(
            step, config.warmup_steps, config.steps, config.pool_start, config.pool_full_at
        )
    labels = select_pool(labels, fraction)
    stats = {
        "pool_size": float(labels.in_pool.sum()),
        "agreement": float(labels.agreement[labels.in_pool].mean()),
    }
    if task.oracle_weak is not None and task.oracle_unlabeled is not None:
        oracle = torch.cat([task.oracle_weak, task.oracle_unlabeled]).numpy()
        stats["pl_precision"], stats["pl_recall"] = frame_precision_recall(labels, oracle)
    return labels, stats


# --- one stage ---------------------------------------------------------------------------------------------


def make_train_chunk(system: SedSystem, optimizer, task: SedTask, config: SedTritrainConfig, plan: SystemPlan,
                     seed: int, state: dict[str, Any], log_refresh) -> Any:  # fmt: skip
    """``train_chunk(epoch)``: ``refresh_every`` optimisation steps (the last chunk may be shorter)."""
    S, W, U = task.synthetic, task.weak, task.unlabeled
    n_s, n_w = config.batch_synthetic, config.batch_weak
    n_u = config.batch_unlabeled if plan.unlabeled else 0
    oracle_wu = None
    if plan.oracle:
        if task.oracle_weak is None or task.oracle_unlabeled is None:
            raise ConfigError(
                "variant oracle needs hidden strong labels (metadata/oracle/), which --data lacks"
            )
        oracle_wu = (task.oracle_weak, task.oracle_unlabeled)

    def step_once(step: int, g: torch.Generator) -> dict[str, float]:
        i_s = torch.randint(len(S), (n_s,), generator=g)
        i_w = torch.randint(len(W), (n_w,), generator=g)
        i_u = torch.randint(len(U), (n_u,), generator=g)
        x_log = torch.cat([_features(S, i_s), _features(W, i_w), _features(U, i_u)])  # (B, 1, T, M)
        y_s, tags = S.strong[i_s], W.tags[i_w]
        x = system.norm(x_log)
        progress = step / max(1, config.steps)
        record: dict[str, float] = {}
        pl: PseudoLabels | None = state.get("pseudo")
        gamma = config.gamma_pseudo if (pl is not None and step >= config.warmup_steps) else 0.0
        batch_pl = None
        if plan.tritrain and gamma > 0:
            rows = torch.cat([i_w, len(W) + i_u]).numpy()
            pool = torch.from_numpy(pl.in_pool[rows].astype(np.float32))
            batch_pl = {
                "targets": torch.from_numpy(pl.targets[rows]),
                "mask": torch.from_numpy(pl.mask[rows]) * pool[:, None, None],
                "clip_targets": torch.from_numpy(pl.clip_targets[rows]),
                "clip_mask": torch.from_numpy(pl.clip_mask[rows]) * pool[:, None],
            }
        if system.domain is not None:
            system.domain.grl.scale = dann_lambda(progress, final=config.lambda_max)

        def consistency(strong, weak) -> torch.Tensor:
            w = consistency_weight(step, config.steps // 2, config.consistency_max)
            s_t, w_t = system.teacher(system.norm(teacher_input(x_log, config.teacher_noise_scale)))
            record["consistency_w"] = w
            return w * (F.mse_loss(strong, s_t) + F.mse_loss(weak, w_t))

        if plan.tritrain:
            net: TriTrainingCRNN = system.net  # type: ignore[assignment]

            def labeler_losses(h: torch.Tensor) -> torch.Tensor:
                loss = torch.zeros(())
                for head in net.labelers:
                    s_i, w_i = head(h)
                    loss = loss + supervised_loss(s_i, w_i, y_s, tags, n_s, n_w)
                    if config.labelers_use_pseudo and batch_pl is not None:
                        loss = loss + gamma * pseudo_loss(s_i, w_i, batch_pl, n_s, n_w)
                if config.labeler_diversity == "orth" and config.lambda_orth > 0:
                    orth = orthogonality_penalty(
                        net.labelers[0].input_weights(), net.labelers[1].input_weights()
                    )
                    record["l_orth"] = orth.item()
                    loss = loss + config.lambda_orth * orth
                if plan.mu > 0:
                    l_dom = domain_loss(net.domain(h), n_s)
                    record["l_dom"] = l_dom.item()
                    loss = loss + plan.mu * l_dom
                return loss

            def final_loss(h: torch.Tensor) -> torch.Tensor:
                s_t, w_t = net.final(h)
                loss = supervised_loss(s_t, w_t, y_s, tags, n_s, n_w)
                if batch_pl is not None:
                    loss = loss + gamma * pseudo_loss(s_t, w_t, batch_pl, n_s, n_w)
                if system.teacher is not None:
                    loss = loss + consistency(s_t, w_t)
                return loss

            if config.schedule == "joint":
                h = net.features(x)
                loss = labeler_losses(h) + final_loss(h)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            else:  # Saito et al.: a step on F + F1 + F2, then a step on F + Ft
                loss_a = labeler_losses(net.features(x))
                optimizer.zero_grad(set_to_none=True)
                loss_a.backward()
                optimizer.step()
                loss = final_loss(net.features(x))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss = loss + loss_a.detach()
        else:
            net_c: CRNN = system.net  # type: ignore[assignment]
            h = net_c.features(x)
            strong, weak = net_c.head(h)
            if oracle_wu is not None:
                y_all = torch.cat([y_s, oracle_wu[0][i_w], oracle_wu[1][i_u]])
                loss = F.binary_cross_entropy(strong, y_all) + F.binary_cross_entropy(
                    weak[n_s : n_s + n_w], tags
                )
            else:
                loss = supervised_loss(strong, weak, y_s, tags, n_s, n_w)
            if system.domain is not None:
                l_dom = domain_loss(system.domain(h), n_s)
                record["l_dom"] = l_dom.item()
                loss = loss + plan.mu * l_dom
            if system.teacher is not None:
                loss = loss + consistency(strong, weak)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if system.teacher is not None:
            system.teacher.update(system.student(), step)
        record["loss"] = loss.item()
        return record

    def train_chunk(epoch: int) -> dict[str, float]:
        start = epoch * config.refresh_every
        stop = min(config.steps, start + config.refresh_every)
        record: dict[str, float] = {}
        if plan.tritrain and start >= config.warmup_steps:
            state["pseudo"], stats = refresh_pseudo_labels(system, task, config, start)
            record.update({k: v for k, v in stats.items() if math.isfinite(v)})  # no labelled positive: NaN
            log_refresh(step=start, **stats)
        g = torch_generator(seed, epoch)
        sums: dict[str, float] = {}
        for step in range(start, stop):
            for key, value in step_once(step, g).items():
                sums[key] = sums.get(key, 0.0) + value
        record.update({k: v / max(1, stop - start) for k, v in sums.items()})
        record["steps"] = float(stop)
        return record

    return train_chunk


def evaluate_set(
    detector: nn.Module, s: SedSet, task: SedTask, config: SedTritrainConfig, with_psds: bool = False
) -> tuple[dict[str, float], list, np.ndarray]:
    """Event/segment/tag F1 (%) of a detector on one strong set, plus PSDS1 and intersection F1 when asked;
    returns the metrics, the detected events and the frame posteriors."""
    strong, weak = frame_posteriors(detector, s.features)
    events = [
        e
        for name, scores in zip(s.filenames, strong, strict=True)
        for e in detect(scores, task.classes, task.frame_s, config.threshold, config.median_window, name)
    ]
    out = {
        "event_f1": 100.0 * event_based_f1(s.events, events, task.classes, s.filenames).macro_f1,
        "segment_f1": 100.0 * segment_based_f1(s.events, events, task.classes, s.filenames).macro_f1,
        "tag_f1": 100.0 * tag_f1(s.tags.numpy(), weak > config.threshold, task.classes).macro_f1,
    }
    if with_psds and {e[3] for e in s.events} == set(task.classes):  # PSDS needs events of every class
        stamps = np.arange(task.out_frames + 1) * task.frame_s
        scores = {n: (p, stamps) for n, p in zip(s.filenames, strong, strict=True)}
        durations = {n: task.duration_s for n in s.filenames}
        out["psds1"] = psds(scores, s.events, durations, task.classes)
        out["intersection_f1"] = 100.0 * intersection_f1(scores, s.events, task.classes).macro_f1
    return out, events, strong


@torch.no_grad()
def domain_accuracy(system: SedSystem, task: SedTask) -> float:
    """Accuracy (%) of D telling synthetic-valid frames (0) from real test frames (1), eval mode."""
    system.eval()
    correct = total = 0
    for s, label in ((task.synthetic_valid, 0), (task.test, 1)):
        for i in range(0, len(s), 64):
            h = system.net.features(system.norm(s.features[i : i + 64].float().unsqueeze(1)))
            pred = (system.domain(h) > 0).long()
            correct += int((pred == label).sum())
            total += pred.numel()
    return 100.0 * correct / max(1, total)


def selection_score(detector: nn.Module, task: SedTask, config: SedTritrainConfig) -> float:
    """Model selection of the baseline: synthetic-valid event F1 + weak-valid tag F1 (fractions) [ref]."""
    score = evaluate_set(detector, task.synthetic_valid, task, config)[0]["event_f1"] / 100.0
    if len(task.weak_valid):
        _, weak = frame_posteriors(detector, task.weak_valid.features)
        score += tag_f1(task.weak_valid.tags.numpy(), weak > config.threshold, task.classes).macro_f1
    return score


def train_stage(task: SedTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Train one variant with one seed, evaluate it (spec §7), write its DCASE tsv and keep its model."""
    config: SedTritrainConfig = ctx.config
    plan = system_plan(stage.variant, config)
    seed_everything(stage.seed)
    system = SedSystem(task, config, plan)
    optimizer = torch.optim.Adam(
        [p for p in system.parameters() if p.requires_grad], lr=config.lr, betas=(0.9, 0.999)
    )
    state: dict[str, Any] = {}
    refreshes: list[dict[str, float]] = []

    def log_refresh(**stats: float) -> None:
        refreshes.append(stats)
        ctx.log(stage=stage.name, event="pseudo-labels", **stats)

    chunk = make_train_chunk(system, optimizer, task, config, plan, stage.seed, state, log_refresh)
    best_path = ctx.run_dir / "models" / f"{stage.name}-best"
    eval_detector = _Eval(system.norm, system.student())

    def chunk_with_selection(epoch: int) -> dict[str, float]:
        record = chunk(epoch)
        if config.model_selection == "best":
            score = selection_score(eval_detector, task, config)
            record["selection_score"] = score
            meta = best_path.with_suffix(".json")
            if not meta.exists() or score > json.loads(meta.read_text())["selection_score"]:
                save_model(best_path, system, {"epoch": epoch, "selection_score": score})
            system.train()
        return record

    chunks = math.ceil(config.steps / config.refresh_every)
    history = fit(
        system, optimizer, chunk_with_selection, chunks, checkpoint=ctx.checkpoint(stage.name), log=ctx.log,
        desc=stage.name,
    )  # fmt: skip
    if config.model_selection == "best" and best_path.with_suffix(".safetensors").exists():
        system.load_state_dict(load_model_weights(best_path)[0])  # the best chunk's weights [ref]
    system.eval()
    result: dict[str, Any] = {"name": stage.name, "variant": stage.variant, "seed": stage.seed}
    test, test_events, test_scores = evaluate_set(eval_detector, task.test, task, config, with_psds=True)
    result.update(test)
    val = evaluate_set(eval_detector, task.validation, task, config)[0]
    result.update({f"val_{k}": v for k, v in val.items()})
    if len(task.synthetic_valid):
        synth = evaluate_set(eval_detector, task.synthetic_valid, task, config)[0]
        result["synth_event_f1"] = synth["event_f1"]
        result["domain_gap"] = synth["event_f1"] - test["event_f1"]
    if system.teacher is not None:
        teacher = evaluate_set(_Eval(system.norm, system.teacher.teacher), task.test, task, config)[0]
        result["teacher_event_f1"] = teacher["event_f1"]
    if system.domain is not None:
        result["domain_acc"] = domain_accuracy(system, task)
    if refreshes:
        last = refreshes[-1]
        keys = ("pl_precision", "pl_recall", "pool_size", "agreement")
        result.update({k: last[k] for k in keys if k in last and math.isfinite(last[k])})
        result["refreshes"] = refreshes
    write_dcase_tsv(test_events, ctx.run_dir / "detections" / f"{stage.name}.tsv")
    n_plot = min(config.plot_clips, len(task.test))
    result["plot_scores"] = np.round(test_scores[:n_plot], 3).tolist()
    result["history"] = history
    save_model(
        ctx.run_dir / "models" / stage.name,
        SedDetector(system.norm, system.student()),
        {
            "variant": stage.variant,
            "seed": stage.seed,
            "classes": list(task.classes),
            "frame_s": task.frame_s,
            "event_f1": result["event_f1"],
            "config": to_dict(config),
        },
    )
    return result
