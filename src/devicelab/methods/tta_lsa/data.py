"""What a tta-lsa run reads: the source pool, its long-tailed subsample and the target streams (§4, §6.3).

glyph-digits(-c) by default; CIFAR-10 and CIFAR-10-C with ``--data``. Every (corruption, severity, target
prior) domain of a seed is drawn once and shared by all variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devicelab.core.config import ConfigError
from devicelab.core.seeding import child_rng
from devicelab.core.sources import resolve_data
from devicelab.data.corpora.glyph_digits_c import ensure_glyph_digits_c, load_corrupted, load_pool
from devicelab.data.datasets.cifar import load_cifar10
from devicelab.methods.tta_lsa.streams import (
    class_counts,
    dirichlet_order,
    dirichlet_prior,
    lt_prior,
    sample_domain_indices,
)

if TYPE_CHECKING:
    from devicelab.core.run import RunContext
    from devicelab.methods.tta_lsa.config import TTALSAConfig


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


def class_order(cfg: TTALSAConfig, num_classes: int) -> np.ndarray:
    """Head-to-tail order of the classes: 0..K−1, or a seeded permutation (``source.class_order_seed``)."""
    if cfg.source.class_order_seed < 0:
        return np.arange(num_classes)
    return child_rng(cfg.source.class_order_seed, "class-order").permutation(num_classes)


@dataclass
class Pools:
    """What a run reads: the balanced source pool (LT subsets are drawn per seed), the target folder, and the
    clean test set of the source domains."""

    source_images: np.ndarray  # (N, 32, 32, 3) uint8, balanced pool
    source_labels: np.ndarray  # (N,)
    c_root: Path  # CIFAR-10-C layout folder
    num_classes: int
    track: str
    clean_images: np.ndarray | None = None  # (M, 32, 32, 3) uint8, uncorrupted test images
    clean_labels: np.ndarray | None = None  # (M,)


def prepare_data(cfg: TTALSAConfig, ctx: RunContext) -> Pools:
    """The source pool and the corrupted target folder: glyph-digits(-c) (the built corpus, ``glyph_root`` or
    a built copy given with ``--data``), or CIFAR-10(-C) with ``--data``."""
    if ctx.data_path is None and cfg.glyph_root:
        root = Path(cfg.glyph_root)
    else:
        source = resolve_data(ctx, "glyph-digits")
        if not source.is_corpus:
            return _cifar_pools(source.path)
        root = source.path
    try:
        images, labels = load_pool(root, cfg.source.domains, "train")
        clean_images, clean_labels = load_pool(root, cfg.source.domains, "test")
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
    return Pools(images, labels, c_root, int(labels.max()) + 1, "glyph-digits-c", clean_images, clean_labels)


def _cifar_pools(data: Path) -> Pools:
    """``--data`` holds ``cifar-10-batches-bin/`` (source) and ``CIFAR-10-C/`` (targets)."""
    c_root = data / "CIFAR-10-C" if (data / "CIFAR-10-C").is_dir() else data
    if not (c_root / "labels.npy").is_file():
        raise FileNotFoundError(
            f"{data}: expected CIFAR-10-C/labels.npy (the CIFAR-10-C folder) under --data"
        )
    images, labels = load_cifar10(data / "cifar-10-batches-bin", "train")
    clean_images, clean_labels = load_cifar10(data / "cifar-10-batches-bin", "test")
    return Pools(
        np.asarray(images),
        np.asarray(labels, dtype=np.int64),
        c_root,
        10,
        "cifar10-c",
        np.asarray(clean_images),
        np.asarray(clean_labels, dtype=np.int64),
    )


def long_tailed_source(pools: Pools, cfg: TTALSAConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the LT source subsample (size="max" rule, seeded) and its class counts."""
    prior = lt_prior(pools.num_classes, cfg.source.rho, "forward", class_order(cfg, pools.num_classes))
    counts = class_counts(prior, "max", n_max=cfg.source.n_max)
    return sample_domain_indices(pools.source_labels, counts, seed=seed), counts


def adapter_source(pools: Pools, cfg: TTALSAConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the adapter's training images and their class counts.

    ``adapter_training.data="held_out"``: a second long-tailed draw from the pool images the source model was
    not trained on, with the source's class proportions (its counts, scaled down where fewer images are left),
    so the adapter learns on features the model did not fit; ``"source"``: the source model's own training
    set (:func:`long_tailed_source`). The counts returned are the source's (they define π_s).
    """
    fitted, counts = long_tailed_source(pools, cfg, seed)
    if cfg.adapter_training.data == "source":
        return fitted, counts
    rest = np.setdiff1d(np.arange(len(pools.source_labels)), fitted)
    available = np.bincount(pools.source_labels[rest], minlength=len(counts))
    scale = min(1.0, float(np.min(available / np.maximum(counts, 1))))  # same proportions, what is left
    held_counts = np.floor(counts * scale).astype(np.int64)
    if held_counts.min() < 1:
        raise ConfigError(
            f"adapter_training.data=held_out: too few images beyond the source model's training set "
            f"({available.tolist()} per class); lower source.n_max or use adapter_training.data=source"
        )
    draw_seed = int(child_rng(seed, "adapter-data").integers(2**31))
    chosen = sample_domain_indices(pools.source_labels[rest], held_counts, seed=draw_seed)
    return rest[chosen], counts


@dataclass
class Domain:
    """One test domain's stream: a corruption at a severity, resampled to a target prior."""

    key: str  # "<corruption>/<severity>/<target>"
    target: str
    corruption: str
    images: np.ndarray  # uint8, stream order
    labels: np.ndarray
    prior: np.ndarray  # the true target prior π_t


def make_domains(cfg: TTALSAConfig, pools: Pools, seed: int) -> list[Domain]:
    """Every (corruption, severity, target) stream of one seed; the same streams for every variant."""
    order = class_order(cfg, pools.num_classes)
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
