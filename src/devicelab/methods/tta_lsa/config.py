"""The tta-lsa config: class defaults are the quick profile; ``PROFILES`` changes smoke and full (spec §4).

The adapter's shape and the two trainings are the library's own dataclasses (:class:`AdapterConfig`,
:class:`SourceTraining`, :class:`AdapterTraining`). Also the run grid the config describes: the (TTA method,
head) variants of spec §5 and their names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from devicelab.core.config import ConfigError, ranged
from devicelab.data.corruptions import CORRUPTIONS, FAITHFUL_CORRUPTIONS
from devicelab.methods.tta_lsa.adapter import AdapterConfig
from devicelab.methods.tta_lsa.data import target_prior
from devicelab.methods.tta_lsa.heads import HEAD_NAMES
from devicelab.methods.tta_lsa.training import AdapterTraining, SourceTraining
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY

QUICK_CORRUPTIONS = ["gaussian_noise", "impulse_noise", "defocus_blur", "contrast", "fog", "jpeg_compression"]
PAIRED_METHODS = ("bn-adapt", "tent", "eata")  # the three pairs of C1–C3


@dataclass
class SourceConfig:
    """The long-tailed source set and the source backbone (spec §4); trained as ``source_training`` says."""

    backbone: Literal["cnn-tiny", "glyphnet"] = "glyphnet"
    domains: list[str] = field(default_factory=lambda: ["serif", "sans", "mono", "hand", "decor"])
    rho: float = ranged(10.0, low=1.0)  # ρ_s: forward long tail, n_k = ⌊n_max · ρ^(−r_k)⌋
    n_max: int = ranged(1000, low=1)
    class_order_seed: int = -1  # -1: class 0 is the head; otherwise a seeded permutation of head ranks


@dataclass
class StreamConfig:
    """Test domains: corruption × severity × target prior (spec §4, §6.3)."""

    corruptions: list[str] = field(default_factory=lambda: list(QUICK_CORRUPTIONS))
    severities: list[int] = ranged(low=1, high=5, default_factory=lambda: [5])
    # forward / backward: LT with ρ_s; forward-50: explicit ratio; uniform; dirichlet-1.0-0: Dir(α=1), draw 0
    targets: list[str] = field(default_factory=lambda: ["forward", "uniform", "backward"])
    size: int = 1000  # samples per domain (constant-size); 0 = "max" (every sample of the largest class)
    per_class: int = ranged(300, low=1)  # glyph-digits-c images per class and severity (N = 10·per_class)
    order: Literal["iid", "dirichlet"] = "iid"
    order_beta: float = 0.1
    batch_size: int = ranged(64, low=1)
    reset: Literal["domain", "continual"] = "domain"


@dataclass
class TTAConfig:
    """The TTA methods, heads and prior estimate (spec §3.5, §3.7, §3.8, §5)."""

    methods: list[str] = field(default_factory=lambda: ["source", "bn-adapt", "tent", "eata"])
    heads: list[str] = field(default_factory=lambda: ["plain", "lsa", "logit"])
    oracle_methods: list[str] = field(default_factory=lambda: ["tent"])  # + lsa-oracle, logit-oracle
    frozen_methods: list[str] = field(default_factory=lambda: ["tent"])  # + lsa with π̂ frozen at π_s
    steps: int = ranged(1, low=1)
    lr: float = ranged(1e-3, low=0)
    estimator: Literal["ema", "ema_em", "batch"] = "ema"
    momentum: float = ranged(0.9, low=0, high=1)
    eps: float = ranged(1e-3, low=0)
    eata_d_margin: float = ranged(0.4, low=0)
    eata_fisher_alpha: float = ranged(1.0, low=0)
    fisher_samples: int = ranged(2000, low=1)
    sar_rho: float = ranged(0.05, low=0)
    lame_knn: int = ranged(5, low=1)


@dataclass
class TTALSAConfig:
    """tta-lsa: defaults are the quick profile (spec §4)."""

    seed: int = 0
    seeds: int = ranged(8, low=1)  # spec §4: 3; quick spends its time budget on seeds (FIDELITY.md)
    glyph_root: str = ""  # a folder in the glyph-digits layout; "" = the built glyph-digits corpus
    workers: int = ranged(0, low=0)  # stages run in parallel processes; 0: one per core
    threads: int = ranged(1, low=1)  # torch threads per worker
    source: SourceConfig = field(default_factory=SourceConfig)
    source_training: SourceTraining = field(default_factory=SourceTraining)
    # g_φ (spec §3.2–3.3); rho_max 0 stands for max(100, 2·ρ_s)
    adapter: AdapterConfig = field(default_factory=lambda: AdapterConfig(rho_max=0.0))
    adapter_training: AdapterTraining = field(default_factory=AdapterTraining)  # spec §3.4
    stream: StreamConfig = field(default_factory=StreamConfig)
    tta: TTAConfig = field(default_factory=TTAConfig)

    PROFILES: ClassVar[dict[str, dict]] = {
        # sized for the built smoke corpus (6 training images per class and domain); the tests run the spec's
        # smoke sizes (256 samples per domain, batch 64; n_max 30) on a generated fixture
        "smoke": {
            "seeds": 1,
            "source.domains": ["serif", "sans", "mono"],
            "source.n_max": 18,
            # the built smoke corpus holds 18 images per class, all in the source set: no held-out draw fits
            "adapter_training.data": "source",
            "source_training.epochs": 1,
            "adapter_training.steps": 50,
            "stream.corruptions": ["gaussian_noise", "contrast"],
            "stream.targets": ["uniform", "backward"],
            "stream.size": 48,
            "stream.per_class": 12,
            "stream.batch_size": 16,
            "tta.methods": ["tent"],
            "tta.oracle_methods": [],
            "tta.frozen_methods": [],
            "tta.fisher_samples": 128,
        },
        "full": {
            "seeds": 5,
            "source.rho": 100.0,
            "source.n_max": 5000,
            "source_training.epochs": 200,
            "source_training.optimizer": "sgd",
            "source_training.lr": 0.1,
            "source_training.weight_decay": 5e-4,
            "adapter_training.steps": 10000,
            "stream.corruptions": list(FAITHFUL_CORRUPTIONS),
            "stream.targets": [
                "forward",
                "uniform",
                "backward",
                "forward-10",
                "forward-50",
                "backward-10",
                "backward-50",
                "dirichlet-1.0-0",
                "dirichlet-1.0-1",
                "dirichlet-1.0-2",
            ],
            "stream.size": 0,
            "stream.per_class": 1000,
            "tta.methods": ["source", "bn-adapt", "tent", "eata", "sar", "lame"],
            "tta.oracle_methods": ["source", "bn-adapt", "tent", "eata", "sar", "lame"],
            "tta.frozen_methods": ["source", "bn-adapt", "tent", "eata", "sar", "lame"],
        },
    }


def variant_name(method: str, head: str) -> str:
    """``tent`` for the plain head, ``tent+lsa`` otherwise (the spec's notation)."""
    return method if head == "plain" else f"{method}+{head}"


def parse_variant(name: str) -> tuple[str, str]:
    """``tent+lsa`` -> ``("tent", "lsa")``, ``tent`` -> ``("tent", "plain")`` (see variant_name)."""
    method, _, head = name.partition("+")
    return method, head or "plain"


def variants(cfg: TTALSAConfig) -> list[tuple[str, str]]:
    """(method, head) pairs of the run grid (spec §5)."""
    out = [(m, h) for m in cfg.tta.methods for h in cfg.tta.heads]
    out += [(m, h) for m in cfg.tta.oracle_methods for h in ("lsa-oracle", "logit-oracle")]
    out += [(m, "lsa-frozen") for m in cfg.tta.frozen_methods]
    seen, unique = set(), []
    for v in out:
        if v not in seen:
            seen.add(v)
            unique.append(v)
    return unique


def validate(cfg: TTALSAConfig) -> None:
    """Check the names a run needs before any work starts (TTA methods, heads, targets, corruptions); errors
    name the config key and the choices. Ranges are checked when the config is built (``ranged``)."""
    for key in ("methods", "oracle_methods", "frozen_methods"):
        for method in getattr(cfg.tta, key):
            if method not in TTA_REGISTRY.names():
                raise ConfigError(
                    f"tta.{key}: unknown TTA method {method!r}; valid: {', '.join(TTA_REGISTRY.names())}"
                )
    for head in cfg.tta.heads:
        if head not in HEAD_NAMES:
            raise ConfigError(f"tta.heads: unknown head {head!r}; valid: {', '.join(HEAD_NAMES)}")
    for target in cfg.stream.targets:
        try:
            target_prior(target, 10, cfg.source.rho, np.arange(10), 0)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    for corruption in cfg.stream.corruptions:
        if corruption not in CORRUPTIONS:
            raise ConfigError(
                f"stream.corruptions: unknown corruption {corruption!r}; valid: {', '.join(CORRUPTIONS)}"
            )
