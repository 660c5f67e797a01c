"""Online test-time adaptation methods: wrappers that adapt inside ``forward`` and ``reset()`` to the source.

Spec ``tta-lsa.md`` §3.7, after the TENT reference (``DequanWang/tent``) and
``mariodoebler/test-time-adaptation`` (``methods/base.py``). A method wraps a *split model*
(``model.features``: x → h (N, D); ``model.head``: an ``nn.Linear``) and a swappable head
(:mod:`devicelab.methods.tta_lsa.heads`), so the label shift adapter and the controls change the head
without the method knowing::

    head = make_head("lsa", pi_s, adapter, PriorEstimator(pi_s))
    method = TTA_REGISTRY.build("tent", source_model, head=head)
    for x in stream:
        logits = method(x)        # predictions of the pre-update model; then one adaptation step
    method.reset()                # back to the source weights, optimizer state and π̂ = π_s

A new method is a subclass that fills in the hooks ``configure_model``, ``collect_params``, ``loss`` and
``postprocess`` and is registered with ``@TTA_REGISTRY.register("name")``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from devicelab.methods.tta_lsa.heads import PlainHead


class Registry:
    """Name → TTA method class; ``build(name, model, **kwargs)`` constructs one."""

    def __init__(self) -> None:
        self._classes: dict[str, type[TTAMethod]] = {}

    def register(self, name: str) -> Callable[[type[TTAMethod]], type[TTAMethod]]:
        def add(cls: type[TTAMethod]) -> type[TTAMethod]:
            if name in self._classes:
                raise ValueError(f"TTA method {name!r} is registered twice")
            self._classes[name] = cls
            cls.name = name
            return cls

        return add

    def names(self) -> list[str]:
        return list(self._classes)

    def get(self, name: str) -> type[TTAMethod]:
        if name not in self._classes:
            raise ValueError(f"unknown TTA method {name!r}; valid methods: {', '.join(self._classes)}")
        return self._classes[name]

    def build(self, name: str, model: nn.Module, **kwargs: Any) -> TTAMethod:
        return self.get(name)(model, **kwargs)


TTA_REGISTRY = Registry()


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per-sample entropy of softmax(logits): (N, K) -> (N,)."""
    return -(logits.softmax(dim=1) * logits.log_softmax(dim=1)).sum(dim=1)


def batch_norm_layers(model: nn.Module) -> list[tuple[str, nn.modules.batchnorm._BatchNorm]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def use_test_batch_statistics(model: nn.Module) -> None:
    """BN normalises with the statistics of the current test batch and keeps no running estimate (TENT)."""
    for _, bn in batch_norm_layers(model):
        bn.train()
        bn.track_running_stats = False
        bn.running_mean = None
        bn.running_var = None


class TTAMethod(nn.Module):
    """Base wrapper: predicts, then takes ``steps`` adaptation steps on the same batch.

    ``forward(x)`` returns the logits of the first forward pass, made with the pre-update parameters (TENT
    semantics, steps=1); ``reset()`` restores model and optimizer state from snapshots taken at construction
    and resets the head's prior estimate.
    """

    name = "base"

    def __init__(
        self,
        model: nn.Module,
        head: nn.Module | None = None,
        steps: int = 1,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        for attr in ("features", "head"):
            if not hasattr(model, attr):
                raise TypeError(
                    f"{type(model).__name__} has no .{attr}; a TTA method needs a split model "
                    "(features: x -> h, head: nn.Linear)"
                )
        if not isinstance(model.head, nn.Linear):
            raise TypeError(f"model.head must be nn.Linear, got {type(model.head).__name__}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.model = copy.deepcopy(model)
        self.head = head if head is not None else PlainHead()
        self.steps = steps
        self.lr, self.betas, self.weight_decay = lr, betas, weight_decay
        self.configure_model()
        self.params = list(self.collect_params())
        self.optimizer = self.make_optimizer(self.params) if self.params else None
        self._model_snapshot = copy.deepcopy(self.model.state_dict())
        self._optimizer_snapshot = copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None

    # hooks --------------------------------------------------------------------------------------------
    def configure_model(self) -> None:
        """Put the wrapped model in its test-time mode; default: source model in eval mode, frozen."""
        self.model.eval()
        self.model.requires_grad_(False)

    def collect_params(self) -> Iterable[nn.Parameter]:
        """The parameters the method updates (none by default)."""
        return []

    def make_optimizer(self, params: list[nn.Parameter]) -> Any:
        return torch.optim.Adam(params, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay)

    def loss(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor | None:
        """The unsupervised test-time loss of one batch; ``None`` means no update."""
        return None

    def postprocess(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Output-level adaptation (e.g. LAME); identity by default."""
        return logits

    # mechanics ----------------------------------------------------------------------------------------
    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)  # (N, D)
        return self.head(features, self.model.head), features  # (N, K), (N, D)

    def adapt_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass and, when the loss is defined, one optimizer step; returns that pass's outputs."""
        logits, features = self.forward_logits(x)
        loss = self.loss(logits, features)
        if loss is not None:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return logits, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.optimizer is None or self.steps == 0:
            with torch.no_grad():
                logits, features = self.forward_logits(x)
        else:
            with torch.enable_grad():
                for step in range(self.steps):
                    step_logits, step_features = self.adapt_step(x)
                    if step == 0:
                        logits, features = step_logits.detach(), step_features.detach()
        with torch.no_grad():
            out = self.postprocess(logits, features)
            self.head.observe(out, features, self.model.head)
        return out

    def reset(self) -> None:
        """Restore the source weights, the initial optimizer state and π̂ = π_s."""
        self.model.load_state_dict(self._model_snapshot)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._optimizer_snapshot))
        self.head.reset()


@TTA_REGISTRY.register("source")
class Source(TTAMethod):
    """No adaptation: the source model with BN in eval mode."""


@TTA_REGISTRY.register("bn-adapt")
class BNAdapt(TTAMethod):
    """Normalise with test-batch statistics, no gradient step ("BN-1"; Schneider et al. 2020 / TENT code)."""

    def configure_model(self) -> None:
        super().configure_model()
        use_test_batch_statistics(self.model)


@TTA_REGISTRY.register("tent")
class Tent(TTAMethod):
    """TENT (Wang et al., ICLR 2021): minimise the mean softmax entropy over BN affine parameters, BN with
    test-batch statistics (``DequanWang/tent`` ``tent.py``)."""

    def configure_model(self) -> None:
        self.model.train()
        self.model.requires_grad_(False)
        use_test_batch_statistics(self.model)
        for _, bn in batch_norm_layers(self.model):
            bn.requires_grad_(True)

    def collect_params(self) -> Iterable[nn.Parameter]:
        return [p for _, bn in batch_norm_layers(self.model) for p in (bn.weight, bn.bias) if p is not None]

    def loss(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return softmax_entropy(logits).mean()


@TTA_REGISTRY.register("eata")
class EATA(Tent):
    """EATA (Niu et al., ICML 2022; ``mr-eggplant/EATA``): entropy of reliable (E < E0 = 0.4·ln K) and
    non-redundant (|cos(p̄_ema, p)| < d_margin) samples, each weighted by 1/exp(E − E0), plus the Fisher
    (EWC) penalty α·Σ F(θ − θ0)² from source samples."""

    def __init__(
        self,
        model: nn.Module,
        head: nn.Module | None = None,
        *,
        d_margin: float = 0.4,
        fisher_alpha: float = 1.0,
        e_margin_scale: float = 0.4,
        fisher: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        self.d_margin, self.fisher_alpha = d_margin, fisher_alpha
        super().__init__(model, head, **kwargs)
        self.e_margin = e_margin_scale * math.log(self.model.head.out_features)
        self.model_probs: torch.Tensor | None = None  # EMA of the mean prediction of selected samples
        self.fisher = {k: v.clone() for k, v in (fisher or {}).items()}
        self.anchor = {n: p.detach().clone() for n, p in self.model.named_parameters() if n in self.fisher}
        unknown = set(self.fisher) - set(self.anchor)
        if unknown:
            raise ValueError(f"fisher names parameters the model does not adapt: {sorted(unknown)[:3]}")
        self.last_selected = 0

    def set_fisher(self, fisher: dict[str, torch.Tensor]) -> None:
        """Use the Fisher information ``fisher`` (parameter name -> tensor) with θ0 = the current weights."""
        self.fisher = {k: v.clone() for k, v in fisher.items()}
        self.anchor = {n: p.detach().clone() for n, p in self.model.named_parameters() if n in self.fisher}

    def selection(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample mask (N,) of reliable, non-redundant samples and their weights 1/exp(E − E0)."""
        entropy = softmax_entropy(logits)
        mask = entropy.detach() < self.e_margin
        if self.model_probs is not None:
            cos = F.cosine_similarity(self.model_probs.unsqueeze(0), logits.detach().softmax(dim=1), dim=1)
            mask = mask & (cos.abs() < self.d_margin)
        weights = torch.exp(-(entropy.detach() - self.e_margin))
        return mask, weights

    def loss(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor | None:
        entropy = softmax_entropy(logits)
        mask, weights = self.selection(logits)
        self.last_selected = int(mask.sum())
        if self.last_selected:
            probs = logits.detach()[mask].softmax(dim=1).mean(dim=0)
            self.model_probs = probs if self.model_probs is None else 0.9 * self.model_probs + 0.1 * probs
        else:
            return None
        loss = (entropy[mask] * weights[mask]).mean()
        if self.fisher:
            params = dict(self.model.named_parameters())
            penalty = sum((self.fisher[n] * (params[n] - self.anchor[n]) ** 2).sum() for n in self.fisher)
            loss = loss + self.fisher_alpha * penalty
        return loss

    def reset(self) -> None:
        super().reset()
        self.model_probs = None


def compute_fisher(method: TTAMethod, images: torch.Tensor, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Diagonal Fisher of the adapted parameters on source images, with the model's own predictions as labels
    (EATA reference: squared gradients of CE(f(x), argmax f(x)), averaged over batches)."""
    names = {id(p): n for n, p in method.model.named_parameters()}
    fisher = {names[id(p)]: torch.zeros_like(p) for p in method.params}
    batches = 0
    with torch.enable_grad():
        for start in range(0, len(images), batch_size):
            logits, _ = method.forward_logits(images[start : start + batch_size])
            loss = F.cross_entropy(logits, logits.argmax(dim=1))
            method.model.zero_grad(set_to_none=True)
            loss.backward()
            for p in method.params:
                if p.grad is not None:
                    fisher[names[id(p)]] += p.grad.detach() ** 2
            batches += 1
    method.model.zero_grad(set_to_none=True)
    method.reset()  # forward passes with batch statistics change nothing, but make sure
    return {n: f / max(batches, 1) for n, f in fisher.items()}


class SAM:
    """Sharpness-aware minimisation around a base optimizer (Foret et al. 2021; SAR's ``sam.py``):
    ``first_step`` moves to θ + ρ·g/‖g‖, ``second_step`` returns to θ and applies the base step."""

    def __init__(self, params: list[nn.Parameter], base: torch.optim.Optimizer, rho: float = 0.05) -> None:
        self.params, self.base, self.rho = params, base, rho
        self._saved: list[torch.Tensor] = []

    @torch.no_grad()
    def first_step(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.norm(torch.stack([g.norm(2) for g in grads]), 2) if grads else torch.tensor(0.0)
        scale = self.rho / (norm + 1e-12)
        self._saved = [p.detach().clone() for p in self.params]
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad * scale)
        self.zero_grad()

    @torch.no_grad()
    def second_step(self) -> None:
        for p, saved in zip(self.params, self._saved):
            p.copy_(saved)
        self.base.step()
        self.zero_grad()

    def zero_grad(self) -> None:
        self.base.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


@TTA_REGISTRY.register("sar")
class SAR(Tent):
    """SAR (Niu et al., ICLR 2023; ``mr-eggplant/SAR``): entropy of reliable samples (E < 0.4·ln K) with a
    SAM two-step update; BN affine parameters except the last stage; the model resets to the source when
    the EMA(0.9) of the second-step loss falls below 0.2."""

    def __init__(
        self,
        model: nn.Module,
        head: nn.Module | None = None,
        *,
        rho: float = 0.05,
        e_margin_scale: float = 0.4,
        reset_constant: float = 0.2,
        **kwargs: Any,
    ) -> None:
        self.rho = rho
        super().__init__(model, head, **kwargs)
        self.e_margin = e_margin_scale * math.log(self.model.head.out_features)
        self.reset_constant = reset_constant
        self.loss_ema: float | None = None
        self.resets = 0

    def collect_params(self) -> Iterable[nn.Parameter]:
        skip = set(getattr(self.model, "last_stage_names", ()))
        return [
            p
            for n, bn in batch_norm_layers(self.model)
            if n not in skip
            for p in (bn.weight, bn.bias)
            if p is not None
        ]

    def make_optimizer(self, params: list[nn.Parameter]) -> SAM:
        return SAM(params, super().make_optimizer(params), rho=self.rho)

    def adapt_step(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = self.forward_logits(x)
        entropy = softmax_entropy(logits)
        reliable = entropy.detach() < self.e_margin
        if int(reliable.sum()) == 0:
            return logits, features
        entropy[reliable].mean().backward()
        self.optimizer.first_step()
        entropy2 = softmax_entropy(self.forward_logits(x)[0])[reliable]
        reliable2 = entropy2.detach() < self.e_margin
        if int(reliable2.sum()) > 0:
            loss2 = entropy2[reliable2].mean()
            value = float(loss2.detach())
            self.loss_ema = value if self.loss_ema is None else 0.9 * self.loss_ema + 0.1 * value
            loss2.backward()
        self.optimizer.second_step()
        if self.loss_ema is not None and self.loss_ema < self.reset_constant:
            self.reset_model()
        return logits, features

    def reset_model(self) -> None:
        """SAR's model recovery: back to the source weights and optimizer state (π̂ is kept)."""
        self.model.load_state_dict(self._model_snapshot)
        self.optimizer.load_state_dict(copy.deepcopy(self._optimizer_snapshot))
        self.loss_ema = None
        self.resets += 1

    def reset(self) -> None:
        super().reset()
        self.loss_ema = None


@TTA_REGISTRY.register("lame")
class LAME(TTAMethod):
    """LAME (Boudiaf et al., CVPR 2022; ``fiveai/LAME``): Laplacian-regularised maximum-likelihood assignment
    of the batch's predictions on an RBF affinity of L2-normalised features (σ = mean distance to the k-th
    neighbour), ≤ ``max_steps`` bound iterations; the model itself is not changed."""

    def __init__(
        self,
        model: nn.Module,
        head: nn.Module | None = None,
        *,
        knn: int = 5,
        bound_lambda: float = 1.0,
        max_steps: int = 100,
        **kwargs: Any,
    ) -> None:
        self.knn, self.bound_lambda, self.max_steps = knn, bound_lambda, max_steps
        super().__init__(model, head, **kwargs)

    def affinity(self, features: torch.Tensor) -> torch.Tensor:
        x = F.normalize(features, p=2, dim=-1)
        dist = torch.cdist(x, x)  # (N, N)
        kth = dist.topk(k=min(self.knn, len(x)), dim=-1, largest=False).values[:, -1]
        sigma = kth.mean().clamp_min(1e-12)
        return torch.exp(-(dist**2) / (2 * sigma**2))

    def postprocess(self, logits: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        unary = -torch.log(logits.softmax(dim=1) + 1e-10)  # (N, K)
        kernel = self.affinity(features)
        y = (-unary).softmax(dim=1)
        old_energy = math.inf
        for i in range(self.max_steps):
            pairwise = self.bound_lambda * kernel @ y
            y = (-unary + pairwise).softmax(dim=1)
            energy = float(
                (unary * y - self.bound_lambda * pairwise * y + y * y.clamp_min(1e-20).log()).sum()
            )
            if i > 1 and abs(energy - old_energy) <= 1e-8 * abs(old_energy):
                break
            old_energy = energy
        return y.clamp_min(1e-20).log()  # log-probabilities, so softmax(output) = the LAME assignment
