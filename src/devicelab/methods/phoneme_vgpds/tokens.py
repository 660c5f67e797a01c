"""Variable-length tokens padded into one tensor with a frame mask (spec §2.3 "Batching")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class PaddedTokens:
    """Tokens of several classes padded to J tokens and T frames; padded tokens have no real frames."""

    frames: Tensor  # (C, J, T, D)  float64, zeros where padded
    frame_mask: Tensor  # (C, J, T)  bool

    @property
    def num_classes(self) -> int:
        return self.frames.shape[0]

    @property
    def output_dim(self) -> int:
        return self.frames.shape[-1]

    @property
    def lengths(self) -> Tensor:  # (C, J)
        return self.frame_mask.sum(-1)


def pad_tokens(
    tokens_per_class: Sequence[Sequence[np.ndarray]], max_frames: int | None = None, dtype=torch.float64
) -> PaddedTokens:
    """Stack ``tokens_per_class[c][j]`` (each (n_j, D)) into a :class:`PaddedTokens`.

    Raises ValueError naming the class and token when a token is empty or its feature size differs.
    """
    dims = {np.shape(tok)[1] for toks in tokens_per_class for tok in toks if np.ndim(tok) == 2}
    if len(dims) != 1:
        raise ValueError(
            f"tokens must be 2-D (frames, features) arrays of one feature size; got sizes {dims}"
        )
    (dim,) = dims
    num_tokens = max((len(toks) for toks in tokens_per_class), default=0)
    longest = max((len(tok) for toks in tokens_per_class for tok in toks), default=0)
    t = max_frames or longest
    frames = torch.zeros(len(tokens_per_class), max(num_tokens, 1), max(t, 1), dim, dtype=dtype)
    mask = torch.zeros(frames.shape[:-1], dtype=torch.bool)
    for c, toks in enumerate(tokens_per_class):
        for j, tok in enumerate(toks):
            tok = np.asarray(tok)
            if tok.ndim != 2 or tok.shape[1] != dim or len(tok) == 0:
                raise ValueError(
                    f"class {c}, token {j}: expected a non-empty (frames, {dim}) array, got {tok.shape}"
                )
            if len(tok) > t:
                raise ValueError(f"class {c}, token {j}: {len(tok)} frames > max_frames={t}")
            frames[c, j, : len(tok)] = torch.as_tensor(tok, dtype=dtype)
            mask[c, j, : len(tok)] = True
    return PaddedTokens(frames=frames, frame_mask=mask)


def class_log_prior(token_counts: Sequence[int]) -> np.ndarray:
    """log π_c from the training token frequencies (spec §2.6; the baselines use the same prior, spec §4)."""
    counts = np.asarray(token_counts, dtype=np.float64)
    return np.log(counts / counts.sum())
