"""The toy config: class defaults are the quick profile; ``PROFILES`` lists what smoke and full change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal


@dataclass
class ToyConfig:
    """Two-layer perceptrons of several widths on a seeded two-class problem."""

    seed: int = 0  # base seed; seed k of a width trains with seed + k
    seeds: int = 2
    epochs: int = 6
    lr: float = 0.1
    activation: Literal["relu", "tanh"] = "relu"
    sleep_per_epoch_s: float = 0.0  # slows training down for the kill-and-resume tests
    widths: list[int] = field(default_factory=lambda: [4, 16])
    # execution
    workers: int = 1  # stages trained in parallel processes; 0: one per core
    threads: int = 1  # torch threads per worker

    PROFILES: ClassVar[dict[str, dict]] = {"smoke": {"epochs": 4}, "full": {"epochs": 20}}
