"""The sed-tritrain config: class defaults are the quick profile; ``PROFILES`` changes smoke and full
(sed-tritrain.md §3). Every [reconstruction] of the spec is a key here with the spec's default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from devicelab.core.config import ranged

VARIANTS = ("tritrain", "mean-teacher", "supervised", "tritrain-no-dann", "dann", "oracle")
ABLATIONS = ("tritrain-no-dann", "dann", "oracle")  # A1, A2, A3 (spec §4)


@dataclass
class DesedPaths:
    """Per-subset paths under the ``--data`` root for newer DESED releases ("" keeps the 2019 layout)."""

    synthetic: str = ""
    weak: str = ""
    unlabel_in_domain: str = ""
    validation: str = ""
    public: str = ""


@dataclass
class DesedOptions:
    """How the DESED loader reads ``--data`` (spec §6)."""

    paths: DesedPaths = field(default_factory=DesedPaths)  # metadata tsv overrides
    audio_paths: DesedPaths = field(default_factory=DesedPaths)  # audio folder overrides
    max_missing_fraction: float = ranged(0.2, low=0, high=1)


@dataclass
class SedTritrainConfig:
    """Tri-training with a domain-adversarial branch against the DCASE 2019 task 4 mean-teacher CRNN.

    Park et al., DCASE 2019 Workshop; the networks and baseline follow ``turpaultn/DCASE2019_task4``; the
    quick profile scales the CRNN and the schedule to the offline corpus ``game-events`` (spec §3).
    """

    seed: int = 0  # base seed; seed k of a variant trains with seed + k
    seeds: int = ranged(3, low=1)
    variants: list[str] = field(default_factory=lambda: ["tritrain", "mean-teacher", "supervised"])
    ablations: bool = False  # adds A1 (tritrain-no-dann), A2 (dann), A3 (oracle) (spec §4)
    # front end (spec §2.1): "quick" is 16 kHz, hop 640; "full" the baseline's 44.1 kHz, hop 511, Hamming
    frontend: Literal["quick", "full"] = "quick"  # [reconstruction] for quick / smoke
    # networks (spec §2.2)
    # quick: [8, 16, 32] instead of the spec's [16, 32, 32], halving the cost of a step (FIDELITY.md)
    cnn_channels: list[int] = ranged(low=1, default_factory=lambda: [8, 16, 32])
    cnn_pools: list[list[int]] = ranged(low=1, default_factory=lambda: [[2, 4], [1, 4], [1, 4]])
    gru_hidden: int = ranged(32, low=1)
    gru_layers: int = ranged(1, low=1)
    # quick: dropout 0.2, BN momentum 0.1 and PyTorch's Linear init (full: the baseline's 0.5, 0.99 and
    # N(0, 0.01) [ref]), so that the CRNNs learn within the quick schedule (FIDELITY.md)
    dropout: float = ranged(0.2, low=0, high=1)
    bn_momentum: float = ranged(0.1, low=0, high=1)  # full: 0.99, the baseline's value in PyTorch semantics
    linear_init: Literal["baseline", "torch"] = "torch"  # "baseline": Linear weights N(0, 0.01) [ref]
    domain_hidden: int = ranged(64, low=1)
    labeler_diversity: Literal["orth", "arch", "pooling"] = "orth"  # [reconstruction]
    dann_attach: Literal["cnn_frames", "cnn_pooled"] = "cnn_frames"  # [reconstruction]
    # batch and schedule (spec §2.3, §3)
    batch_synthetic: int = ranged(6, low=1)
    batch_weak: int = ranged(6, low=1)
    batch_unlabeled: int = ranged(12, low=1)
    # quick: 480 steps (spec 300), warm-up and refresh at the spec's ratios 1/3 and 1/6 (FIDELITY.md)
    steps: int = ranged(480, low=1)
    warmup_steps: int = ranged(160, low=0)
    refresh_every: int = ranged(80, low=1)  # pseudo-label refresh period; also the checkpoint period
    lr: float = ranged(3e-3, low=0)  # quick: 3e-3 (the baseline's 1e-3 in full) (FIDELITY.md)
    lambda_orth: float = ranged(0.01, low=0)
    mu: float = ranged(1.0, low=0)  # weight of L_dom
    lambda_max: float = ranged(1.0, low=0)  # GRL schedule's final value (Ganin & Lempitsky)
    schedule: Literal["joint", "alternating"] = "joint"  # [reconstruction]
    gamma_pseudo: float = ranged(
        1.0, low=0
    )  # weight of the pseudo-label terms after warm-up [reconstruction]
    labelers_use_pseudo: bool = False  # [reconstruction]
    mean_teacher: bool = False  # tri-training's Ft also gets the EMA-teacher terms [reconstruction]
    # pseudo-label rule (spec §2.4) [reconstruction]
    tau_clip: float = ranged(0.9, low=0.5, high=1)
    tau_hi: float = ranged(0.7, low=0, high=1)
    tau_lo: float = ranged(0.3, low=0, high=1)
    pool_schedule: Literal["linear", "all"] = "linear"
    pool_start: float = ranged(0.2, low=0, high=1)
    pool_full_at: float = ranged(0.8, low=0, high=1)  # fraction of the steps where the pool reaches 1.0
    # mean-teacher baseline (spec §4) [ref]
    consistency_max: float = ranged(2.0, low=0)
    teacher_noise_scale: float = ranged(0.25, low=0)
    ema_max: float = ranged(0.999, low=0, high=1)
    # post-processing and evaluation (spec §2.5)
    threshold: float = ranged(0.5, low=0, high=1)
    median_window: int = ranged(5, low=1)
    model_selection: Literal["last", "best"] = "last"
    synthetic_valid_fraction: float = ranged(0.2, low=0, high=0.9)  # hold-out for the domain gap / selection
    weak_valid_fraction: float = ranged(0.0, low=0, high=0.9)  # weak hold-out ("best" selection, full)
    holdout_seed: int = 26  # the baseline's random_state
    plot_clips: int = ranged(4, low=0)
    # data (spec §5, §6)
    corpus: str = "game-events"  # used when no --data is given
    desed: DesedOptions = field(default_factory=DesedOptions)
    # execution
    workers: int = ranged(0, low=0)  # stages trained in parallel processes; 0: one per core
    threads: int = ranged(1, low=1)  # torch threads per worker

    PROFILES: ClassVar[dict[str, dict]] = {
        "smoke": {
            "seeds": 1,
            "cnn_channels": [8, 8, 8],
            "gru_hidden": 8,
            "batch_synthetic": 2,
            "batch_weak": 2,
            "batch_unlabeled": 2,
            "steps": 4,
            "warmup_steps": 2,
            "refresh_every": 1,
            "median_window": 3,
            "synthetic_valid_fraction": 0.25,
            "plot_clips": 2,
            "workers": 1,
        },
        "full": {
            "frontend": "full",
            "lr": 1e-3,
            "dropout": 0.5,
            "bn_momentum": 0.99,
            "linear_init": "baseline",
            "cnn_channels": [64, 64, 64],
            "cnn_pools": [[2, 4], [2, 4], [2, 4]],
            "gru_hidden": 64,
            "gru_layers": 2,
            # 100 epochs of floor(1262 / 6) = 210 steps (the weak set less its 20 % hold-out)
            "steps": 21000,
            "warmup_steps": 3150,
            "refresh_every": 210,
            "model_selection": "best",
            "weak_valid_fraction": 0.2,
            "ablations": True,
        },
    }
