"""Metric-learning losses of sv-kan: the triplet loss with three mining rules (spec §2.4) and GE2E (spec §4).

Embeddings are L2-normalised, so ``d(a, b) = ||e_a - e_b||² = 2 - 2 cos(e_a, e_b)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Mining = Literal["batch_all", "batch_hard", "semi_hard"]


def squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances (N, N) of embeddings (N, D), clamped at 0."""
    dot = embeddings @ embeddings.T
    norms = dot.diagonal()
    return (norms[:, None] - 2.0 * dot + norms[None, :]).clamp_min(0.0)


def positive_mask(
    speakers: torch.Tensor, keywords: torch.Tensor | None = None, text_aware: bool = False
) -> torch.Tensor:
    """(N, N) True where ``p`` is a positive of anchor ``a``: same speaker, ``p != a``.

    With ``text_aware`` (and ``keywords``) a positive must also say a different keyword [reconstruction].
    """
    same = speakers[:, None] == speakers[None, :]
    mask = same & ~torch.eye(len(speakers), dtype=torch.bool, device=speakers.device)
    if text_aware and keywords is not None:
        mask &= keywords[:, None] != keywords[None, :]
    return mask


def triplet_mask(
    speakers: torch.Tensor, keywords: torch.Tensor | None = None, text_aware: bool = False
) -> torch.Tensor:
    """(N, N, N) True where (a, p, n) is a valid triplet: p a positive of a, n of another speaker."""
    positive = positive_mask(speakers, keywords, text_aware)
    negative = speakers[:, None] != speakers[None, :]
    return positive[:, :, None] & negative[:, None, :]


def triplet_loss(
    embeddings: torch.Tensor,
    speakers: torch.Tensor,
    margin: float = 0.3,
    mining: Mining = "batch_all",
    keywords: torch.Tensor | None = None,
    text_aware_positives: bool = False,
) -> torch.Tensor:
    """The triplet loss ``max(0, d(a, p) - d(a, n) + margin)`` of spec §2.4 (FaceNet, arXiv 1503.03832).

    - ``batch_all``: mean over the valid triplets whose loss is positive (0 when none is);
    - ``batch_hard``: per anchor, the farthest positive against the closest negative (Hermans et al.,
      arXiv 1703.07737), mean over anchors with a positive;
    - ``semi_hard``: per (a, p), the closest negative farther than the positive (FaceNet §3.2), else the
      farthest negative, mean over pairs.
    """
    d = squared_distances(embeddings)
    positive = positive_mask(speakers, keywords, text_aware_positives)
    negative = speakers[:, None] != speakers[None, :]
    if mining == "batch_all":
        valid = positive[:, :, None] & negative[:, None, :]
        losses = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0.0)[valid]
        active = losses > 0
        return losses[active].mean() if bool(active.any()) else embeddings.sum() * 0.0
    if mining == "batch_hard":
        hardest_p = d.masked_fill(~positive, float("-inf")).amax(1)
        hardest_n = d.masked_fill(~negative, float("inf")).amin(1)
        has = positive.any(1) & negative.any(1)
        return (hardest_p - hardest_n + margin).clamp_min(0.0)[has].mean()
    if mining == "semi_hard":
        a_idx, p_idx = positive.nonzero(as_tuple=True)
        d_ap = d[a_idx, p_idx][:, None]  # (pairs, 1)
        d_an = d[a_idx]  # (pairs, N)
        neg = negative[a_idx]
        outside = neg & (d_an > d_ap)
        semi = d_an.masked_fill(~outside, float("inf")).amin(1)
        easiest = d_an.masked_fill(~neg, float("-inf")).amax(1)
        chosen = torch.where(outside.any(1), semi, easiest)
        return (d_ap.squeeze(1) - chosen + margin).clamp_min(0.0).mean()
    raise ValueError(f"mining={mining!r}: expected batch_all, batch_hard or semi_hard")


def ge2e_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarities (N, M, N) of every utterance with every speaker centroid (GE2E eq. 5 and 8).

    ``embeddings`` (N speakers, M utterances, D); the own speaker's centroid leaves the utterance out.
    """
    n, m, _ = embeddings.shape
    if m < 2:
        raise ValueError(f"GE2E needs at least 2 utterances per speaker, got {m}")
    e = F.normalize(embeddings, dim=-1)
    total = e.sum(1, keepdim=True)  # (N, 1, D)
    centroids = F.normalize(total.squeeze(1) / m, dim=-1)  # (N, D)
    exclusive = F.normalize((total - e) / (m - 1), dim=-1)  # (N, M, D): own centroid without e_ji
    cos = torch.einsum("jid,kd->jik", e, centroids)  # (N, M, N)
    own = (e * exclusive).sum(-1)  # (N, M)
    index = torch.arange(n, device=embeddings.device)
    cos = cos.clone()
    cos[index, :, index] = own
    return cos


class GE2ELoss(nn.Module):
    """The generalized end-to-end softmax loss (Wan et al., arXiv 1710.10467, eq. 6, 9 and 10).

    ``S_ji,k = w cos(e_ji, c_k) + b`` with ``w`` kept positive; ``L = Σ_ji (-S_ji,j + log Σ_k exp S_ji,k)``.
    """

    def __init__(self, init_w: float = 10.0, init_b: float = -5.0, reduction: Literal["sum", "mean"] = "sum"):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.b = nn.Parameter(torch.tensor(float(init_b)))
        self.reduction = reduction

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        n, m, _ = embeddings.shape
        logits = self.w.clamp_min(1e-6) * ge2e_similarity(embeddings) + self.b  # (N, M, N)
        target = torch.arange(n, device=embeddings.device).repeat_interleave(m)
        return F.cross_entropy(logits.reshape(n * m, n), target, reduction=self.reduction)
