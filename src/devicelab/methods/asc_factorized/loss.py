"""The environment-aware triplet (large-margin) loss of the LMF-CNN.

Cho et al., arXiv 1910.06784, abstract: triplets pull together clips of the same scene recorded in different
environments and push apart clips of different scenes. Spec §2.4 [reconstruction]: on L2-normalised
embeddings ê, a valid triplet (a, p, n) has ``scene_p = scene_a``, ``env_p != env_a`` and ``scene_n !=
scene_a`` (``negative_env="same"`` also asks ``env_n = env_a``); its loss is
``max(0, ||ê_a - ê_p||² - ||ê_a - ê_n||² + m)`` and the batch loss is the mean over valid triplets with a
positive loss (``batch_all``), or over one triplet per anchor (``batch_hard``) or per anchor-positive pair
(``semi_hard``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Mining = Literal["batch_all", "batch_hard", "semi_hard"]
NegativeEnv = Literal["any", "same"]


def pair_masks(
    scenes: torch.Tensor, envs: torch.Tensor, negative_env: NegativeEnv = "any"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(positive, negative) boolean masks (N, N): row a, column p is a valid positive of anchor a when the
    scene agrees and the environment differs; column n a valid negative when the scene differs."""
    same_scene = scenes[:, None] == scenes[None, :]
    same_env = envs[:, None] == envs[None, :]
    positive = same_scene & ~same_env  # excludes a itself and same-environment clips of its scene
    negative = ~same_scene
    if negative_env == "same":
        negative = negative & same_env
    elif negative_env != "any":
        raise ValueError(f"negative_env={negative_env!r}: expected 'any' or 'same'")
    return positive, negative


def squared_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """||ê_i - ê_j||² (N, N) of the L2-normalised embeddings (N, D)."""
    e = F.normalize(embeddings, dim=1)
    return (2.0 - 2.0 * e @ e.T).clamp_min(0.0)


def triplet_terms(
    embeddings: torch.Tensor,
    scenes: torch.Tensor,
    envs: torch.Tensor,
    margin: float = 0.5,
    negative_env: NegativeEnv = "any",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hinge of every triplet ``[a, p, n]`` (N, N, N) and the mask of valid triplets (spec §2.4)."""
    d = squared_distances(embeddings)
    positive, negative = pair_masks(scenes, envs, negative_env)
    terms = (d[:, :, None] - d[:, None, :] + margin).clamp_min(0.0)
    valid = positive[:, :, None] & negative[:, None, :]
    return terms, valid


def environment_triplet_loss(
    embeddings: torch.Tensor,
    scenes: torch.Tensor,
    envs: torch.Tensor,
    margin: float = 0.5,
    mining: Mining = "batch_all",
    negative_env: NegativeEnv = "any",
) -> tuple[torch.Tensor, float]:
    """(loss, fraction of considered triplets with a positive loss); 0 when no triplet is valid or active.

    ``batch_all``: every valid triplet. ``batch_hard``: per anchor, its farthest positive and nearest
    negative. ``semi_hard``: per (a, p), the nearest negative farther than p (FaceNet), else the farthest.
    """
    if mining == "batch_all":
        terms, valid = triplet_terms(embeddings, scenes, envs, margin, negative_env)
        losses = terms[valid]
    else:
        d = squared_distances(embeddings)
        positive, negative = pair_masks(scenes, envs, negative_env)
        big = d.detach().max() + 1.0
        if mining == "batch_hard":
            anchors = positive.any(1) & negative.any(1)
            hardest_pos = torch.where(positive, d, torch.zeros_like(d)).max(1).values
            hardest_neg = torch.where(negative, d, d + big).min(1).values
            losses = (hardest_pos - hardest_neg + margin).clamp_min(0.0)[anchors]
        elif mining == "semi_hard":
            pairs = positive & negative.any(1, keepdim=True)
            d_an = d[:, None, :]  # (N, 1, N): anchor a, negative n
            d_ap = d[:, :, None]  # (N, N, 1): anchor a, positive p
            semi = negative[:, None, :] & (d_an > d_ap)
            nearest = torch.where(semi, d_an.expand_as(semi), d_an + big).min(2).values  # (N, N)
            farthest = torch.where(negative[:, None, :], d_an, d_an - big).max(2).values.expand_as(nearest)
            chosen = torch.where(semi.any(2), nearest, farthest)
            losses = (d - chosen + margin).clamp_min(0.0)[pairs]
        else:
            raise ValueError(f"mining={mining!r}: expected batch_all, batch_hard or semi_hard")
    if losses.numel() == 0:
        return embeddings.sum() * 0.0, 0.0
    active = losses > 0
    fraction = float(active.float().mean())
    if not bool(active.any()):
        return embeddings.sum() * 0.0, fraction
    return losses[active].mean(), fraction
