"""What the wire carries, and what a curious server could still learn (spec §2.1, §2.7).

- :func:`wire_problems` scans a message's arrays and metrics for a codeword (as a contiguous or strided
  slice, either sign), a per-sample embedding or output (a leading batch dimension with trailing size d or
  c) and metric keys outside the declared set.
- :func:`codeword_recovery` measures the documented limit of the threat model: with o = W g(x) every step
  changes W by a multiple of v_u aᵀ, so one client's ΔW is essentially rank one with left factor v_u and its
  top singular vector gives v_u up to sign. Secure aggregation would hide it; Flower 1.42's Message API
  does not provide it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

ALLOWED_METRICS = frozenset({"num-examples", "train-loss", "warmup-tpr"})


def contains_slice(flat: np.ndarray, pattern: np.ndarray, atol: float = 1e-6) -> bool:
    """Whether ``pattern`` (or −pattern) occurs in ``flat`` at any start with any stride ≥ 1."""
    flat, pattern = np.asarray(flat, np.float64).ravel(), np.asarray(pattern, np.float64).ravel()
    n, m = len(flat), len(pattern)
    if m == 0 or n < m:
        return False
    for sign in (1.0, -1.0):
        target = sign * pattern
        for stride in range(1, (n - 1) // max(m - 1, 1) + 1 if m > 1 else 2):
            span = (m - 1) * stride
            starts = np.arange(0, n - span)
            if len(starts) == 0:
                break
            idx = starts[:, None] + stride * np.arange(m)[None, :]
            if np.any(np.all(np.abs(flat[idx] - target[None, :]) <= atol, axis=1)):
                return True
    return False


def wire_problems(
    arrays: Mapping[str, np.ndarray],
    metrics: Mapping[str, object],
    codewords: Iterable[np.ndarray],
    embed_dim: int,
    code_length: int,
    global_shapes: Mapping[str, tuple[int, ...]] | None = None,
    allowed_metrics: frozenset[str] = ALLOWED_METRICS,
) -> list[str]:
    """Everything private a message would reveal (empty list: nothing found)."""
    problems = []
    codewords = [np.asarray(v) for v in codewords]
    for key, value in arrays.items():
        value = np.asarray(value)
        if global_shapes is not None and tuple(value.shape) != tuple(global_shapes.get(key, ())):
            problems.append(f"array {key}: shape {value.shape} is not a global model shape")
        if global_shapes is None and value.ndim == 2 and value.shape[1] in (embed_dim, code_length):
            problems.append(f"array {key}: shape {value.shape} looks like per-sample embeddings or outputs")
        for u, v in enumerate(codewords):
            if value.size >= v.size and contains_slice(value, v):
                problems.append(f"array {key} contains the codeword of user {u}")
    for key, value in metrics.items():
        if key not in allowed_metrics:
            problems.append(f"metric {key!r} is not declared")
        if isinstance(value, list | tuple | np.ndarray) and np.size(value) != 1:
            problems.append(f"metric {key!r} is not a scalar")
    return problems


def codeword_recovery(delta_w: np.ndarray, codeword: np.ndarray) -> float:
    """Fraction of v_u's bits recovered as the sign of ΔW's top left singular vector (best global sign)."""
    u, _, _ = np.linalg.svd(np.asarray(delta_w, np.float64), full_matrices=False)
    agree = float(np.mean(np.sign(u[:, 0]) == np.sign(codeword)))
    return max(agree, 1.0 - agree)


def aggregate_recovery(
    deltas: Sequence[np.ndarray], weights: Sequence[float], codewords: Sequence[np.ndarray]
) -> float:
    """Mean over the round's users of the bits recovered from the weighted aggregate ΔW alone."""
    total = float(sum(weights))
    agg = sum((w / total) * np.asarray(d, np.float64) for w, d in zip(weights, deltas))
    return float(np.mean([codeword_recovery(agg, v) for v in codewords]))
