"""The fed-ua config: class defaults are the quick profile; ``PROFILES`` changes smoke and full (§3, §7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from devicelab.core.config import ranged

CLAIM_VARIANTS = ("fedua", "naive", "fedaws", "central")  # trained with every claim seed


@dataclass
class FedUAConfig:
    """FedUA against naive positive-only FedAvg, FedAwS and centralised softmax (spec §3, §4, §7)."""

    corpus: str = (
        "synth-speakers"  # offline corpus; "synthetic" = generated feature speakers; --data overrides
    )
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # claim-bearing runs
    report_seeds: list[int] = field(default_factory=lambda: [0])  # reported-only runs
    # users (spec §3): original + late joiners (enter at join_round) + unseen
    original_users: int = ranged(100, low=1)
    late_users: int = ranged(20, low=0)
    join_round: int = ranged(267, low=0)  # two thirds of the rounds, as the spec's 80 of 120
    unseen_users: int = ranged(40, low=0)  # 0: every unseen speaker available
    unseen_from_dev: bool = False  # VoxCeleb1: the dev speakers left over are unseen users too
    warmup_sessions: int = ranged(1, low=1)
    test_sessions: int = ranged(1, low=1)
    # features and model (spec §3)
    n_mels: int = ranged(40, low=8)
    crop_s: float = ranged(1.5, low=0.2)
    train_crop_frames: int = ranged(
        100, low=0
    )  # random training window (frames), every variant; 0: whole crop
    channels: int = ranged(64, low=4)
    embed_dim: int = ranged(64, low=2)
    # FedUA (spec §2)
    code_length: int = ranged(64, low=2)  # c
    codebook: Literal["random", "bch"] = "random"
    bch_n: int = 63  # FedUV variant of the quick report: BCH(63, 30)
    bch_k: int = 30
    output_norm: Literal["none", "tanh", "l2"] = "l2"  # o = √c·Wg/‖Wg‖, so s_u = cos(v_u, Wg)
    loss: Literal["hinge", "bce"] = "hinge"
    q: float = ranged(0.9, low=0.01, high=1.0)
    # federated training (spec §2.4, §3); quick recipe: many users a round, one local step each (FIDELITY.md)
    rounds: int = ranged(400, low=1)
    fraction: float = ranged(0.2, low=0.001, high=1.0)
    local_epochs: int = ranged(1, low=1)
    batch_size: int = ranged(5, low=2)
    local_examples: int = ranged(5, low=0)  # examples a client trains on per round (seeded draw); 0: all
    lr: float = ranged(0.5, low=0)
    # FedAwS (spec §4)
    fedaws_margin: float = 0.9
    fedaws_nu: float = 0.9
    fedaws_lr: float = ranged(0.1, low=0)
    # centralised softmax (spec §4)
    central_epochs: int = ranged(40, low=1)
    central_batch_size: int = ranged(64, low=2)
    central_lr: float = ranged(0.1, low=0)
    central_schedule: Literal["constant", "cosine"] = "cosine"  # learning rate over the epochs
    central_weight_decay: float = ranged(5e-4, low=0)
    central_label_smoothing: float = ranged(0.0, low=0, high=0.5)
    central_band_mask: int = ranged(0, low=0)  # frequency masking: up to this many mel bands per example
    # reported only (spec §7): code-length curve and FedUV at matched c
    code_lengths: list[int] = ranged(low=2, default_factory=lambda: [16, 128])  # spec: 16, 32, 128 (time)
    report_bch: bool = True
    privacy_probe: bool = True  # codeword recovery from one client's ΔW and from a round aggregate
    flower_check_rounds: int = ranged(3, low=0)  # 0: no Flower cross-check
    flower_check_users: int = ranged(8, low=2)
    # execution
    client_threads: int = ranged(1, low=1)
    workers: int = ranged(0, low=0)  # stages in parallel processes; 0: one per core

    PROFILES: ClassVar[dict[str, dict]] = {
        "smoke": {
            "corpus": "synthetic",
            "seeds": [0],
            "original_users": 12,
            "late_users": 4,
            "join_round": 3,
            "unseen_users": 8,
            "channels": 16,
            "embed_dim": 16,
            "code_length": 16,
            "train_crop_frames": 16,
            "bch_n": 15,
            "bch_k": 11,
            "rounds": 4,
            "fraction": 0.5,
            "central_epochs": 2,
            "code_lengths": [8],
            "flower_check_rounds": 0,
            "workers": 1,
        },
        "full": {
            "original_users": 1000,
            "late_users": 100,
            "join_round": 2250,
            "unseen_users": 0,
            "unseen_from_dev": True,
            "test_sessions": 2,
            "n_mels": 64,
            "crop_s": 2.0,
            "embed_dim": 256,
            "code_length": 128,
            "bch_n": 127,
            "bch_k": 64,
            "train_crop_frames": 0,
            "rounds": 3000,
            "fraction": 0.05,
            "batch_size": 16,
            "local_examples": 0,
            "lr": 0.05,
            "code_lengths": [32, 64, 256],
            "report_seeds": [0, 1, 2],
        },
    }
