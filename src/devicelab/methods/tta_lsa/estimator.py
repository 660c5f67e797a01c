"""The online estimate π̂ of the target label distribution.

Spec ``tta-lsa.md`` §3.5 [summary: an exponential moving average; the form is a reconstruction]:

    π̂ ← π_s at each reset
    after each batch:  π̂ ← m·π̂ + (1−m)·q      q = mean_i softmax(z_i)      (m = 0.9)
                       π̂ ← max(π̂, ε) / Σ

``kind="ema"`` averages the softmax of the logits the TTA wrapper returned (adapted, post-processed);
``kind="ema_em"`` replaces q by 3 Saerens–EM steps on the *un-adapted* source logits,
q ← mean softmax(z_src + ln q − ln π_s), which cannot feed an adapted head's bias back into its own prior;
``kind="batch"`` keeps only the current batch's mean softmax.
"""

from __future__ import annotations

from typing import Literal

import torch

EstimatorKind = Literal["ema", "ema_em", "batch"]


class PriorEstimator:
    """Tracks π̂ over a test stream; ``update`` after each batch, ``reset`` at each new domain."""

    def __init__(
        self,
        source_prior: torch.Tensor,
        kind: EstimatorKind = "ema",
        momentum: float = 0.9,
        eps: float = 1e-3,
        em_steps: int = 3,
    ) -> None:
        if kind not in ("ema", "ema_em", "batch"):
            raise ValueError(f"estimator kind must be ema, ema_em or batch, got {kind!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"estimator momentum must be in [0, 1), got {momentum}")
        source_prior = torch.as_tensor(source_prior, dtype=torch.float32)
        if source_prior.ndim != 1 or torch.any(source_prior <= 0):
            raise ValueError("source_prior must be a 1-d vector of positive class frequencies")
        self.source_prior = source_prior / source_prior.sum()
        self.kind = kind
        self.momentum = momentum
        self.eps = eps
        self.em_steps = em_steps
        self.prior = self.source_prior.clone()

    def reset(self) -> None:
        """π̂ ← π_s."""
        self.prior = self.source_prior.clone()

    def _clip(self, prior: torch.Tensor) -> torch.Tensor:
        prior = prior.clamp_min(self.eps)
        return prior / prior.sum()

    @torch.no_grad()
    def batch_estimate(self, logits: torch.Tensor, source_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The current batch's estimate q: mean softmax, or Saerens–EM on the source logits (``ema_em``)."""
        if self.kind != "ema_em":
            return logits.float().softmax(dim=1).mean(dim=0)  # (K,)
        if source_logits is None:
            raise ValueError('estimator kind "ema_em" needs the un-adapted source logits')
        log_source = self.source_prior.log()
        q = self.prior.clone()
        for _ in range(self.em_steps):
            q = (source_logits.float() + q.log() - log_source).softmax(dim=1).mean(dim=0)
            q = self._clip(q)
        return q

    @torch.no_grad()
    def update(self, logits: torch.Tensor, source_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Fold one batch into π̂ and return the new estimate."""
        q = self.batch_estimate(logits, source_logits)
        if self.kind == "batch":
            self.prior = self._clip(q)
        else:
            self.prior = self._clip(self.momentum * self.prior + (1.0 - self.momentum) * q)
        return self.prior
