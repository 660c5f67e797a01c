"""FedUA and its federated baselines as pure algorithms on :class:`devicelab.federated.fedavg.TorchFedAvg`.

- :class:`FedUA` (FedUA §3, arXiv 2007.04618; FedUV's ECC codewords, arXiv 2104.08776, as ``codebook="bch"``):
  each user trains the shared model towards its secret codeword with the positive-only loss; the codeword and
  the warm-up threshold stay in the client state and never cross the wire.
- :class:`NaiveFedAvg`: a softmax row per user, positive-only cross-entropy (expected to collapse).
- :class:`FedAwS` (Yu et al., ICML 2020, arXiv 2004.10342): client-side positive loss on its own class
  embedding, server-side spread-out step. Its replies carry a user embedding, so it needs
  ``privacy_exempt=True``.

All of them share :class:`PositiveOnlyFedAvg`: the user pool that grows when late users join at
``join_round`` (spec §2.6), the sampling of ⌈f·N_active⌉ users per round, and the warm-up stage after the last
round in which every user sets its own threshold τ_u (spec §2.5). Nothing here imports Flower.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.federated.algo import (
    Arrays,
    ClientReply,
    RoundPlan,
    sample_partitions,
    stream_rng,
    torch_generator,
    weighted_average,
)
from devicelab.federated.fedavg import LocalTraining, TorchFedAvg, load_arrays
from devicelab.methods.fed_ua.codes import BCHCode, bch_codeword, simulated_codeword
from devicelab.methods.fed_ua.data import ClientData
from devicelab.methods.fed_ua.loss import LossKind, codeword_loss, codeword_scores
from devicelab.methods.fed_ua.model import ModelConfig, build_model

WARMUP = "warmup"
EMBEDDINGS_KEY = "class_embeddings"


class PrivacyAuditError(RuntimeError):
    """A reply would carry something private (a user embedding) and the algorithm is not privacy-exempt."""


class UserData(Protocol):
    """One user's local data: partition id, training inputs (N, F, T), labels (N,), warm-up inputs."""

    pid: int
    inputs: torch.Tensor
    labels: torch.Tensor
    warmup: torch.Tensor

    def __len__(self) -> int: ...


def random_crop(x: torch.Tensor, frames: int, generator: torch.Generator | None) -> torch.Tensor:
    """One random window of ``frames`` frames of a (N, F, T) batch, the same offset for the whole batch
    (training only; 0 or T ≤ frames: ``x`` unchanged). Spec §3: random training crops, whole crop at test."""
    if frames <= 0 or x.shape[-1] <= frames:
        return x
    offset = int(torch.randint(0, x.shape[-1] - frames + 1, (1,), generator=generator))
    return x[..., offset : offset + frames]


def warmup_threshold(scores: np.ndarray, q: float) -> float:
    """τ_u = quantile(scores, 1 − q, method="lower"): at least a fraction q of the warm-up scores is ≥ τ_u,
    ties included (spec §2.5) [reconstruction of FedUV's "warm-up phase that reaches a desired TPR"]."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("warm-up threshold: no warm-up scores")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"warm-up threshold: q={q} outside (0, 1]")
    return float(np.quantile(scores, 1.0 - q, method="lower"))


@dataclass
class PositiveOnlyFedAvg(TorchFedAvg):
    """FedAvg with one user per client, a growing user pool, ⌈f·N_active⌉ users per round and a warm-up stage.

    Partition ids ``0..original_users-1`` are the original users, the next ``late_users`` join at round
    ``join_round`` (spec §2.6). Round ``rounds + 1`` is the warm-up stage (message type ``train.warmup``):
    every active user scores its warm-up inputs, keeps τ_u in its state and replies with ``num-examples`` and
    ``warmup-tpr`` only, and no arrays.
    """

    original_users: int = 8
    late_users: int = 0
    join_round: int = 0  # 0: no late users
    fraction: float = 0.1  # f: share of the active users sampled per round
    q: float = 0.9  # target TPR of the warm-up thresholds
    crop_frames: int = 0  # > 0: every training batch is a random window of this many frames (spec §3)
    local_examples: int = 0  # > 0: a client trains each round on this many of its examples (seeded draw)
    warmup: bool = True
    privacy_exempt: bool = False
    stages: tuple[str, ...] = ("train", WARMUP)
    metric_keys: frozenset[str] = frozenset({"train-loss", "warmup-tpr"})
    train: LocalTraining = field(
        default_factory=lambda: LocalTraining(lr=0.05, momentum=0.0, weight_decay=0.0, batch_size=10)
    )

    shares_embeddings: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.build_model is None:
            self.build_model = build_model
        if self.late_users and not 1 <= self.join_round <= self.rounds:
            raise ValueError(f"join_round={self.join_round}: late users need 1 ≤ join_round ≤ rounds")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction={self.fraction}: expected 0 < f ≤ 1")
        if self.crop_frames < 0:
            raise ValueError(f"crop_frames={self.crop_frames}: expected ≥ 0 (0: the whole input)")
        if self.local_examples < 0:
            raise ValueError(f"local_examples={self.local_examples}: expected ≥ 0 (0: all local examples)")

    # -- participation ------------------------------------------------------------------------------------
    @property
    def num_users(self) -> int:
        return self.original_users + self.late_users

    @property
    def num_rounds(self) -> int:
        return self.rounds + (1 if self.warmup else 0)

    def active_users(self, round: int) -> list[int]:
        """Partition ids in the sampling pool of ``round``: the original users, plus late ones from
        ``join_round`` on."""
        joined = self.late_users > 0 and round >= self.join_round
        return list(range(self.num_users if joined else self.original_users))

    def plan(self, round: int) -> RoundPlan:
        stage = WARMUP if self.warmup and round > self.rounds else "train"
        return RoundPlan(round, stage, self.seed)

    def partitions_for(self, seed: int, round: int, available: Sequence[int], k: int) -> list[int]:
        """⌈f·N_active(r)⌉ seeded users of the active pool; every active user in the warm-up stage."""
        active = sorted(set(available) & set(self.active_users(min(round, self.rounds))))
        if self.plan(round).stage == WARMUP:
            return active
        return sample_partitions(seed, round, active, max(1, math.ceil(self.fraction * len(active))))

    # -- wire ---------------------------------------------------------------------------------------------
    def wire_keys(self, plan: RoundPlan) -> set[str]:
        return set() if plan.stage == WARMUP else set(self.state_keys())

    def check_privacy(self) -> None:
        """Reject replies that carry user embeddings unless the algorithm is flagged privacy-exempt."""
        if self.shares_embeddings and not self.privacy_exempt:
            raise PrivacyAuditError(
                f"{self.name}: replies carry a user embedding; run it with privacy_exempt=True "
                "(reported as 'shares embeddings with the server')"
            )

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays:
        self.check_privacy()
        if plan.stage == WARMUP:
            return dict(global_arrays)
        return weighted_average(global_arrays, replies, self.wire_keys(plan))

    # -- client -------------------------------------------------------------------------------------------
    def client_secret(self, state: Arrays, pid: int) -> Arrays:
        """The client's private state on its first call (FedUA: its codeword)."""
        return state

    def user_scores(self, model: nn.Module, x: torch.Tensor, state: Arrays, pid: int) -> torch.Tensor:
        """Scores (N,) of inputs ``x`` against user ``pid``'s reference (higher = same user)."""
        raise NotImplementedError

    def user_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, outputs) of one local batch of user ``pid`` (after the random crop)."""
        raise NotImplementedError

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_loss(
            model, random_crop(x, self.crop_frames, getattr(self, "_crops", None)), y, plan, context, pid
        )

    def client_update(
        self, global_arrays: Arrays, data: UserData, state: Arrays, plan: RoundPlan
    ) -> ClientReply:
        state = self.client_secret(dict(state), data.pid)
        if plan.stage == WARMUP:
            return self.warmup_reply(global_arrays, data, state)
        data = self.round_examples(data, plan)
        self._secret = state  # read by round_context; lives only for this call
        self._crops = torch_generator(plan.seed, plan.round, data.pid, "crop")
        try:
            reply = super().client_update(global_arrays, data, state, plan)
        finally:
            self._secret, self._crops = {}, None
        reply.metrics.pop("train-acc", None)
        reply.state = dict(state)
        return reply

    def round_examples(self, data: UserData, plan: RoundPlan) -> UserData:
        """The examples a client trains on in this round: all of them, or ``local_examples`` drawn from the
        stream ("subset", seed, round, pid), so both engines draw the same [reconstruction: quick recipe]."""
        if not 0 < self.local_examples < len(data):
            return data
        idx = torch.randperm(len(data), generator=torch_generator(plan.seed, plan.round, data.pid, "subset"))
        idx = idx[: self.local_examples].sort().values
        return ClientData(data.pid, data.inputs[idx], data.labels[idx], data.warmup)  # a round's share

    def warmup_reply(self, global_arrays: Arrays, data: UserData, state: Arrays) -> ClientReply:
        """Score the warm-up inputs with the final model, keep τ_u in the state, reply with counts only."""
        model = self.new_model()
        load_arrays(model, global_arrays)
        model.eval()
        with torch.no_grad():
            scores = self.user_scores(model, data.warmup, state, data.pid).double().numpy()
        tau = warmup_threshold(scores, self.q)
        state = {**state, "threshold": np.array(tau, dtype=np.float64)}
        return ClientReply({}, int(len(scores)), {"warmup-tpr": float(np.mean(scores >= tau))}, state=state)


@dataclass
class FedUA(PositiveOnlyFedAvg):
    """FedUA: secret codewords, a fixed-width output layer and the positive-only loss (FedUA §3, spec §2).

    ``codebook="random"``: v_u uniform in {±1}^c (FedUA); ``"bch"``: BCH(c, bch_k) codeword from the
    server-assigned ID (= partition id) and the user's own random bits (FedUV-style) [reconstruction].
    ``loss_kind="pos+neg"`` is an oracle that reads every codeword: loop engine only, privacy-exempt.
    """

    name: str = "fedua"
    codebook: Literal["random", "bch"] = "random"
    code_length: int = 64  # c (BCH: n)
    bch_k: int = 30
    max_users: int = 256  # N_max: the IDs take ⌈log2 N_max⌉ message bits
    loss_kind: LossKind = "hinge"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            self.model = ModelConfig(out_dim=self.code_length)
        if self.model.head != "codeword" or self.model.out_dim != self.code_length:
            raise ValueError(f"FedUA: the model needs a codeword head of width c={self.code_length}")
        if self.codebook == "bch":
            BCHCode(self.code_length, self.bch_k)  # checks (n, k)
        if self.loss_kind == "pos+neg" and not self.privacy_exempt:
            raise ValueError(
                "loss 'pos+neg' reads every codeword: it needs privacy_exempt=True (not federated)"
            )

    def draw_codeword(self, pid: int) -> np.ndarray:
        """The codeword user ``pid`` draws on its first call (simulation: stream ("codeword", seed, pid))."""
        if self.codebook == "bch":
            rng = stream_rng(self.seed, 0, pid, "codeword")
            return bch_codeword(BCHCode(self.code_length, self.bch_k), pid, self.max_users, rng)
        return simulated_codeword(self.seed, pid, self.code_length)

    def client_secret(self, state: Arrays, pid: int) -> Arrays:
        if "codeword" not in state:
            state["codeword"] = self.draw_codeword(pid)
        return state

    def round_context(self, model: nn.Module, global_arrays: Arrays, data: UserData, plan: RoundPlan) -> Any:
        return torch.from_numpy(np.asarray(self._secret["codeword"], dtype=np.float32))

    def user_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = model(x)  # (N, c)
        codebook = None
        if self.loss_kind == "pos+neg":
            codebook = torch.from_numpy(np.stack([self.draw_codeword(p) for p in range(self.num_users)]))
        return codeword_loss(outputs, context, self.loss_kind, codebook, pid), outputs

    def user_scores(self, model: nn.Module, x: torch.Tensor, state: Arrays, pid: int) -> torch.Tensor:
        return codeword_scores(model(x), torch.from_numpy(np.asarray(state["codeword"], dtype=np.float32)))


@dataclass
class NaiveFedAvg(PositiveOnlyFedAvg):
    """Naive positive-only FedAvg: softmax over one row per user (late joiners pre-allocated); each client
    minimises the cross-entropy of its single label. Score: log-probability of the user's class (spec §4)."""

    name: str = "naive"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            self.model = ModelConfig(head="softmax", out_dim=self.num_users)

    def user_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)
        return F.cross_entropy(logits, torch.full_like(y, pid)), logits

    def user_scores(self, model: nn.Module, x: torch.Tensor, state: Arrays, pid: int) -> torch.Tensor:
        return F.log_softmax(model(x), dim=1)[:, pid]


def spreadout_step(embeddings: np.ndarray, nu: float, lr: float) -> np.ndarray:
    """One SGD step on Σ_{i≠j} max(0, ν − ||w_i − w_j||)², then every row renormalised (FedAwS §4)."""
    w = torch.tensor(embeddings, dtype=torch.float64, requires_grad=True)
    diff = w[:, None, :] - w[None, :, :]
    dist = torch.sqrt((diff**2).sum(-1) + 1e-12)
    off = ~torch.eye(len(w), dtype=torch.bool)
    torch.sum(F.relu(nu - dist[off]) ** 2).backward()
    with torch.no_grad():
        out = F.normalize(w - lr * w.grad, dim=1)
    return out.numpy().astype(embeddings.dtype)


@dataclass
class FedAwS(PositiveOnlyFedAvg):
    """FedAwS (Yu et al. 2020): the client minimises (max(0, 0.9 − cos(g(x), w_u)))² over θ and its own row;
    the server averages θ, writes back each returned row, takes one spread-out step and renormalises
    [reconstruction of the details, spec §4]. Replies carry w_u: ``privacy_exempt=True`` is required."""

    name: str = "fedaws"
    positive_margin: float = 0.9
    spread_nu: float = 0.9
    spread_lr: float = 0.1

    shares_embeddings: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is None:
            self.model = ModelConfig(head="fedaws", out_dim=self.num_users)

    def user_loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        g = model(x)  # (N, d)
        cos = F.cosine_similarity(g, model.class_embeddings[pid][None, :], dim=1)
        return (F.relu(self.positive_margin - cos) ** 2).mean(), g

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays:
        self.check_privacy()
        if plan.stage == WARMUP:
            return dict(global_arrays)
        out = weighted_average(global_arrays, replies, self.wire_keys(plan) - {EMBEDDINGS_KEY})
        table = np.array(global_arrays[EMBEDDINGS_KEY], copy=True)
        for reply in replies:
            table[reply.pid] = reply.arrays[EMBEDDINGS_KEY][reply.pid]
        out[EMBEDDINGS_KEY] = spreadout_step(table, self.spread_nu, self.spread_lr)
        return dict(sorted(out.items()))

    def user_scores(self, model: nn.Module, x: torch.Tensor, state: Arrays, pid: int) -> torch.Tensor:
        return F.cosine_similarity(model(x), model.class_embeddings[pid][None, :], dim=1)
