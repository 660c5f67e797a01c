"""Before deployment: train the source model on long-tailed data, then the label shift adapter on its
features.

Spec ``tta-lsa.md`` §3.4 [summary: three stages — freeze the source model, train the adapter with a
generalized logit-adjusted loss, plug it into a TTA method]. The loss used is a [reconstruction]:

    L(φ) = E_{π ~ P_train} E_{(x, y) ~ D_s} CE( z(x; π) + ln π_s − ln π , y )

whose minimiser makes softmax(z(x; π)) the Bayes posterior under prior π (p_t(x|y) = p_s(x|y)), without
resampling the source.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.core.checkpoint import TrainingCheckpoint
from devicelab.core.config import ranged
from devicelab.core.seeding import child_rng, torch_generator
from devicelab.core.training import fit
from devicelab.methods.tta_lsa.adapter import LabelShiftAdapter, scalar_family
from devicelab.methods.tta_lsa.tta import use_test_batch_statistics


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) scaled to [−1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return x.div_(127.5).sub_(1.0)


@dataclass(frozen=True)
class SourceTraining:
    """How the source model is trained (spec §4, [reconstruction]); ``schedule="cosine"`` decays the learning
    rate to zero over the epochs (either optimizer), so the last epoch leaves a converged model."""

    epochs: int = ranged(30, low=1)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = ranged(2e-3, low=0)
    momentum: float = ranged(0.9, low=0, high=1)
    weight_decay: float = ranged(0.0, low=0)
    batch_size: int = ranged(128, low=1)
    loss: Literal["ce", "balanced_softmax"] = "ce"
    schedule: Literal["cosine", "constant"] = "cosine"


def train_source(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    source_prior: torch.Tensor,
    settings: SourceTraining,
    seed: int,
    checkpoint: TrainingCheckpoint | None = None,
    log: Callable[..., None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on the long-tailed source set; ``balanced_softmax`` adds ln π_s to the logits (Ren et
    al. 2020) so the model's plain logits estimate a balanced posterior."""
    if settings.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=settings.lr,
            momentum=settings.momentum,
            weight_decay=settings.weight_decay,
            nesterov=True,
        )
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(settings.epochs, 1))
        if settings.schedule == "cosine"
        else None
    )
    log_prior = source_prior.log()

    def train_epoch(epoch: int) -> dict[str, float]:
        order = torch.randperm(len(images), generator=torch_generator(seed, epoch))
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(order), settings.batch_size):
            idx = order[start : start + settings.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            logits = model(images[idx])
            adjusted = logits + log_prior if settings.loss == "balanced_softmax" else logits
            loss = F.cross_entropy(adjusted, labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == labels[idx]).sum())
            total += len(idx)
        if scheduler is not None:
            scheduler.step()
        return {"loss": loss_sum / max(total, 1), "train_acc": 100.0 * correct / max(total, 1)}

    return fit(
        model,
        optimizer,
        train_epoch,
        settings.epochs,
        scheduler=scheduler,
        checkpoint=checkpoint,
        log=log,
        desc="source",
    )


@torch.no_grad()
def extract_features(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """h = F(x) with BN in eval mode (source running statistics): (N, 3, H, W) -> (N, D)."""
    model.eval()
    return torch.cat([model.features(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


@dataclass(frozen=True)
class AdapterTraining:
    """How the adapter is trained (spec §3.4, §4, [reconstruction])."""

    steps: int = ranged(2000, low=1)
    batch_size: int = ranged(256, low=1)
    lr: float = ranged(1e-3, low=0)
    mode: Literal["cached", "test_like"] = "cached"
    schedule: Literal["cosine", "constant"] = "cosine"  # learning-rate schedule over the steps
    # "held_out": a second long-tailed draw with the source's class counts, disjoint from the images the
    # source model was trained on (the model's features there are not fitted); "source": the same images
    data: Literal["held_out", "source"] = "held_out"


def sample_training_prior(adapter: LabelShiftAdapter, rng: np.random.Generator) -> torch.Tensor:
    """π ~ P_train: scalar descriptor s ~ U[−ln ρ_max, ln ρ_max] in the LT family; vector descriptor half
    LT family, half Dirichlet(α·1) with α ∈ {0.3, 1, 3} (spec §3.4)."""
    log_rho = math.log(adapter.config.rho_max)
    if adapter.config.descriptor == "vector" and rng.random() < 0.5:
        alpha = float(rng.choice([0.3, 1.0, 3.0]))
        prior = torch.as_tensor(rng.dirichlet(np.full(adapter.num_classes, alpha)), dtype=torch.float32)
        prior = prior.clamp_min(adapter.config.eps)
        return prior / prior.sum()
    return scalar_family(float(rng.uniform(-log_rho, log_rho)), adapter.ranks)


def train_adapter(
    adapter: LabelShiftAdapter,
    model: nn.Module,
    features: torch.Tensor | None,
    labels: torch.Tensor,
    settings: AdapterTraining,
    seed: int,
    images: torch.Tensor | None = None,
    log: Callable[..., None] | None = None,
) -> list[float]:
    """Fit g_φ with the source model frozen; returns the loss of every 50th step.

    ``mode="cached"``: minibatches of the cached features ``features`` (distributed as π_s), loss
    CE(z(h; π) + ln π_s − ln π, y). ``mode="test_like"`` (ablation): each batch of ``images`` is resampled to
    π and passed through F with BN in batch-statistics mode, loss plain CE(z(h; π), y), so the adapter sees
    the
    feature distortion of imbalanced batches.
    """
    model.requires_grad_(False)
    linear = model.head
    rng = child_rng(seed, "adapter")
    generator = torch_generator(seed, 7)
    optimizer = torch.optim.Adam(adapter.parameters(), lr=settings.lr)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(settings.steps, 1))
        if settings.schedule == "cosine"
        else None
    )
    log_source = adapter.source_prior.log()
    adapter.requires_grad_(True)
    adapter.train()
    if settings.mode == "test_like":
        if images is None:
            raise ValueError('adapter training mode "test_like" needs the source images')
        batch_model = copy.deepcopy(model)
        use_test_batch_statistics(batch_model)
        by_class = [torch.nonzero(labels == k).flatten() for k in range(adapter.num_classes)]
    elif features is None:
        raise ValueError('adapter training mode "cached" needs the cached source features')
    history = []
    for step in range(settings.steps):
        prior = sample_training_prior(adapter, rng)
        if settings.mode == "cached":
            idx = torch.randint(len(labels), (settings.batch_size,), generator=generator)
            h, y = features[idx], labels[idx]
            shift = log_source - prior.log()
        else:
            y = torch.multinomial(prior, settings.batch_size, replacement=True, generator=generator)
            idx = torch.stack(
                [
                    by_class[k][torch.randint(len(by_class[k]), (1,), generator=generator)[0]]
                    for k in y.tolist()
                ]
            )
            with torch.no_grad():
                h = batch_model.features(images[idx])
            shift = torch.zeros_like(prior)
        logits = adapter.adapted_logits(h, linear, prior) + shift
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if step % 50 == 0 or step == settings.steps - 1:
            history.append(loss.item())
            if log is not None:
                log(stage="adapter", step=step, loss=history[-1])
    adapter.eval()
    adapter.requires_grad_(False)
    return history
