"""The ``tta-lsa`` experiment: label shift adapter around TTA methods under covariate + label shift.

Park et al., "Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts", ICCV 2023.
Spec ``tta-lsa.md``: train a source model on long-tailed data (§4), train the adapter on its cached features
(§3.4), then run every (TTA method × head) over corruption × severity × target-prior streams (§3.6, §5) and
evaluate the pre-registered claims C0–C3 (§8).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from devicelab.core.checkpoint import load_model_weights, save_model
from devicelab.core.claims import Claim
from devicelab.core.config import ConfigError
from devicelab.core.experiment import Experiment
from devicelab.core.progress import progress
from devicelab.core.run import RunContext
from devicelab.core.seeding import child_rng, seed_everything
from devicelab.data.corpora.glyph_digits_c import ensure_glyph_digits_c, load_corrupted, load_pool
from devicelab.data.corruptions import FAITHFUL_CORRUPTIONS
from devicelab.data.datasets.cifar import load_cifar10
from devicelab.methods.tta_lsa import report
from devicelab.methods.tta_lsa.adapter import AdapterConfig, LabelShiftAdapter
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.evaluate import run_stream
from devicelab.methods.tta_lsa.heads import HEAD_NAMES, make_head
from devicelab.methods.tta_lsa.streams import (
    class_counts,
    dirichlet_order,
    dirichlet_prior,
    lt_prior,
    sample_domain_indices,
)
from devicelab.methods.tta_lsa.training import (
    AdapterTraining,
    SourceTraining,
    extract_features,
    images_to_tensor,
    train_adapter,
    train_source,
)
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY, compute_fisher
from devicelab.nn.glyphnet import GlyphNet, GlyphNetConfig
from devicelab.nn.tiny_cnn import TinyCNN, TinyCNNConfig

QUICK_CORRUPTIONS = ["gaussian_noise", "impulse_noise", "defocus_blur", "contrast", "fog", "jpeg_compression"]
PAIRED_METHODS = ("bn-adapt", "tent", "eata")  # the three pairs of C1–C3


@dataclass
class SourceConfig:
    """Long-tailed source set and source training (spec §4)."""

    backbone: Literal["cnn-tiny", "glyphnet"] = "cnn-tiny"
    domains: list[str] = field(default_factory=lambda: ["serif", "sans", "mono", "hand", "decor"])
    rho: float = 10.0  # ρ_s: forward long tail, n_k = ⌊n_max · ρ^(−r_k)⌋
    n_max: int = 1000
    class_order_seed: int = -1  # -1: class 0 is the head; otherwise a seeded permutation of head ranks
    epochs: int = 30
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    loss: Literal["ce", "balanced_softmax"] = "ce"


@dataclass
class AdapterSettings:
    """The label shift adapter g_φ and its training (spec §3.2–3.4)."""

    hidden: int = 128
    descriptor: Literal["scalar", "vector"] = "scalar"
    delta_w: Literal["full", "lowrank", "none"] = "full"
    rank: int = 16
    rho_max: float = 0.0  # 0: max(100, 2·ρ_s)
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    train: Literal["cached", "test_like"] = "cached"


@dataclass
class StreamConfig:
    """Test domains: corruption × severity × target prior (spec §4, §6.3)."""

    corruptions: list[str] = field(default_factory=lambda: list(QUICK_CORRUPTIONS))
    severities: list[int] = field(default_factory=lambda: [5])
    # forward / backward: LT with ρ_s; forward-50: explicit ratio; uniform; dirichlet-1.0-0: Dir(α=1), draw 0
    targets: list[str] = field(default_factory=lambda: ["forward", "uniform", "backward"])
    size: int = 1000  # samples per domain (constant-size); 0 = "max" (every sample of the largest class)
    per_class: int = 300  # glyph-digits-c images per class and severity (N = 10·per_class)
    order: Literal["iid", "dirichlet"] = "iid"
    order_beta: float = 0.1
    batch_size: int = 64
    reset: Literal["domain", "continual"] = "domain"


@dataclass
class TTAConfig:
    """The TTA methods, heads and prior estimate (spec §3.5, §3.7, §3.8, §5)."""

    methods: list[str] = field(default_factory=lambda: ["source", "bn-adapt", "tent", "eata"])
    heads: list[str] = field(default_factory=lambda: ["plain", "lsa", "logit"])
    oracle_methods: list[str] = field(default_factory=lambda: ["tent"])  # + lsa-oracle, logit-oracle
    frozen_methods: list[str] = field(default_factory=lambda: ["tent"])  # + lsa with π̂ frozen at π_s
    steps: int = 1
    lr: float = 1e-3
    estimator: Literal["ema", "ema_em", "batch"] = "ema"
    momentum: float = 0.9
    eps: float = 1e-3
    eata_d_margin: float = 0.4
    eata_fisher_alpha: float = 1.0
    fisher_samples: int = 2000
    sar_rho: float = 0.05
    lame_knn: int = 5


@dataclass
class TTALSAConfig:
    """tta-lsa: defaults are the quick profile (spec §4)."""

    seed: int = 0
    seeds: int = 3
    glyph_root: str = ""  # a folder in the glyph-digits layout; "" = the built glyph-digits corpus
    threads: int = 1
    source: SourceConfig = field(default_factory=SourceConfig)
    adapter: AdapterSettings = field(default_factory=AdapterSettings)
    stream: StreamConfig = field(default_factory=StreamConfig)
    tta: TTAConfig = field(default_factory=TTAConfig)

    PROFILES = {
        # sized for the built smoke corpus (10 images per class and domain); the tests run the spec's smoke
        # sizes (n_max 60, 256 samples per domain, batch 64) on a generated fixture
        "smoke": {
            "seeds": 1,
            "source.domains": ["serif", "sans", "mono"],
            "source.n_max": 18,
            "source.epochs": 1,
            "adapter.steps": 50,
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
            "source.epochs": 200,
            "source.optimizer": "sgd",
            "source.lr": 0.1,
            "source.weight_decay": 5e-4,
            "adapter.steps": 10000,
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


# ---------------------------------------------------------------------------------------------------------
# variants, targets and domains


def variant_name(method: str, head: str) -> str:
    """``tent`` for the plain head, ``tent+lsa`` otherwise (the spec's notation)."""
    return method if head == "plain" else f"{method}+{head}"


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


def target_prior(name: str, num_classes: int, rho_s: float, class_order: np.ndarray, seed: int) -> np.ndarray:
    """The prior of a target: forward / backward (ρ_s), forward-ρ / backward-ρ, uniform, dirichlet-α-draw."""
    parts = name.split("-")
    try:
        if parts[0] in ("forward", "backward") and len(parts) <= 2:
            rho = float(parts[1]) if len(parts) == 2 else rho_s
            return lt_prior(num_classes, rho, parts[0], class_order)
        if name == "uniform":
            return lt_prior(num_classes, 1.0, "uniform", class_order)
        if parts[0] == "dirichlet" and len(parts) == 3:
            return dirichlet_prior(num_classes, float(parts[1]), int(child_rng(seed, name).integers(2**31)))
    except ValueError as e:
        raise ValueError(f"stream.targets: bad target {name!r} ({e})") from None
    raise ValueError(
        f"stream.targets: unknown target {name!r}; use forward, backward, forward-RHO, backward-RHO, "
        "uniform or dirichlet-ALPHA-DRAW"
    )


def shifted_targets(targets: list[str]) -> list[str]:
    """Uniform plus every backward-ρ target (spec §8, "shifted targets")."""
    return [t for t in targets if t == "uniform" or t.startswith("backward")]


def _class_order(cfg: TTALSAConfig, num_classes: int) -> np.ndarray:
    if cfg.source.class_order_seed < 0:
        return np.arange(num_classes)
    return child_rng(cfg.source.class_order_seed, "class-order").permutation(num_classes)


# ---------------------------------------------------------------------------------------------------------
# data


@dataclass
class Pools:
    """What a run reads: the balanced source pool (LT subsets are drawn per seed) and the target folder."""

    source_images: np.ndarray  # (N, 32, 32, 3) uint8, balanced pool
    source_labels: np.ndarray  # (N,)
    c_root: Path  # CIFAR-10-C layout folder
    num_classes: int
    track: str


def prepare_data(cfg: TTALSAConfig, ctx: RunContext) -> Pools:
    """The source pool and the corrupted target folder: glyph-digits(-c), or CIFAR-10(-C) with ``--data``."""
    if ctx.data_path is not None:
        return _cifar_pools(Path(ctx.data_path))
    root = Path(cfg.glyph_root) if cfg.glyph_root else ctx.corpus("glyph-digits")
    try:
        images, labels = load_pool(root, cfg.source.domains, "train")
    except ValueError as e:
        raise ConfigError(f"source.domains: {e}") from None
    c_root = ensure_glyph_digits_c(
        root,
        ctx.profile,
        cfg.stream.corruptions,
        cfg.stream.per_class,
        cfg.source.domains,
        seed=0,
        log=lambda m: ctx.log(event="data", message=m),
    )
    return Pools(images, labels, c_root, int(labels.max()) + 1, "glyph-digits-c")


def _cifar_pools(data: Path) -> Pools:
    """``--data`` holds ``cifar-10-batches-bin/`` (source) and ``CIFAR-10-C/`` (targets)."""
    c_root = data / "CIFAR-10-C" if (data / "CIFAR-10-C").is_dir() else data
    if not (c_root / "labels.npy").is_file():
        raise FileNotFoundError(
            f"{data}: expected CIFAR-10-C/labels.npy (the CIFAR-10-C folder) under --data"
        )
    images, labels = load_cifar10(data / "cifar-10-batches-bin", "train")
    return Pools(np.asarray(images), np.asarray(labels, dtype=np.int64), c_root, 10, "cifar10-c")


def long_tailed_source(pools: Pools, cfg: TTALSAConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the LT source subsample (size="max" rule, seeded) and its class counts."""
    prior = lt_prior(pools.num_classes, cfg.source.rho, "forward", _class_order(cfg, pools.num_classes))
    counts = class_counts(prior, "max", n_max=cfg.source.n_max)
    return sample_domain_indices(pools.source_labels, counts, seed=seed), counts


# ---------------------------------------------------------------------------------------------------------
# per-seed pipeline


class PooledGlyphNet(nn.Module):
    """fed-dg's GlyphNet as a split model: ``features`` = its conv blocks + global average pooling."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        net = GlyphNet(GlyphNetConfig(num_classes=num_classes))
        self.config = net.config
        self.features = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (N, D)
        self.head = net.head
        self.feature_dim = net.num_features
        self.last_stage_names = (f"features.0.{len(net.config.widths) - 1}.bn",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_backbone(name: str, num_classes: int) -> nn.Module:
    """``cnn-tiny`` (default) or ``glyphnet`` (shared with fed-dg), both with ``features`` / ``head``."""
    if name == "cnn-tiny":
        return TinyCNN(TinyCNNConfig(num_classes=num_classes))
    if name == "glyphnet":
        return PooledGlyphNet(num_classes)
    raise ConfigError(f"source.backbone: unknown backbone {name!r}; valid: cnn-tiny, glyphnet")


def source_model(cfg: TTALSAConfig, ctx: RunContext, pools: Pools, seed: int) -> tuple[torch.nn.Module, dict]:
    """Train (or read back) the source model of one seed; returns it and its metadata (class_counts, ...)."""
    path = ctx.run_dir / "checkpoints" / f"source-seed{seed}"
    model = build_backbone(cfg.source.backbone, pools.num_classes)
    if path.with_suffix(".json").exists():
        weights, meta = load_model_weights(path)
        model.load_state_dict(weights)
        return model.eval(), meta
    idx, counts = long_tailed_source(pools, cfg, seed)
    seed_everything(seed)
    model = build_backbone(cfg.source.backbone, pools.num_classes)
    prior = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
    settings = SourceTraining(
        cfg.source.epochs,
        cfg.source.optimizer,
        cfg.source.lr,
        cfg.source.momentum,
        cfg.source.weight_decay,
        cfg.source.batch_size,
        cfg.source.loss,
    )
    x = images_to_tensor(pools.source_images[idx])
    y = torch.as_tensor(pools.source_labels[idx])
    history = train_source(
        model,
        x,
        y,
        prior,
        settings,
        seed,
        checkpoint=ctx.checkpoint(f"source-train-seed{seed}"),
        log=lambda **r: ctx.log(seed=seed, **r),
    )
    meta = {
        "arch": cfg.source.backbone,
        "model_config": dataclasses.asdict(model.config),
        "class_counts": counts.tolist(),
        "rho_s": cfg.source.rho,
        "n_max": cfg.source.n_max,
        "seed": seed,
        "loss": cfg.source.loss,
        "track": pools.track,
        "final_train_acc": history[-1]["train_acc"] if history else None,
    }
    save_model(path, model, meta)
    return model.eval(), meta


def label_shift_adapter(
    cfg: TTALSAConfig, ctx: RunContext, model: torch.nn.Module, pools: Pools, meta: dict, seed: int
) -> LabelShiftAdapter:
    """Train (or read back) the adapter of one seed on the cached features of its LT source set."""
    counts = np.asarray(meta["class_counts"], dtype=np.float64)
    rho_max = cfg.adapter.rho_max or max(100.0, 2.0 * cfg.source.rho)
    config = AdapterConfig(
        cfg.adapter.hidden,
        cfg.adapter.descriptor,
        cfg.adapter.delta_w,
        cfg.adapter.rank,
        rho_max,
        cfg.tta.eps,
    )
    torch.manual_seed(seed + 1)
    adapter = LabelShiftAdapter(
        pools.num_classes, model.feature_dim, torch.as_tensor(counts / counts.sum()), config
    )
    path = ctx.run_dir / "checkpoints" / f"adapter-seed{seed}"
    if path.with_suffix(".json").exists():
        weights, _ = load_model_weights(path)
        adapter.load_state_dict(weights)
        return adapter.eval().requires_grad_(False)
    idx, _ = long_tailed_source(pools, cfg, seed)
    x = images_to_tensor(pools.source_images[idx])
    y = torch.as_tensor(pools.source_labels[idx])
    features = extract_features(model, x) if cfg.adapter.train == "cached" else None
    settings = AdapterTraining(cfg.adapter.steps, cfg.adapter.batch_size, cfg.adapter.lr, cfg.adapter.train)
    history = train_adapter(
        adapter, model, features, y, settings, seed, images=x, log=lambda **r: ctx.log(seed=seed, **r)
    )
    save_model(
        path,
        adapter,
        {
            "adapter_config": config.__dict__,
            "seed": seed,
            "final_loss": history[-1],
            "parameters": sum(p.numel() for p in adapter.parameters()),
        },
    )
    return adapter


def build_method(
    method: str,
    head: str,
    cfg: TTALSAConfig,
    model: torch.nn.Module,
    adapter: LabelShiftAdapter,
    source_prior: torch.Tensor,
    true_prior: np.ndarray | None,
    fisher: dict | None,
):
    """One TTA wrapper with one head (the true prior is only given to oracle heads)."""
    estimator = PriorEstimator(source_prior, cfg.tta.estimator, cfg.tta.momentum, cfg.tta.eps)
    oracle_prior = torch.as_tensor(true_prior, dtype=torch.float32) if true_prior is not None else None
    head_module = make_head(head, source_prior, adapter=adapter, estimator=estimator, true_prior=oracle_prior)
    kwargs: dict = {"head": head_module}
    if method != "source" and method != "bn-adapt" and method != "lame":
        kwargs.update(steps=cfg.tta.steps, lr=cfg.tta.lr)
    if method == "eata":
        kwargs.update(d_margin=cfg.tta.eata_d_margin, fisher_alpha=cfg.tta.eata_fisher_alpha, fisher=fisher)
    if method == "sar":
        kwargs.update(rho=cfg.tta.sar_rho)
    if method == "lame":
        kwargs.update(knn=cfg.tta.lame_knn)
    return TTA_REGISTRY.build(method, model, **kwargs)


@dataclass
class Domain:
    key: str  # "<corruption>/<severity>/<target>"
    target: str
    corruption: str
    images: np.ndarray  # uint8, stream order
    labels: np.ndarray
    prior: np.ndarray  # the true target prior π_t


def make_domains(cfg: TTALSAConfig, pools: Pools, seed: int) -> list[Domain]:
    """Every (corruption, severity, target) stream of one seed; the same streams for every variant."""
    order = _class_order(cfg, pools.num_classes)
    domains = []
    for corruption in cfg.stream.corruptions:
        for severity in cfg.stream.severities:
            images, labels = load_corrupted(pools.c_root, corruption, severity)
            for target in cfg.stream.targets:
                prior = target_prior(target, pools.num_classes, cfg.source.rho, order, seed)
                if cfg.stream.size > 0:
                    counts = class_counts(prior, cfg.stream.size)
                else:
                    counts = class_counts(prior, "max", n_max=int(np.bincount(labels).min()))
                stream_seed = int(child_rng(seed, "stream", corruption, severity, target).integers(2**31))
                try:
                    idx = sample_domain_indices(labels, counts, stream_seed)
                except ValueError as e:
                    raise ValueError(
                        f"{corruption} severity {severity}, target {target}: {e}; lower stream.size "
                        "or build glyph-digits-c with a larger stream.per_class"
                    ) from None
                if cfg.stream.order == "dirichlet":
                    idx = idx[dirichlet_order(labels[idx], cfg.stream.order_beta, stream_seed)]
                domains.append(
                    Domain(
                        f"{corruption}/{severity}/{target}",
                        target,
                        corruption,
                        images[idx],
                        labels[idx],
                        prior,
                    )
                )
    return domains


def evaluate_variant(
    method: str, head: str, cfg: TTALSAConfig, model, adapter, source_prior, domains, fisher
) -> dict[str, dict[str, float]]:
    """Online metrics of one (method, head) on every domain, resetting between domains (or not: continual)."""
    results: dict[str, dict[str, float]] = {}
    wrapper = None
    for i, domain in enumerate(domains):
        oracle = domain.prior if head.endswith("oracle") else None
        if wrapper is None or oracle is not None:  # an oracle head is bound to its domain's prior
            wrapper = build_method(method, head, cfg, model, adapter, source_prior, oracle, fisher)
        reset = cfg.stream.reset == "domain" or i == 0
        results[domain.key] = run_stream(
            wrapper,
            images_to_tensor(domain.images),
            domain.labels,
            cfg.stream.batch_size,
            domain.prior,
            reset=reset,
        )
    return results


def eata_fisher(cfg: TTALSAConfig, model, pools: Pools, source_prior, seed: int) -> dict[str, torch.Tensor]:
    """EATA's Fisher information on ``fisher_samples`` source images (same for every EATA head of a seed)."""
    idx, _ = long_tailed_source(pools, cfg, seed)
    take = child_rng(seed, "fisher").permutation(idx)[: cfg.tta.fisher_samples]
    plain = build_method("eata", "plain", cfg, model, None, source_prior, None, None)
    return compute_fisher(plain, images_to_tensor(pools.source_images[take]))


# ---------------------------------------------------------------------------------------------------------
# metrics


def aggregate(
    cfg: TTALSAConfig, per_seed: list[dict[str, dict[str, dict[str, float]]]]
) -> dict[str, list[float]]:
    """Per-seed lists: acc / balanced_acc / prior_l1 per (variant, target), averaged over corruptions and
    severities; the claims' derived metrics (C0 gains, C3 means over the three methods)."""
    metrics: dict[str, list[float]] = {}
    names = [variant_name(m, h) for m, h in variants(cfg)]
    targets = cfg.stream.targets
    shifted = shifted_targets(targets)
    for name in names:
        for target in targets:
            for metric, short in (("acc", "acc"), ("balanced_acc", "bacc"), ("prior_l1", "prior_l1")):
                values = []
                for seed_results in per_seed:
                    rows = [
                        r[metric]
                        for key, r in seed_results[name].items()
                        if key.rsplit("/", 1)[1] == target and metric in r
                    ]
                    values.append(statistics.fmean(rows) if rows else math.nan)
                if not all(math.isnan(v) for v in values):
                    metrics[f"{short}/{name}/{target}"] = values
        if shifted:
            metrics[f"acc/{name}/shifted"] = [
                statistics.fmean(metrics[f"acc/{name}/{t}"][s] for t in shifted) for s in range(len(per_seed))
            ]
    if "tent" in names and "source" in names:
        for target in targets:
            metrics[f"gain/tent-source/{target}"] = [
                a - b for a, b in zip(metrics[f"acc/tent/{target}"], metrics[f"acc/source/{target}"])
            ]
    for head in ("lsa", "logit"):
        keys = [f"acc/{m}+{head}/{t}" for m in PAIRED_METHODS for t in shifted]
        if shifted and all(k in metrics for k in keys):
            metrics[f"acc/{head}-mean3/shifted"] = [
                statistics.fmean(metrics[k][s] for k in keys) for s in range(len(per_seed))
            ]
    return metrics


# ---------------------------------------------------------------------------------------------------------
# run


def validate(cfg: TTALSAConfig) -> None:
    """Check the names and sizes a run needs before any work starts; errors name the config key."""
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
    from devicelab.data.corruptions import CORRUPTIONS

    for corruption in cfg.stream.corruptions:
        if corruption not in CORRUPTIONS:
            raise ConfigError(
                f"stream.corruptions: unknown corruption {corruption!r}; valid: {', '.join(CORRUPTIONS)}"
            )
    for severity in cfg.stream.severities:
        if severity not in (1, 2, 3, 4, 5):
            raise ConfigError(f"stream.severities: {severity} is not a severity 1..5")
    for key, value in (
        ("seeds", cfg.seeds),
        ("stream.batch_size", cfg.stream.batch_size),
        ("stream.per_class", cfg.stream.per_class),
        ("source.n_max", cfg.source.n_max),
        ("threads", cfg.threads),
    ):
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if cfg.source.rho < 1:
        raise ConfigError(f"source.rho must be >= 1, got {cfg.source.rho}")


def run(cfg: TTALSAConfig, ctx: RunContext) -> dict[str, list[float]]:
    """Source training, adapter training and online evaluation for every seed; then tables, plots, metrics."""
    validate(cfg)
    torch.set_num_threads(cfg.threads)
    pools = prepare_data(cfg, ctx)
    grid = variants(cfg)
    per_seed: list[dict[str, dict[str, dict[str, float]]]] = []
    adapter_params = 0
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        model, meta = source_model(cfg, ctx, pools, seed)
        counts = np.asarray(meta["class_counts"], dtype=np.float64)
        source_prior = torch.as_tensor(counts / counts.sum(), dtype=torch.float32)
        adapter = label_shift_adapter(cfg, ctx, model, pools, meta, seed)
        adapter_params = sum(p.numel() for p in adapter.parameters())
        domains = make_domains(cfg, pools, seed)
        fisher = None
        results: dict[str, dict[str, dict[str, float]]] = {}
        for method, head in progress(grid, desc=f"seed {seed}", total=len(grid)):
            name = variant_name(method, head)
            if method == "eata" and fisher is None and not ctx.has_stage(f"eval-{name}-seed{seed}"):
                fisher = eata_fisher(cfg, model, pools, source_prior, seed)
            results[name] = ctx.stage(
                f"eval-{name}-seed{seed}",
                lambda m=method, h=head, net=model, a=adapter, p=source_prior, d=domains, f=fisher: (
                    evaluate_variant(m, h, cfg, net, a, p, d, f)
                ),
            )
            mean_acc = statistics.fmean(r["acc"] for r in results[name].values())
            ctx.log(event="variant", seed=seed, variant=name, mean_acc=mean_acc)
        per_seed.append(results)
    metrics = aggregate(cfg, per_seed)
    metrics["adapter_params"] = float(adapter_params)
    report.write_report(cfg, ctx, metrics, per_seed, EXPERIMENT.claims)
    return metrics


# ---------------------------------------------------------------------------------------------------------
# claims (spec §8): Δ in online-accuracy points, averaged over corruptions (and severities), then over seeds

PAPER = (
    "Park, Yang, Choo, Yun: Label Shift Adapter for Test-Time Adaptation under Covariate and Label Shifts, "
    "ICCV 2023"
)


# spec §8: C0, C1 and C3 also need a positive paired difference in >= 4 of 5 seeds (full), >= 2 of 3 (quick)
PAIRED_SEED_FRACTION = 2 / 3


def _claims() -> tuple[Claim, ...]:
    claims = [
        Claim(
            "C0",
            "label shift hurts plain TTA: (tent − source) on forward-ρ_s "
            "minus (tent − source) on backward-ρ_s",
            method="gain/tent-source/forward",
            baseline="gain/tent-source/backward",
            margin=2.0,
            profiles=("smoke", "quick", "full"),
            paper="[paper]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
        )
    ]
    shifted_by_profile = {
        "uniform": ("smoke", "quick", "full"),
        "backward": ("smoke", "quick", "full"),
        "backward-10": ("full",),
        "backward-50": ("full",),
    }
    for method in PAIRED_METHODS:
        for target, profiles in shifted_by_profile.items():
            claims.append(
                Claim(
                    f"C1/{method}/{target}",
                    f"LSA helps under covariate + label shift: {method}+lsa − {method} on {target}",
                    method=f"acc/{method}+lsa/{target}",
                    baseline=f"acc/{method}/{target}",
                    margin=2.0,
                    profiles=profiles,
                    paper="[paper]",
                    unit=" points",
                    paired_seed_fraction=PAIRED_SEED_FRACTION,
                )
            )
    for method in PAIRED_METHODS:
        claims.append(
            Claim(
                f"C2/{method}",
                f"LSA does no harm without label shift: {method}+lsa − {method} on forward-ρ_s",
                method=f"acc/{method}+lsa/forward",
                baseline=f"acc/{method}/forward",
                margin=-1.0,
                profiles=("smoke", "quick", "full"),
                paper="[reconstruction]",
                unit=" points",
            )
        )
    claims.append(
        Claim(
            "C3",
            "the learned adapter beats simple correction: X+lsa − X+logit, "
            "mean over bn-adapt, tent, eata and "
            "the shifted targets",
            method="acc/lsa-mean3/shifted",
            baseline="acc/logit-mean3/shifted",
            margin=0.5,
            profiles=("smoke", "quick", "full"),
            paper="[reconstruction]",
            unit=" points",
            paired_seed_fraction=PAIRED_SEED_FRACTION,
        )
    )
    return tuple(claims)


EXPERIMENT = Experiment(
    name="tta-lsa",
    paper=PAPER,
    config_cls=TTALSAConfig,
    run=run,
    claims=_claims(),
    corpora=("glyph-digits",),
    docs="docs/methods/tta-lsa.md",
    headline=(
        "acc/tent/shifted",
        "acc/tent+lsa/shifted",
        "acc/tent+logit/shifted",
        "acc/tent+lsa-oracle/shifted",
    ),
)
