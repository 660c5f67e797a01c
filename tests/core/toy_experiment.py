"""A tiny experiment used by the tests of the contract (registered with DEVICELAB_PLUGINS)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from devicelab.core.claims import Claim
from devicelab.core.experiment import Experiment
from devicelab.core.seeding import seed_everything, torch_generator
from devicelab.core.training import fit


@dataclass
class ToyConfig:
    seed: int = 0
    seeds: int = 2
    epochs: int = 6
    hidden: int = 16
    lr: float = 0.1
    sleep_per_epoch_s: float = 0.0
    widths: list[int] = field(default_factory=lambda: [4, 16])

    PROFILES = {"smoke": {"epochs": 4}, "full": {"epochs": 20}}


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1234 + seed)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    return x, y


def _train_one(config: ToyConfig, ctx, width: int, seed: int) -> dict:
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Dropout(0.2), nn.Linear(width, 2))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = _data(seed)

    def train_epoch(epoch: int) -> dict:
        order = torch.randperm(len(x), generator=torch_generator(seed, epoch))
        total = 0.0
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        sched.step()
        time.sleep(config.sleep_per_epoch_s)
        return {"loss": total}

    history = fit(
        model,
        opt,
        train_epoch,
        config.epochs,
        scheduler=sched,
        checkpoint=ctx.checkpoint(f"w{width}-seed{seed}"),
        log=ctx.log,
        desc=f"w{width}",
    )
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    return {"accuracy": acc, "final_loss": history[-1]["loss"]}


def run(config: ToyConfig, ctx) -> dict:
    metrics: dict[str, list[float]] = {}
    for width in config.widths:
        for s in range(config.seeds):
            r = ctx.stage(
                f"w{width}-seed{s}", lambda w=width, s=s: _train_one(config, ctx, w, config.seed + s)
            )
            for k, v in r.items():
                metrics.setdefault(f"w{width}.{k}", []).append(v)
    return metrics


EXPERIMENT = Experiment(
    name="toy",
    paper="A toy problem for testing the experiment contract",
    config_cls=ToyConfig,
    run=run,
    claims=(
        Claim(
            "T1",
            "wide beats narrow",
            method="w16.accuracy",
            baseline="w4.accuracy",
            margin=-1.0,
            profiles=("smoke", "quick"),
        ),
    ),
)
