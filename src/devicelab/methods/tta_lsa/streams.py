"""Label-shift test streams: a target prior, per-class counts, sampled indices, and their order in time.

Spec ``tta-lsa.md`` §6.3. Streams compose as *prior → counts → indices → order*:

    prior = lt_prior(10, rho=10, direction="backward")          # or dirichlet_prior(10, alpha=1, seed=...)
    counts = class_counts(prior, size=1000)                      # constant-size (TTAB) or size="max"
    idx = sample_domain_indices(labels, counts, seed=3)          # i.i.d. shuffled order (default)
    idx = idx[dirichlet_order(labels[idx], beta=0.1, seed=3)]    # optional: non-i.i.d. order in time

Every sampler takes a seed and returns indices into the domain's arrays; images are never copied.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Direction = Literal["forward", "uniform", "backward"]


def class_ranks(num_classes: int) -> np.ndarray:
    """r_k = k / (K − 1) for the class at source-frequency rank k (head = 0, tail = 1); spec §3.3."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    return np.arange(num_classes, dtype=np.float64) / (num_classes - 1)


def lt_prior(
    num_classes: int, rho: float, direction: Direction = "forward", class_order: np.ndarray | None = None
) -> np.ndarray:
    """A long-tailed prior with head/tail ratio ``rho``: π_k ∝ ρ^(−r_k) (SADE ``imbalance_cifar.py``).

    ``direction="backward"`` reverses the class order, ``"uniform"`` (or ρ = 1) is balanced.
    ``class_order[i]`` is the class at head rank i (default: index order, class 0 is the head).
    """
    if rho < 1:
        raise ValueError(f"rho must be >= 1 (head/tail ratio), got {rho}")
    if direction not in ("forward", "uniform", "backward"):
        raise ValueError(f"direction must be forward, uniform or backward, got {direction!r}")
    weights = rho ** (-class_ranks(num_classes)) if direction != "uniform" else np.ones(num_classes)
    if direction == "backward":
        weights = weights[::-1]
    by_rank = weights / weights.sum()
    order = np.arange(num_classes) if class_order is None else np.asarray(class_order)
    if sorted(order.tolist()) != list(range(num_classes)):
        raise ValueError(f"class_order must be a permutation of 0..{num_classes - 1}")
    prior = np.empty(num_classes)
    prior[order] = by_rank
    return prior


def dirichlet_prior(num_classes: int, alpha: float, seed: int) -> np.ndarray:
    """π ~ Dir(α·1) (TTAB ``LabelShiftedCIFAR``)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    prior = rng.dirichlet(np.full(num_classes, float(alpha)))
    prior = np.maximum(prior, 1e-12)
    return prior / prior.sum()


def class_counts(prior: np.ndarray, size: int | Literal["max"], n_max: int | None = None) -> np.ndarray:
    """Per-class counts for a prior: ``size=N`` splits N by largest remainder (TTAB constant-size);
    ``size="max"`` gives ⌊n_max·π_k / max π⌋ (keep every sample of the largest class)."""
    prior = np.asarray(prior, dtype=np.float64)
    if prior.ndim != 1 or np.any(prior < 0) or not np.isclose(prior.sum(), 1.0):
        raise ValueError("prior must be a 1-d probability vector")
    if size == "max":
        if n_max is None or n_max < 1:
            raise ValueError('size="max" needs n_max >= 1 (samples of the largest class)')
        return np.floor(n_max * prior / prior.max() + 1e-9).astype(np.int64)
    if not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f'size must be a positive integer or "max", got {size!r}')
    exact = size * prior
    counts = np.floor(exact).astype(np.int64)
    remainder = size - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")  # largest remainders first
    counts[order[:remainder]] += 1
    return counts


def sample_domain_indices(labels: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    """Draw ``counts[k]`` indices of class k without replacement; return them in an i.i.d. shuffled order."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for k, n in enumerate(np.asarray(counts)):
        pool = np.flatnonzero(labels == k)
        if n > len(pool):
            raise ValueError(f"class {k}: {n} samples requested, the domain has {len(pool)}")
        chosen.append(rng.choice(pool, size=int(n), replace=False))
    indices = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    return rng.permutation(indices).astype(np.int64)


def dirichlet_order(
    labels: np.ndarray,
    beta: float,
    seed: int,
    num_slots: int | None = None,
    min_per_slot: int = 5,
    max_tries: int = 100,
) -> np.ndarray:
    """A permutation of ``labels``' positions that varies the label distribution in time (NOTE; TTAB
    ``_intra_non_iid_shift``): each class is split over S slots with proportions ~ Dir(β·1_S), a slot already
    holding N/S samples takes no more, every slot holds ≥ ``min_per_slot``; the stream is the slots in
    order, shuffled within. The global marginal is unchanged."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    n, slots = len(labels), int(num_slots or len(classes))
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if slots < 1 or n < slots * min_per_slot:
        raise ValueError(f"{n} samples cannot fill {slots} slots of at least {min_per_slot}")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        buckets: list[list[int]] = [[] for _ in range(slots)]
        for k in classes:
            members = rng.permutation(np.flatnonzero(labels == k))
            proportions = rng.dirichlet(np.full(slots, float(beta)))
            open_slots = np.array([len(b) < n / slots for b in buckets], dtype=np.float64)
            proportions = proportions * open_slots
            if proportions.sum() <= 0:
                proportions = open_slots if open_slots.sum() > 0 else np.ones(slots)
            proportions = proportions / proportions.sum()
            cuts = (np.cumsum(proportions) * len(members)).astype(np.int64)[:-1]
            for bucket, part in zip(buckets, np.split(members, cuts)):
                bucket.extend(part.tolist())
        if min(len(b) for b in buckets) >= min_per_slot:
            return np.concatenate([rng.permutation(np.asarray(b, dtype=np.int64)) for b in buckets])
    raise RuntimeError(
        f"dirichlet_order: no split with every one of {slots} slots holding >= {min_per_slot} samples "
        f"after {max_tries} tries (beta={beta}, {n} samples); use a larger beta or fewer slots"
    )


def batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches of a stream (the last one may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
