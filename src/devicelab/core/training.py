"""A resumable epoch loop: checkpoint after every epoch, continue exactly where a killed run stopped.

The loop owns nothing but the bookkeeping: the caller's ``train_epoch(epoch)`` does the work and must
draw its data order from a generator keyed by (seed, epoch) (:func:`devicelab.core.seeding.torch_generator`)
so that a resumed epoch sees the same batches. Dropout and augmentation use the global random states,
which the checkpoint restores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from devicelab.core.checkpoint import TrainingCheckpoint
from devicelab.core.progress import progress


class NonFiniteLossError(RuntimeError):
    """A training record (loss, gradient norm, ...) became NaN or infinite; names the stage and epoch.

    ``epoch`` counts from 0 as in :func:`fit`; the message counts from 1, as the progress lines do.
    """

    def __init__(self, stage: str, epoch: int, key: str, value: float, epochs: int | None = None):
        self.stage, self.epoch, self.key, self.value, self.epochs = stage, epoch, key, value, epochs
        of = f"/{epochs}" if epochs else ""
        super().__init__(
            f"stage {stage}: {key} became {value} in epoch {epoch + 1}{of}; training stopped (nothing of "
            "this epoch was saved). Check the input data for NaN/Inf (`devicelab run ... --skip-bad` drops "
            "bad files) or lower the learning rate"
        )

    def __reduce__(self):  # keep the fields when raised in a worker process
        return type(self), (self.stage, self.epoch, self.key, self.value, self.epochs)


def fit(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_epoch: Callable[[int], Mapping[str, float]],
    epochs: int,
    *,
    scheduler: Any = None,
    checkpoint: TrainingCheckpoint | None = None,
    log: Callable[..., None] | None = None,
    desc: str = "train",
) -> list[dict[str, float]]:
    """Run ``train_epoch`` for epochs ``0..epochs-1`` (skipping those a checkpoint says are done).

    Returns the per-epoch records (restored ones included, so the history is the same after a resume).
    Raises :class:`NonFiniteLossError` (before anything of that epoch is checkpointed) when a value of an
    epoch's record is NaN or infinite.
    """
    history: list[dict[str, float]] = []
    start = 0
    if checkpoint is not None:
        loop = checkpoint.restore(model, optimizer, scheduler)
        if loop is not None:
            start, history = int(loop["epoch"]) + 1, list(loop["history"])
    for epoch in progress(range(start, epochs), desc=desc, total=epochs, initial=start, unit="epoch"):
        model.train()
        record = {"epoch": epoch, **{k: float(v) for k, v in train_epoch(epoch).items()}}
        for key, value in record.items():
            if not math.isfinite(value):
                raise NonFiniteLossError(desc, epoch, key, value, epochs)
        history.append(record)
        if log is not None:
            log(stage=desc, **record)
        if checkpoint is not None:
            checkpoint.save(model, optimizer, scheduler, loop={"epoch": epoch, "history": history})
    return history
