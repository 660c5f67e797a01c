"""The pseudo-label rule of tri-training (spec §2.4) [reconstruction] and the masked BCE it feeds.

Two labellers F1, F2 label each real clip frame by frame; a frame-class entry gets a label only where both
agree with confidence (Saito et al. 2017, §3.2, adapted from single-label classification to multi-label
frame posteriors), weak tags veto classes absent from the clip, and the pool of labelled clips grows from
``pool_start`` to every clip (Saito's N_t schedule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from devicelab.methods.sed_tritrain.labels import median_smooth


@dataclass
class PseudoLabels:
    """Pseudo-labels of N real clips: frame targets ŷ and mask m (N, T', K), clip targets ĝ and mask (N, K),
    agreement (N,) (the fraction of entries with m = 1) and pool membership (N,)."""

    targets: np.ndarray
    mask: np.ndarray
    clip_targets: np.ndarray
    clip_mask: np.ndarray
    agreement: np.ndarray
    in_pool: np.ndarray


def pseudo_label(
    p1: np.ndarray,
    p2: np.ndarray,
    q1: np.ndarray,
    q2: np.ndarray,
    tags: np.ndarray,
    is_weak: np.ndarray,
    tau_clip: float = 0.9,
    tau_hi: float = 0.7,
    tau_lo: float = 0.3,
) -> PseudoLabels:
    """Apply the rule of spec §2.4 to the (already median-filtered) frame posteriors ``p1, p2`` (N, T', K)
    and clip posteriors ``q1, q2`` (N, K) of the two labellers. ``tags`` (N, K) are the weak tags (rows of
    unlabelled clips are ignored); ``is_weak`` (N,) says which clips are weak. The pool is every clip."""
    is_weak = is_weak.astype(bool)[:, None]  # (N, 1)
    tags = tags.astype(bool)
    present = np.where(is_weak, tags, (q1 > tau_clip) & (q2 > tau_clip))  # (N, K)
    absent = np.where(is_weak, ~tags, (q1 < 1 - tau_clip) & (q2 < 1 - tau_clip))
    both_hi = (p1 > tau_hi) & (p2 > tau_hi)  # (N, T', K)
    both_lo = (p1 < tau_lo) & (p2 < tau_lo)
    pres = present[:, None, :]
    positive = pres & both_hi
    negative = absent[:, None, :] | (pres & both_lo)
    targets = positive.astype(np.float32)
    mask = (positive | negative).astype(np.float32)
    # a weak clip's tag with no positive frame: the labellers missed the event, mask the whole column
    missed = is_weak & tags & ~positive.any(axis=1)  # (N, K)
    mask[np.broadcast_to(missed[:, None, :], mask.shape)] = 0.0
    clip_targets = present.astype(np.float32)
    clip_mask = np.where(is_weak, 0.0, (present | absent).astype(np.float32))  # only U clips get ĝ
    agreement = mask.reshape(len(mask), -1).mean(axis=1)
    return PseudoLabels(targets, mask, clip_targets, clip_mask, agreement, np.ones(len(mask), dtype=bool))


def label_clips(
    p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray, tags: np.ndarray, is_weak: np.ndarray,
    median_window: int, tau_clip: float, tau_hi: float, tau_lo: float,
) -> PseudoLabels:  # fmt: skip
    """:func:`pseudo_label` on raw labeller outputs: median filter over ``median_window`` frames first."""
    return pseudo_label(
        median_smooth(p1, median_window),
        median_smooth(p2, median_window),
        q1,
        q2,
        tags,
        is_weak,
        tau_clip,
        tau_hi,
        tau_lo,
    )


def pool_fraction(step: int, warmup_steps: int, total_steps: int, start: float, full_at: float) -> float:
    """The pool's share of clips: ``start`` at the end of warm-up, growing linearly to 1 at ``full_at`` of
    the steps [reconstruction of Saito's N_t]."""
    end = max(full_at * total_steps, warmup_steps + 1)
    progress = (step - warmup_steps) / (end - warmup_steps)
    return float(min(1.0, max(start, start + (1.0 - start) * progress)))


def select_pool(labels: PseudoLabels, fraction: float) -> PseudoLabels:
    """Keep the ``fraction`` of clips with the highest agreement in the pool (ties broken by index)."""
    n = len(labels.agreement)
    keep = int(np.ceil(fraction * n))
    order = np.argsort(-labels.agreement, kind="stable")[:keep]
    in_pool = np.zeros(n, dtype=bool)
    in_pool[order] = True
    labels.in_pool = in_pool
    return labels


def masked_bce(p: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``mBCE(p, y, m) = Σ m · BCE(p, y) / max(1, Σ m)`` (spec §2.3): entries with m = 0 get no gradient."""
    loss = F.binary_cross_entropy(p, y, reduction="none")
    return (loss * m).sum() / m.sum().clamp_min(1.0)


def frame_precision_recall(labels: PseudoLabels, oracle: np.ndarray) -> tuple[float, float]:
    """Frame precision and recall (%) of the pooled pseudo-labels against hidden strong labels (N, T', K):
    precision over labelled positives, recall over true positives of the pooled clips."""
    pool = labels.in_pool[:, None, None]
    labelled_pos = (labels.targets > 0.5) & (labels.mask > 0.5) & pool
    truth = (oracle > 0.5) & pool
    tp = float((labelled_pos & truth).sum())
    precision = 100.0 * tp / float(labelled_pos.sum()) if labelled_pos.any() else float("nan")
    recall = 100.0 * tp / float(truth.sum()) if truth.any() else float("nan")
    return precision, recall
