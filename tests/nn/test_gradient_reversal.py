import math

import torch

from devicelab.nn.gradient_reversal import GradientReversal, dann_lambda, reverse_gradient


def test_forward_is_identity_and_backward_reverses_scaled():
    x = torch.randn(4, 3, requires_grad=True)
    layer = GradientReversal(0.5)
    y = layer(x)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    assert torch.allclose(x.grad, -0.5 * torch.arange(3.0).expand(4, 3))


def test_zero_scale_blocks_the_gradient_but_not_the_branch():
    x = torch.randn(2, 2, requires_grad=True)
    w = torch.randn(2, requires_grad=True)
    (reverse_gradient(x, 0.0) @ w).sum().backward()
    assert torch.count_nonzero(x.grad) == 0
    assert torch.count_nonzero(w.grad) > 0


def test_dann_schedule_runs_from_zero_to_final():
    assert dann_lambda(0.0) == 0.0
    assert math.isclose(dann_lambda(1.0, final=0.3), 0.3 * (2 / (1 + math.exp(-10)) - 1))
    assert dann_lambda(0.2) < dann_lambda(0.5) < dann_lambda(2.0) <= 1.0
