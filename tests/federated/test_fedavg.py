"""FedAvg on any torch model: arrays in and out, sample-weighted averaging, hooks that subclasses override."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from devicelab.federated import FederatedConfig, LocalTraining, TorchFedAvg, run_loop
from devicelab.federated.algo import RoundPlan


@dataclass
class Client:
    pid: int
    inputs: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def linear(width: int) -> nn.Module:
    return nn.Linear(width, 2)


def clients(n_per_client=(24, 8)) -> list[Client]:
    g = torch.Generator().manual_seed(0)
    out = []
    for pid, n in enumerate(n_per_client):
        x = torch.randn(n, 4, generator=g)
        out.append(Client(pid, x, (x[:, 0] > 0).long()))
    return out


def test_aggregate_is_the_sample_weighted_mean_of_client_models():
    algo = TorchFedAvg(model=4, build_model=linear, train=LocalTraining(lr=0.1, batch_size=8))
    start = algo.init_global(seed=0)
    assert sorted(start) == ["bias", "weight"]
    plan = algo.plan(1)
    replies = [algo.client_update(start, c, {}, plan) for c in clients()]
    new = algo.aggregate(start, replies, plan)
    expected = (24 * replies[0].arrays["weight"] + 8 * replies[1].arrays["weight"]) / 32
    np.testing.assert_allclose(new["weight"], expected, rtol=1e-6)
    assert not np.allclose(new["weight"], start["weight"])  # the clients trained


class KeepBiasLocal(TorchFedAvg):
    """A variant through hooks only: the bias is neither sent nor trained."""

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        return {"weight"}

    def optimised_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return [model.weight]


def test_subclass_hooks_decide_what_travels_and_trains():
    algo = KeepBiasLocal(model=4, build_model=linear)
    start = algo.init_global(seed=0)
    replies = [algo.client_update(start, c, {}, algo.plan(1)) for c in clients()]
    assert all(set(r.arrays) == {"weight"} for r in replies)
    new = algo.aggregate(start, replies, algo.plan(1))
    np.testing.assert_array_equal(new["bias"], start["bias"])


def test_loop_engine_learns_and_evaluates_on_the_server():
    data = clients((64, 64))
    test_x = torch.randn(128, 4, generator=torch.Generator().manual_seed(1))
    algo = TorchFedAvg(
        model=4,
        build_model=linear,
        rounds=5,
        train=LocalTraining(lr=0.2, batch_size=16, weight_decay=0.0),
        eval_data=(test_x, (test_x[:, 0] > 0).long()),
    )
    cfg = FederatedConfig(num_rounds=5, num_partitions=2, seed=0)
    result = run_loop(algo, lambda pid: data[pid], cfg)
    assert result.rounds[-1].server["acc-global"] > 80.0


def test_a_model_is_needed():
    with pytest.raises(ValueError, match="build_model"):
        TorchFedAvg().init_global(0)
