"""Swappable classifier heads: how a TTA wrapper turns features into logits.

Spec ``tta-lsa.md`` §3.8 [reconstruction]: five heads form a 2×2 control table around the source head —
{learned adapter, closed-form logit correction} × {estimated prior π̂, true prior π_t} — and any TTA method
takes any of them:

| head           | logits                                   | prior           |
|----------------|------------------------------------------|-----------------|
| ``plain``        | W h + b                                  | —               |
| ``lsa``          | (W + ΔW)(γ ⊙ h + β) + b + Δb = g_φ(u(π̂)) | estimate π̂      |
| ``logit``        | W h + b + ln π̂ − ln π_s                  | estimate π̂      |
| ``lsa-oracle``   | as ``lsa``                               | true π_t        |
| ``logit-oracle`` | as ``logit``                             | true π_t        |

A head is called as ``head(features, linear)`` with the wrapped model's own ``nn.Linear``; after the wrapper
has produced a batch's logits it calls ``head.observe(logits, features, linear)`` so the estimate can move on.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.methods.tta_lsa.adapter import LabelShiftAdapter, logit_prior_correction
from devicelab.methods.tta_lsa.estimator import PriorEstimator

HeadName = Literal["plain", "lsa", "logit", "lsa-oracle", "logit-oracle", "lsa-frozen"]
HEAD_NAMES: tuple[str, ...] = ("plain", "lsa", "logit", "lsa-oracle", "logit-oracle", "lsa-frozen")


class PlainHead(nn.Module):
    """The source head, unchanged: W h + b."""

    def forward(self, features: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        return linear(features)  # (N, D) -> (N, K)

    def observe(self, logits: torch.Tensor, features: torch.Tensor, linear: nn.Linear) -> None:
        """Plain heads keep no state."""

    def reset(self) -> None:
        """Plain heads keep no state."""


class PriorHead(nn.Module):
    """A head that depends on a label prior: the estimate π̂ of ``estimator``, or a fixed ``prior``.

    ``adapter`` given: the label shift adapter's head (``lsa``); ``adapter=None``: the logit correction
    ``z + ln π − ln π_s`` (``logit``). The adapter is frozen; its output is computed without gradient, while
    gradients of a TTA loss still reach the features through the adapted head (spec §3.6).
    """

    def __init__(
        self,
        source_prior: torch.Tensor,
        adapter: LabelShiftAdapter | None = None,
        estimator: PriorEstimator | None = None,
        prior: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if (estimator is None) == (prior is None):
            raise ValueError("give either an estimator (estimated prior) or a fixed prior, not both")
        source_prior = torch.as_tensor(source_prior, dtype=torch.float32)
        self.register_buffer("source_prior", source_prior / source_prior.sum())
        self.adapter = adapter
        if adapter is not None:
            adapter.requires_grad_(False)
            adapter.eval()
        self.estimator = estimator
        self.fixed_prior = None if prior is None else torch.as_tensor(prior, dtype=torch.float32)

    @property
    def prior(self) -> torch.Tensor:
        """The prior the head uses now (K,)."""
        return self.fixed_prior if self.fixed_prior is not None else self.estimator.prior

    def forward(self, features: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        prior = self.prior
        if self.adapter is None:
            return logit_prior_correction(linear(features), prior, self.source_prior)
        with torch.no_grad():
            params = self.adapter.head_params(prior)  # θ_head = g_φ(u(π̂)), detached
        return self.adapter.adapted_logits(features, linear, prior, params)

    def observe(self, logits: torch.Tensor, features: torch.Tensor, linear: nn.Linear) -> None:
        """Fold the returned logits of one batch into π̂ (the un-adapted logits too, for ``ema_em``)."""
        if self.estimator is None:
            return
        source_logits = None
        if self.estimator.kind == "ema_em":
            with torch.no_grad():
                source_logits = F.linear(features, linear.weight, linear.bias)
        self.estimator.update(logits.detach(), source_logits)

    def reset(self) -> None:
        """π̂ ← π_s."""
        if self.estimator is not None:
            self.estimator.reset()


class FrozenPriorHead(PriorHead):
    """``lsa-frozen``: the adapter fed π_s for the whole stream (must match ``plain`` up to noise)."""

    def __init__(self, source_prior: torch.Tensor, adapter: LabelShiftAdapter) -> None:
        super().__init__(source_prior, adapter=adapter, prior=source_prior)


def make_head(
    name: str,
    source_prior: torch.Tensor,
    adapter: LabelShiftAdapter | None = None,
    estimator: PriorEstimator | None = None,
    true_prior: torch.Tensor | None = None,
) -> nn.Module:
    """Build the head called ``name`` (one of :data:`HEAD_NAMES`); errors name what is missing."""
    if name not in HEAD_NAMES:
        raise ValueError(f"unknown head {name!r}; valid heads: {', '.join(HEAD_NAMES)}")
    if name == "plain":
        return PlainHead()
    needs_adapter = name.startswith("lsa")
    if needs_adapter and adapter is None:
        raise ValueError(f"head {name!r} needs a trained LabelShiftAdapter")
    learned = adapter if needs_adapter else None
    if name == "lsa-frozen":
        return FrozenPriorHead(source_prior, adapter)
    if name.endswith("oracle"):
        if true_prior is None:
            raise ValueError(f"head {name!r} needs the true target prior")
        return PriorHead(source_prior, learned, prior=true_prior)
    if estimator is None:
        raise ValueError(f"head {name!r} needs a PriorEstimator")
    return PriorHead(source_prior, learned, estimator=estimator)
