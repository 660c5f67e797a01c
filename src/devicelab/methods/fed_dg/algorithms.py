"""FedFD and the baselines (FedAvg, FedProx, FedBN, FedSR) as pure federated algorithms.

Each class subclasses :class:`devicelab.federated.fedavg.TorchFedAvg` and overrides its hooks (``wire_keys``,
``aggregate``, ``loss``, ``local_state``, ...). They import nothing from Flower; the
loop engine and the Flower apps call them alike. Every random draw comes from
``stream_rng(seed, round, pid, stream)`` (streams ``"data"`` for batch order, ``"u"`` for FedFD's mixing
weights, ``"z"`` for FedSR's samples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from devicelab.federated.algo import (
    Arrays,
    ClientReply,
    RoundPlan,
    stream_rng,
    torch_generator,
    weighted_average,
)
from devicelab.federated.fedavg import LocalTraining, TorchFedAvg, load_arrays, model_arrays
from devicelab.methods.fed_dg.bn import (
    FedFDBatchNorm2d,
    bn_mode,
    fedfd_layers,
    global_statistics,
    is_adapter_key,
    strip_adapter,
)
from devicelab.methods.fed_dg.data import ClientData
from devicelab.nn.glyphnet import GlyphNet, GlyphNetConfig

__all__ = [
    "EVAL_MODES",
    "FedAvg",
    "FedBN",
    "FedFD",
    "FedProx",
    "FedSR",
    "LocalTraining",
    "ModelConfig",
    "adapter_alphas",
    "build_model",
    "evaluate",
    "load_arrays",
    "model_arrays",
]

# "ifa-init": the adapter's mode with the adapter at its initial values, the control that shows it learned
EVAL_MODES = ("global", "ifa", "ifa-init", "instance", "testbatch")


# ----------------------------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class ModelConfig:
    """Backbone and BN switches shared by every algorithm of one comparison."""

    backbone: str = "glyphnet"
    num_classes: int = 10
    widths: tuple[int, ...] = (16, 32, 32, 64)
    ifa: str = "mlp"  # "mlp" | "affine"
    local_stats: str = "batch"  # "batch" | "instance"
    u_dist: str = "uniform"  # "uniform" | "beta:a" | "fixed:u"
    div_layers: str = "all"  # "all" | "first:k"
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    fedsr_z_dim: int = 0  # > 0: FedSR's probabilistic representation head
    init_weights: str = ""  # resnet18: a user-supplied safetensors initialisation (torchvision names)


def diversified_layer_count(div_layers: str, total: int) -> int:
    """How many BN layers (from the input side) diversify: ``"all"`` or ``"first:k"``."""
    if div_layers == "all":
        return total
    kind, _, k = div_layers.partition(":")
    if kind != "first" or not k.isdigit():
        raise ValueError(f"div_layers={div_layers!r}: expected 'all' or 'first:<k>'")
    return min(int(k), total)


class FedSRNet(nn.Module):
    """FedSR's model: z ~ N(mu(x), sigma(x)) on top of the backbone features, a linear classifier on z,
    and a learnable Gaussian r(z|y) per class (Nguyen et al., NeurIPS 2022)."""

    def __init__(self, backbone: GlyphNet, z_dim: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.z_head = nn.Linear(backbone.num_features, 2 * z_dim)
        self.classifier = nn.Linear(z_dim, num_classes)
        self.r_mu = nn.Parameter(torch.zeros(num_classes, z_dim))
        self.r_sigma = nn.Parameter(torch.ones(num_classes, z_dim))
        self.z_dim = z_dim

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # -> mu, sigma (B, z)
        h = self.z_head(self.backbone.forward_features(x))
        return h[:, : self.z_dim], F.softplus(h[:, self.z_dim :]) + 1e-4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.distribution(x)
        return self.classifier(mu)  # the mean representation at test time


def build_model(cfg: ModelConfig) -> nn.Module:
    """The backbone with ``FedFDBatchNorm2d`` in every norm slot (the first ``div_layers`` diversify)."""
    if cfg.backbone not in ("glyphnet", "resnet18"):
        raise ValueError(f"backbone={cfg.backbone!r}: expected 'glyphnet' or 'resnet18'")
    counter = iter(range(10_000))
    n_div = diversified_layer_count(cfg.div_layers, 10_000)

    def norm(c: int) -> nn.Module:
        return FedFDBatchNorm2d(
            c,
            eps=cfg.bn_eps,
            momentum=cfg.bn_momentum,
            ifa=cfg.ifa,
            local_stats=cfg.local_stats,
            u_dist=cfg.u_dist,
            diversify=next(counter) < n_div,
        )

    if cfg.backbone == "resnet18":
        from devicelab.methods.fed_dg.resnet import ResNet18, load_pretrained

        net = ResNet18(cfg.num_classes, norm_layer=norm, widths=tuple(cfg.widths))
        if cfg.init_weights:
            load_pretrained(net, cfg.init_weights)
    else:
        net = GlyphNet(GlyphNetConfig(3, cfg.num_classes, tuple(cfg.widths)), norm_layer=norm)
    if cfg.fedsr_z_dim > 0:
        return FedSRNet(net, cfg.fedsr_z_dim, cfg.num_classes)
    return net


def bn_keys(model: nn.Module) -> set[str]:
    """Every state-dict key of the BN layers (affine, buffers and adapter)."""
    names = fedfd_layers(model)
    return {k for k in model.state_dict() if any(k.startswith(n + ".") for n in names)}


# ----------------------------------------------------------------------------------------------------------
# Algorithms


@dataclass
class FedAvg(TorchFedAvg):
    """FedAvg over the whole state dict, BN running buffers included, weighted by sample count
    (McMahan et al. 2017; the FedDG-GA PACS protocol). FedFD's adapter is neither sent nor trained here."""

    model: ModelConfig = field(default_factory=ModelConfig)
    build_model: Callable[[ModelConfig], nn.Module] = build_model  # the module-level builder above
    # inference modes of the last evaluation; the adapter's modes only where an adapter was trained (FedFD)
    final_eval_modes: tuple[str, ...] = ("global", "instance", "testbatch")

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        return {k for k in self.state_keys() if not is_adapter_key(k)}

    def optimised_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters the client's SGD updates in the main stage (the adapter is left alone)."""
        return [p for n, p in model.named_parameters() if not is_adapter_key(n)]

    def server_eval(self, arrays: Arrays, plan: RoundPlan) -> dict[str, float]:
        if self.eval_data is None:
            return {}
        modes = self.final_eval_modes if plan.round == self.num_rounds else ("global",)
        return {
            f"acc-{m}": a for m, a in evaluate(self, arrays, *self.eval_data, modes, self.eval_batch).items()
        }


def proximal_term(model: nn.Module, global_params: dict[str, torch.Tensor], mu: float) -> torch.Tensor:
    """FedProx's (mu/2)·||w − w_G||² over the trainable parameters; its gradient is mu·(w − w_G)."""
    total = torch.zeros(())
    for name, p in model.named_parameters():
        if name in global_params:
            total = total + ((p - global_params[name]) ** 2).sum()
    return 0.5 * mu * total


@dataclass
class FedProx(FedAvg):
    """FedAvg plus the client-side proximal term (mu/2)·||w − w_G||² (Li et al., MLSys 2020), mu = 0.01."""

    mu: float = 0.01
    name: str = "fedprox"

    def plan(self, round: int) -> RoundPlan:
        return RoundPlan(round, "train", self.seed, {"proximal-mu": self.mu})

    def round_context(self, model, global_arrays, data, plan):
        return {n: p.detach().clone() for n, p in model.named_parameters() if not is_adapter_key(n)}

    def loss(self, model, x, y, plan, context, pid):
        logits = model(x)
        mu = float(plan.switches.get("proximal-mu", self.mu))
        return F.cross_entropy(logits, y) + proximal_term(model, context, mu), logits


@dataclass
class FedBN(FedAvg):
    """FedBN (Li et al., ICLR 2021): BN affine and buffers stay on the client and are never sent."""

    name: str = "fedbn"

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        model = build_model(self.model)
        return {k for k in model.state_dict() if k not in bn_keys(model)}

    def local_start(self, global_arrays: Arrays, state: Arrays) -> Arrays:
        return {**global_arrays, **state}

    def local_state(self, model: nn.Module, arrays: Arrays) -> Arrays:
        return {k: arrays[k] for k in sorted(bn_keys(model))}

    def merge_client_bn(
        self, arrays: Arrays, client_states: dict[int, Arrays], weights: dict[int, int]
    ) -> Arrays:
        """FedBN-avg: the global arrays with the sample-weighted average of the clients' final BN states
        (collected once after training; loop engine only)."""
        replies = [ClientReply(client_states[p], weights[p], pid=p) for p in sorted(client_states)]
        return weighted_average(arrays, replies)


@dataclass
class FedSR(FedAvg):
    """FedSR (Nguyen et al., NeurIPS 2022): L = CE + a_L2R·E||z||² + a_CMI·KL(N(mu, sigma) || r(z|y))."""

    a_l2r: float = 0.01
    a_cmi: float = 5e-4
    name: str = "fedsr"

    def __post_init__(self) -> None:
        if self.model.fedsr_z_dim <= 0:
            raise ValueError("FedSR needs model.fedsr_z_dim > 0")

    def round_context(self, model, global_arrays, data, plan):
        return torch_generator(plan.seed, plan.round, data.pid, "z")

    def loss(self, model, x, y, plan, context, pid):
        return fedsr_loss(model, x, y, self.a_l2r, self.a_cmi, context)


def fedsr_loss(
    model: FedSRNet,
    x: torch.Tensor,
    y: torch.Tensor,
    a_l2r: float,
    a_cmi: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FedSR's loss on one batch and the logits of the sampled representation."""
    mu, sigma = model.distribution(x)
    eps = torch.randn(mu.shape, generator=generator)
    z = mu + sigma * eps
    logits = model.classifier(z)
    loss = F.cross_entropy(logits, y)
    if a_l2r:
        loss = loss + a_l2r * z.pow(2).sum(1).mean()
    if a_cmi:
        r_mu, r_sigma = model.r_mu[y], F.softplus(model.r_sigma[y]) + 1e-4
        kl = (
            (torch.log(r_sigma / sigma) + (sigma**2 + (mu - r_mu) ** 2) / (2 * r_sigma**2) - 0.5)
            .sum(1)
            .mean()
        )
        loss = loss + a_cmi * kl
    return loss, logits


@dataclass
class FedFD(FedAvg):
    """FedFD (spec §2.3) followed by the IFA stage of FedFD-A (§2.4).

    Rounds 1..R: each batch runs a plain pass (updates the BN buffers) and a diversified pass that normalises
    with a random per-channel mix of local and frozen global statistics;
    ``L = CE(f(x)) + CE(f_mix(x)) + lambda_c · KL(sg(p) || p_mix)`` [reconstruction of the client-agnostic
    objective]. Rounds R+1..R+R_a (``ifa_schedule="second_stage"``): message type ``train.ifa``; clients
    train only the ``*.ifa.*`` parameters in IFA mode with CE; replies carry only those.
    """

    lambda_c: float = 1.0
    div_views: str = "both"  # "both" | "replace"
    p_div: float = 0.5  # "replace": probability of the diversified pass
    ifa_rounds: int = 3
    ifa_schedule: str = "second_stage"  # "second_stage" | "joint"
    ifa_lr: float = 0.01
    ifa_optimizer: str = "sgd"  # "sgd" (momentum as the main stage) | "adam"
    global_var: str = "mean"  # "mean" | "pooled"
    name: str = "fedfd"
    final_eval_modes: tuple[str, ...] = EVAL_MODES
    stages: tuple[str, ...] = ("train", "ifa")

    def __post_init__(self) -> None:
        if self.div_views not in ("both", "replace"):
            raise ValueError(f"div_views={self.div_views!r}: expected 'both' or 'replace'")
        if self.ifa_schedule not in ("second_stage", "joint"):
            raise ValueError(f"ifa_schedule={self.ifa_schedule!r}: expected 'second_stage' or 'joint'")
        if self.global_var not in ("mean", "pooled"):
            raise ValueError(f"global_var={self.global_var!r}: expected 'mean' or 'pooled'")
        if self.ifa_optimizer not in ("sgd", "adam"):
            raise ValueError(f"ifa_optimizer={self.ifa_optimizer!r}: expected 'sgd' or 'adam'")

    @property
    def num_rounds(self) -> int:
        return self.rounds + (self.ifa_rounds if self.ifa_schedule == "second_stage" else 0)

    def plan(self, round: int) -> RoundPlan:
        stage = "ifa" if round > self.rounds and self.ifa_schedule == "second_stage" else "train"
        return RoundPlan(round, stage, self.seed, {"lambda-c": self.lambda_c})

    def wire_keys(self, plan: RoundPlan) -> set[str]:
        if plan.stage == "ifa":
            return {k for k in self.state_keys() if is_adapter_key(k)}
        if self.ifa_schedule == "joint":
            return set(self.state_keys())
        return {k for k in self.state_keys() if not is_adapter_key(k)}

    def aggregate(self, global_arrays: Arrays, replies: Sequence[ClientReply], plan: RoundPlan) -> Arrays:
        out = weighted_average(global_arrays, replies, self.wire_keys(plan))
        if self.global_var == "pooled" and plan.stage == "train":
            out = pooled_bn_variance(out, replies)
        return out

    def round_context(self, model, global_arrays, data, plan):
        return {"stats": global_statistics(model), "rng": stream_rng(plan.seed, plan.round, data.pid, "u")}

    def client_update(
        self, global_arrays: Arrays, data: ClientData, state: Arrays, plan: RoundPlan
    ) -> ClientReply:
        if plan.stage != "ifa":
            return super().client_update(global_arrays, data, state, plan)
        model = build_model(self.model)
        load_arrays(model, global_arrays)
        adapter = [p for n, p in model.named_parameters() if is_adapter_key(n)]
        for n, p in model.named_parameters():
            p.requires_grad_(is_adapter_key(n))
        model.eval()  # buffers frozen; IFA mode uses them as the global statistics
        if self.ifa_optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(adapter, lr=self.ifa_lr)
        else:
            opt = torch.optim.SGD(adapter, lr=self.ifa_lr, momentum=self.train.momentum)
        with bn_mode(model, "ifa"):
            loss_sum, correct, seen = self.run_epochs(model, opt, data, plan, None)
        return self.reply(model, data, plan, loss_sum, correct, seen, keep_state=False)

    def loss(self, model, x, y, plan, context, pid):
        if plan.stage == "ifa":
            logits = model(x)
            return F.cross_entropy(logits, y), logits
        lambda_c = float(plan.switches.get("lambda-c", self.lambda_c))
        rng: np.random.Generator = context["rng"]
        if self.div_views == "replace":
            if rng.random() < self.p_div:
                with bn_mode(model, "mix", global_stats=context["stats"], rng=rng):
                    logits = model(x)
            else:
                logits = model(x)
            return F.cross_entropy(logits, y), logits
        logits = model(x)  # plain pass: batch statistics, running buffers updated
        with bn_mode(model, "mix", global_stats=context["stats"], rng=rng):
            logits_mix = model(x)  # diversified pass: buffers untouched
        return fedfd_objective(logits, logits_mix, y, lambda_c), logits

    def after_backward(self, model, x, y, plan, context):
        if self.ifa_schedule != "joint" or plan.stage == "ifa":
            return
        adapter = [p for n, p in model.named_parameters() if is_adapter_key(n)]
        with bn_mode(model, "ifa"):
            loss_ifa = F.cross_entropy(model(x), y)
        grads = torch.autograd.grad(loss_ifa, adapter)  # stop-gradient into the backbone
        for p, g in zip(adapter, grads):
            p.grad = g

    def optimised_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        if self.ifa_schedule == "joint":
            return list(model.parameters())
        return super().optimised_parameters(model)


def fedfd_objective(
    logits: torch.Tensor, logits_mix: torch.Tensor, y: torch.Tensor, lambda_c: float
) -> torch.Tensor:
    """CE(f(x), y) + CE(f_mix(x), y) + lambda_c · KL(stopgrad(p(x)) || p_mix(x))  [reconstruction]."""
    kl = F.kl_div(F.log_softmax(logits_mix, 1), F.softmax(logits.detach(), 1), reduction="batchmean")
    return F.cross_entropy(logits, y) + F.cross_entropy(logits_mix, y) + lambda_c * kl


def pooled_bn_variance(arrays: Arrays, replies: Sequence[ClientReply]) -> Arrays:
    """global_var="pooled": var_G = Σ w_k (var_k + (mu_k − mu_G)²) for every BN layer [reconstruction]."""
    total = float(sum(r.n for r in replies))
    out = dict(arrays)
    for key in arrays:
        if not key.endswith("running_var") or is_adapter_key(key):
            continue
        mean_key = key[: -len("running_var")] + "running_mean"
        mu_g = arrays[mean_key].astype(np.float64)
        acc = np.zeros_like(mu_g)
        for r in replies:
            acc += (r.n / total) * (r.arrays[key].astype(np.float64) + (r.arrays[mean_key] - mu_g) ** 2)
        out[key] = acc.astype(arrays[key].dtype)
    return out


# ----------------------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate(
    algo: FedAvg,
    arrays: Arrays,
    images: torch.Tensor,
    labels: torch.Tensor,
    modes: Sequence[str] = EVAL_MODES,
    batch_size: int = 256,
) -> dict[str, float]:
    """Top-1 accuracy (%) of the global model on held-out images under each inference mode.

    ``global``: the running (global) statistics; ``ifa``: the adapter, one input at a time in effect
    (per-sample statistics); ``ifa-init``: the same with the adapter at its initial values (a control: it
    differs from ``ifa`` only if the adapter learned); ``instance``: instance statistics (TTBN);
    ``testbatch``: statistics of test batches of 64 (TTBN-batch, transductive).
    """
    model = build_model(algo.model)
    load_arrays(model, arrays)
    model.eval()
    out = {}
    for mode in modes:
        bs = 64 if mode == "testbatch" else batch_size
        correct = 0
        net = model
        if mode == "ifa-init":  # the adapter keeps its initial values when its keys are left out
            with torch.random.fork_rng(devices=[]):  # building a model must not move the caller's RNG
                net = build_model(algo.model)
            load_arrays(net, strip_adapter(arrays))
            net.eval()
        with bn_mode(net, {"global": "plain", "ifa-init": "ifa"}.get(mode, mode)):
            for start in range(0, len(labels), bs):
                logits = net(images[start : start + bs])
                correct += int((logits.argmax(1) == labels[start : start + bs]).sum())
        out[mode] = 100.0 * correct / max(len(labels), 1)
    return out


@torch.no_grad()
def adapter_alphas(
    algo: FedAvg, arrays: Arrays, images: torch.Tensor, initial: bool = False, batch_size: int = 256
) -> list[float]:
    """The adapter's mixing weight alpha (the share of instance statistics), averaged over ``images`` and
    channels, per BN layer from the input side; ``initial=True``: the adapter at its initial values."""
    with torch.random.fork_rng(devices=[]):  # building a model must not move the caller's RNG
        model = build_model(algo.model)
    load_arrays(model, strip_adapter(arrays) if initial else arrays)
    model.eval()
    layers = list(fedfd_layers(model).values())
    sums = [0.0] * len(layers)
    with bn_mode(model, "ifa"):
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size])
            for i, layer in enumerate(layers):
                sums[i] += float(layer.last_alpha.mean(1).sum())
    return [total / max(len(images), 1) for total in sums]
