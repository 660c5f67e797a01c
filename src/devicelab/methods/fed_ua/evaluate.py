"""Verification metrics of a trained model at each user's own threshold (spec §2.7).

Per user u at τ_u: TPR on u's test split, FPR_seen on other training users' test samples, FPR_unseen on
samples of users never in training, macro-averaged (late joiners also separately). Pooled trials give
EER_unseen, EER_seen and TPR at FPR 1e-2 through :mod:`devicelab.metrics`. The evaluation reads every
user's codeword and threshold: it is the simulation's referee, not part of the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.federated.algo import Arrays
from devicelab.methods.fed_ua.algorithms import (
    FedAwS,
    FedUA,
    NaiveFedAvg,
    PositiveOnlyFedAvg,
    warmup_threshold,
)
from devicelab.methods.fed_ua.data import SpeakerTask
from devicelab.metrics import eer, tpr_at_fpr

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # inputs (N, F, T) -> scores against every user (N, U)


@dataclass
class ScoreSets:
    """Scores against every training user (columns) of the training users' test samples and of the unseen
    users' samples, with the owner of each test row and every user's threshold."""

    test: np.ndarray  # (N_test, U)
    owner: np.ndarray  # (N_test,)
    unseen: np.ndarray  # (N_unseen, U)
    thresholds: np.ndarray  # (U,)


def batched(fn: ScoreFn, x: torch.Tensor, batch: int = 512) -> np.ndarray:
    """``fn`` over ``x`` (float16 or float32) in batches, without gradients; float64 numpy."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out.append(fn(x[start : start + batch].float()).double())
    return torch.cat(out).numpy()


def score_function(
    algo: PositiveOnlyFedAvg, model: nn.Module, states: Mapping[int, Arrays], users: int
) -> ScoreFn:
    """Scores of inputs against users ``0..users-1`` in one pass: s_u for FedUA, log p(u | x) for naive
    FedAvg, cos(g(x), w_u) for FedAwS."""
    if isinstance(algo, FedUA):
        codebook = torch.from_numpy(
            np.stack([np.asarray(states[u]["codeword"], np.float32) for u in range(users)])
        )
        return lambda x: model(x) @ codebook.T / codebook.shape[1]
    if isinstance(algo, NaiveFedAvg):
        return lambda x: F.log_softmax(model(x), dim=1)[:, :users]
    if isinstance(algo, FedAwS):
        table = F.normalize(model.class_embeddings.detach()[:users], dim=1)
        return lambda x: F.normalize(model(x), dim=1) @ table.T
    raise TypeError(f"no score function for {type(algo).__name__}")


def score_sets(score: ScoreFn, task: SpeakerTask, thresholds: np.ndarray) -> ScoreSets:
    """Score the training users' test splits and every unseen user's samples."""
    test = torch.cat([u.test for u in task.users])
    owner = np.concatenate([np.full(len(u.test), i) for i, u in enumerate(task.users)])
    unseen = torch.cat([torch.cat([u.train, u.warmup, u.test]) for u in task.unseen])
    return ScoreSets(batched(score, test), owner, batched(score, unseen), np.asarray(thresholds, np.float64))


def verification_metrics(sets: ScoreSets, original_users: int, fpr_target: float = 1e-2) -> dict[str, object]:
    """TPR, FPR_seen, FPR_unseen at τ_u (macro over users; original and late separately); pooled EERs (%)
    and TPR at ``fpr_target`` against unseen impostors. Per-user lists go under ``*_per_user``."""
    users = sets.test.shape[1]
    tpr, fpr_seen, fpr_unseen = np.zeros(users), np.zeros(users), np.zeros(users)
    genuine, seen_imp, unseen_imp = [], [], []
    for u in range(users):
        own = sets.owner == u
        tau = sets.thresholds[u]
        tpr[u] = np.mean(sets.test[own, u] >= tau)
        fpr_seen[u] = np.mean(sets.test[~own, u] >= tau)
        fpr_unseen[u] = np.mean(sets.unseen[:, u] >= tau)
        genuine.append(sets.test[own, u])
        seen_imp.append(sets.test[~own, u])
        unseen_imp.append(sets.unseen[:, u])
    gen = np.concatenate(genuine)
    imp_unseen, imp_seen = np.concatenate(unseen_imp), np.concatenate(seen_imp)
    scores_unseen = np.concatenate([gen, imp_unseen])
    labels_unseen = np.concatenate([np.ones(len(gen)), np.zeros(len(imp_unseen))])
    scores_seen = np.concatenate([gen, imp_seen])
    labels_seen = np.concatenate([np.ones(len(gen)), np.zeros(len(imp_seen))])
    orig, late = slice(0, original_users), slice(original_users, users)
    out: dict[str, object] = {
        "tpr": float(tpr.mean()),
        "fpr_seen": float(fpr_seen.mean()),
        "fpr_unseen": float(fpr_unseen.mean()),
        "tpr_orig": float(tpr[orig].mean()),
        "fpr_unseen_orig": float(fpr_unseen[orig].mean()),
        "eer_unseen": 100.0 * eer(scores_unseen, labels_unseen),
        "eer_seen": 100.0 * eer(scores_seen, labels_seen),
        "tpr_at_fpr_1e-2": tpr_at_fpr(scores_unseen, labels_unseen, fpr_target),
        "fpr_unseen_per_user": fpr_unseen.tolist(),
        "tpr_per_user": tpr.tolist(),
    }
    if users > original_users:
        out |= {"tpr_late": float(tpr[late].mean()), "fpr_unseen_late": float(fpr_unseen[late].mean())}
    return out


def enrolment_thresholds(embed: ScoreFn, task: SpeakerTask, q: float) -> tuple[torch.Tensor, np.ndarray]:
    """Centralised baseline (spec §4): unit-norm enrolment means over each user's warm-up embeddings, and τ_u
    set leave-one-out (each warm-up sample against the mean of the others) at target TPR ``q``."""
    means, thresholds = [], []
    for u in task.users:
        e = F.normalize(torch.from_numpy(batched(embed, u.warmup)).float(), dim=1)  # (n_w, d)
        total = e.sum(0)
        loo = F.normalize(total[None, :] - e, dim=1)  # mean of the others, per sample
        thresholds.append(warmup_threshold((e * loo).sum(1).numpy(), q))
        means.append(F.normalize(total, dim=0))
    return torch.stack(means), np.array(thresholds)
