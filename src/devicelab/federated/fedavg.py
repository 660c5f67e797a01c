"""FedAvg of a PyTorch model as a pure federated algorithm (McMahan et al. 2017), with hooks for variants.

:class:`TorchFedAvg` implements :class:`devicelab.federated.algo.FedAlgorithm` for any ``nn.Module``: the
global model travels as its state dict in numpy arrays (:func:`model_arrays` / :func:`load_arrays`), clients
run SGD for ``local_epochs`` and the server averages the replies weighted by sample count. A variant
(FedProx, FedBN, FedSR, FedFD, ...) subclasses it and overrides hooks, never the loop:

- what is sent: :meth:`~TorchFedAvg.wire_keys`; how it is averaged: :meth:`~TorchFedAvg.aggregate`;
- what a client trains: :meth:`~TorchFedAvg.optimised_parameters`; its loss: :meth:`~TorchFedAvg.loss`,
  with per-round :meth:`~TorchFedAvg.round_context` and :meth:`~TorchFedAvg.after_backward`;
- what stays on a client: :meth:`~TorchFedAvg.local_start` / :meth:`~TorchFedAvg.local_state`;
- the server's check: :meth:`~TorchFedAvg.server_eval`.

Batch order comes from the stream ``"data"`` of ``torch_generator(seed, round, pid, ...)``, so the loop and
Flower engines produce the same arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.federated.algo import Arrays, ClientReply, RoundPlan, torch_generator, weighted_average

METRIC_KEYS = frozenset({"train-loss", "train-acc"})


class ClientDataset(Protocol):
    """One client's data: its partition id, ``inputs`` (N, ...) and ``labels`` (N,)."""

    pid: int
    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int: ...


def model_arrays(model: nn.Module) -> Arrays:
    """The full state dict as numpy arrays (sorted keys; BN buffers included)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in sorted(model.state_dict().items())}


def load_arrays(model: nn.Module, arrays: Arrays) -> None:
    """Load a complete numpy state dict into ``model`` (strict)."""
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}, strict=True)


@dataclass
class LocalTraining:
    """Client optimisation: SGD with momentum and weight decay, ``local_epochs`` over the local data."""

    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 32
    local_epochs: int = 1


@dataclass
class TorchFedAvg:
    """FedAvg over the whole state dict of ``build_model(model)``, weighted by sample count.

    ``model`` is what ``build_model`` takes (a config, or None); ``eval_data`` = (inputs, labels) held by the
    server only.
    """

    model: Any = None
    train: LocalTraining = field(default_factory=LocalTraining)
    rounds: int = 12
    seed: int = 0
    eval_data: tuple[torch.Tensor, torch.Tensor] | None = None
    eval_batch: int = 256
    name: str = "fedavg"
    metric_keys: frozenset[str] = METRIC_KEYS
    stages: tuple[str, ...] = ("train",)
    build_model: Callable[[Any], nn.Module] | None = None

    def new_model(self) -> nn.Module:
        """A fresh model from ``build_model(model)``."""
        if self.build_model is None:
            raise ValueError(f"{type(self).__name__}: give build_model, the callable that builds the model")
        return self.build_model(self.model)

    # -- protocol -----------------------------------------------------------------------------------------
    @property
    def num_rounds(self) -> int:
        return self.rounds

    def init_global(self, seed: int) -> Arrays:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return model_arrays(self.new_model())

    def plan(self, round: int) -> RoundPlan:
        return RoundPlan(round, "train", self.seed)

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        """The state-dict keys clients send and the server averages (default: all)."""
        return set(self.state_keys())

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays:
        return weighted_average(global_arrays, replies, self.wire_keys(plan))

    def client_update(
        self, global_arrays: Arrays, data: ClientDataset, state: Arrays, plan: RoundPlan
    ) -> ClientReply:
        model = self.new_model()
        load_arrays(model, self.local_start(global_arrays, state))
        context = self.round_context(model, global_arrays, data, plan)
        model.train()
        opt = torch.optim.SGD(
            self.optimised_parameters(model),
            lr=self.train.lr,
            momentum=self.train.momentum,
            weight_decay=self.train.weight_decay,
        )
        loss_sum, correct, seen = self.run_epochs(model, opt, data, plan, context)
        return self.reply(model, data, plan, loss_sum, correct, seen)

    def reply(
        self,
        model: nn.Module,
        data: ClientDataset,
        plan: RoundPlan,
        loss_sum: float,
        correct: int,
        seen: int,
        keep_state: bool = True,
    ) -> ClientReply:
        """The client's answer: its wire arrays, sample count, mean loss and accuracy, and local state."""
        arrays = model_arrays(model)
        return ClientReply(
            {k: arrays[k] for k in sorted(self.wire_keys(plan))},
            len(data),
            {"train-loss": loss_sum / max(seen, 1), "train-acc": correct / max(seen, 1)},
            state=self.local_state(model, arrays) if keep_state else {},
        )

    def server_eval(self, arrays: Arrays, plan: RoundPlan) -> dict[str, float]:
        """Top-1 accuracy (%) of the global model on ``eval_data`` (``acc-global``); empty without it."""
        if self.eval_data is None:
            return {}
        model = self.new_model()
        load_arrays(model, arrays)
        model.eval()
        inputs, labels = self.eval_data
        correct = 0
        with torch.no_grad():
            for start in range(0, len(labels), self.eval_batch):
                logits = model(inputs[start : start + self.eval_batch])
                correct += int((logits.argmax(1) == labels[start : start + self.eval_batch]).sum())
        return {"acc-global": 100.0 * correct / max(len(labels), 1)}

    # -- hooks --------------------------------------------------------------------------------------------
    def optimised_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters the client's SGD updates (default: all)."""
        return list(model.parameters())

    def local_start(self, global_arrays: Arrays, state: Arrays) -> Arrays:
        """The arrays a client starts its round from (FedBN keeps its own BN layers)."""
        return global_arrays

    def local_state(self, model: nn.Module, arrays: Arrays) -> Arrays:
        """What stays on the client after the round."""
        return {}

    def round_context(
        self, model: nn.Module, global_arrays: Arrays, data: ClientDataset, plan: RoundPlan
    ) -> Any:
        """Whatever :meth:`loss` needs for the round (FedProx: the global weights)."""
        return None

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any, pid: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits of the plain pass) for one batch."""
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    def after_backward(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, plan: RoundPlan, context: Any
    ) -> None:
        """Extra gradients before the optimiser step."""

    # -- shared machinery ---------------------------------------------------------------------------------
    def state_keys(self) -> list[str]:
        """The model's state-dict keys, sorted (built once)."""
        if not hasattr(self, "_key_cache"):
            self._key_cache = sorted(self.new_model().state_dict())
        return self._key_cache

    def run_epochs(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        data: ClientDataset,
        plan: RoundPlan,
        context: Any,
    ) -> tuple[float, int, int]:
        """``local_epochs`` passes over the data in the order of the stream ``"data"``; returns
        (summed loss, correct, seen)."""
        gen = torch_generator(plan.seed, plan.round, data.pid, "data")
        loss_sum, correct, seen = 0.0, 0, 0
        n, bs = len(data), self.train.batch_size
        for _ in range(self.train.local_epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, bs):
                idx = order[start : start + bs]
                if len(idx) < 2:
                    continue  # BatchNorm needs two samples
                x, y = data.inputs[idx], data.labels[idx]
                loss, logits = self.loss(model, x, y, plan, context, data.pid)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                self.after_backward(model, x, y, plan, context)
                opt.step()
                loss_sum += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += len(idx)
        return loss_sum, correct, seen
