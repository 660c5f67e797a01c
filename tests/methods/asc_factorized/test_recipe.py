"""The quick recipe's optimiser: cosine decay of Adam's rate per step; the full profile's constant rate."""

import pytest
import torch

from devicelab.core.config import resolve_config
from devicelab.methods.asc_factorized.config import AscFactorizedConfig
from devicelab.methods.asc_factorized.recipe import make_optimizer


def _rates(config: AscFactorizedConfig, steps: int) -> list[float]:
    model = torch.nn.Linear(2, 2)
    optimizer, scheduler = make_optimizer(model, config, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    rates.append(optimizer.param_groups[0]["lr"])
    return rates


def test_cosine_decays_from_lr_to_zero_over_the_run():
    config = resolve_config(AscFactorizedConfig, "quick")
    assert config.lr_schedule == "cosine"
    rates = _rates(config, 10)
    peak = config.lr
    assert rates[0] == pytest.approx(peak) and rates[5] == pytest.approx(peak / 2) and rates[-1] == 0.0
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_full_keeps_the_baselines_constant_rate_and_plain_adam():
    config = resolve_config(AscFactorizedConfig, "full")
    assert config.lr_schedule == "constant" and config.weight_decay == 0.0
    optimizer, scheduler = make_optimizer(torch.nn.Linear(2, 2), config, 10)
    assert scheduler is None and type(optimizer) is torch.optim.Adam
    assert _rates(config, 5) == [pytest.approx(1e-3)] * 6


def test_weight_decay_switches_to_adamw():
    config = AscFactorizedConfig(weight_decay=1e-4)
    optimizer, _ = make_optimizer(torch.nn.Linear(2, 2), config, 10)
    assert type(optimizer) is torch.optim.AdamW and optimizer.param_groups[0]["weight_decay"] == 1e-4
