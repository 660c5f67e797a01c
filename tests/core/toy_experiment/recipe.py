"""Training one toy stage: SGD with momentum and a step schedule, checkpointed every epoch."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from devicelab.core.seeding import seed_everything, torch_generator
from devicelab.core.stages import Stage
from devicelab.core.training import fit
from devicelab.metrics import accuracy, predict

from .data import ToyTask
from .model import build_model

if TYPE_CHECKING:
    from devicelab.core.run import RunContext


def width_of(variant: str) -> int:
    """``"w16"`` -> 16."""
    return int(variant.removeprefix("w"))


def train_stage(task: ToyTask, stage: Stage, ctx: RunContext) -> dict[str, Any]:
    """Train the model of ``stage.variant`` with ``stage.seed``; its test accuracy (%) and last loss."""
    config = ctx.config
    seed_everything(stage.seed)
    model = build_model(width_of(stage.variant), config.activation)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = task.train_x, task.train_y

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        order = torch.randperm(len(x), generator=torch_generator(stage.seed, epoch))
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
        checkpoint=ctx.checkpoint(stage.name),
        log=ctx.log,
        desc=stage.name,
    )
    return {
        "accuracy": accuracy(predict(model, task.test_x), task.test_y),
        "final_loss": history[-1]["loss"],
    }
