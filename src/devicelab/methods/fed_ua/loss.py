"""FedUA's positive-only loss and its variants (spec §2.3).

score s_u(x) = v_uᵀ o(x) / c; loss = mean over the batch of max(0, 1 − s_u(x)) [summary: the positive-only
hinge of the FedUV reproduction]. ``"bce"`` treats each bit separately and ``"pos+neg"`` adds the hardest
other codeword (an oracle that needs every codeword: not federated) [reconstruction].
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossKind = Literal["hinge", "bce", "pos+neg"]


def codeword_scores(outputs: torch.Tensor, codewords: torch.Tensor) -> torch.Tensor:
    """s(x) = vᵀ o(x) / c: outputs (N, c) against a codeword (c,) -> (N,), or a codebook (U, c) -> (N, U)."""
    c = outputs.shape[-1]
    if codewords.dim() == 1:
        return outputs @ codewords / c
    return outputs @ codewords.T / c


def codeword_loss(
    outputs: torch.Tensor,
    codeword: torch.Tensor,
    kind: LossKind = "hinge",
    codebook: torch.Tensor | None = None,
    own_index: int | None = None,
) -> torch.Tensor:
    """The loss of one user's batch: outputs (N, c) of the user's inputs, its codeword (c,).

    ``"pos+neg"`` also needs the whole ``codebook`` (U, c) and the user's row ``own_index``.
    """
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(outputs, ((codeword + 1) / 2).expand_as(outputs))
    loss = F.relu(1.0 - codeword_scores(outputs, codeword)).mean()
    if kind == "pos+neg":
        if codebook is None or own_index is None:
            raise ValueError("loss 'pos+neg' needs the codebook of every user (an oracle, not federated)")
        others = codeword_scores(outputs, codebook)  # (N, U)
        others[:, own_index] = -torch.inf
        loss = loss + F.relu(1.0 + others.max(dim=1).values).mean()
    return loss
