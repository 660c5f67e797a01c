"""The networks of sed-tritrain: gradient reversal and D, the λ schedule, the orthogonality penalty, the
baseline's attention pooling, the mean teacher (sed-tritrain.md §8)."""

from __future__ import annotations

import copy

import pytest
import torch

from devicelab.core.config import resolve_config
from devicelab.methods.sed_tritrain.config import SedTritrainConfig
from devicelab.methods.sed_tritrain.model import (
    DomainClassifier,
    MeanTeacher,
    attention_pooling,
    consistency_weight,
    init_weights,
    linear_softmax_pooling,
    orthogonality_penalty,
)
from devicelab.methods.sed_tritrain.recipe import build_crnn, build_tritrain
from devicelab.nn.gradient_reversal import GradientReversal, dann_lambda


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_grl_is_identity_forward_and_reverses_the_gradient(lam):
    x = torch.randn(3, 4, requires_grad=True)
    y = GradientReversal(lam)(x)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full_like(x, -lam))


def test_domain_classifier_gets_unreversed_gradients_and_reverses_them_for_f():
    torch.manual_seed(0)
    d = DomainClassifier(6, hidden=5)
    d.grl.scale = 0.7
    h = torch.randn(2, 7, 6, requires_grad=True)
    logits = d(h)  # (B, T')
    assert logits.shape == (2, 7)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    plain = copy.deepcopy(d.net)
    h2 = h.detach().clone().requires_grad_(True)
    out = plain(h2).squeeze(-1)
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.ones_like(out)).backward()
    for p, q in zip(d.net.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)  # D minimises L_dom
    torch.testing.assert_close(h.grad, -0.7 * h2.grad)  # F maximises it
    pooled = DomainClassifier(6, hidden=5, attach="cnn_pooled")
    assert pooled(h).shape == (2, 1)


def test_dann_lambda_schedule():
    assert dann_lambda(0.0, final=2.0) == 0.0
    assert dann_lambda(1.0, final=2.0) == pytest.approx(0.9999 * 2.0, rel=1e-4)
    values = [dann_lambda(p / 20) for p in range(21)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))


def test_orthogonality_penalty_is_zero_on_disjoint_supports_and_has_the_right_gradient():
    w1 = torch.zeros(4, 6)
    w2 = torch.zeros(4, 6)
    w1[:, :3] = torch.randn(4, 3)
    w2[:, 3:] = torch.randn(4, 3)
    assert orthogonality_penalty(w1, w2) == 0.0
    a = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(orthogonality_penalty, (a, b))


def test_orth_penalty_reads_the_first_gru_layer_of_both_directions():
    config = resolve_config(SedTritrainConfig, "smoke")
    model = build_tritrain(config, num_classes=3)
    w = model.labelers[0].input_weights()
    assert w.shape == (2 * 3 * config.gru_hidden, model.features.out_dim)
    assert orthogonality_penalty(w, model.labelers[1].input_weights()) > 0  # different init draws


def test_attention_pooling_softmax_runs_over_classes():
    strong = torch.full((2, 9, 4), 0.3)
    assert torch.allclose(attention_pooling(strong, torch.randn(2, 9, 4)), torch.full((2, 4), 0.3))
    # one large logit in frame 5, class 2: over classes it gives that frame weight ~1 for class 2 (and ~0
    # for the others), while every other frame keeps 1/4; a softmax over time would give weak = strong[5]
    strong = torch.rand(1, 9, 4)
    logits = torch.zeros(1, 9, 4)
    logits[0, 5, 2] = 30.0
    weak = attention_pooling(strong, logits)
    assert weak.shape == (1, 4)
    others = [t for t in range(9) if t != 5]
    expected = (0.25 * strong[0, others, 2].sum() + strong[0, 5, 2]) / (0.25 * 8 + 1.0)
    assert float(weak[0, 2]) == pytest.approx(float(expected), rel=1e-5)
    assert float(weak[0, 0]) == pytest.approx(float(strong[0, others, 0].mean()), rel=1e-4)
    assert torch.allclose(linear_softmax_pooling(torch.full((1, 9, 4), 0.3)), torch.full((1, 4), 0.3))


def test_crnn_shapes_follow_the_time_pooling():
    config = resolve_config(SedTritrainConfig, "quick")
    model = build_crnn(config, num_classes=10).eval()
    with torch.no_grad():
        strong, weak = model(torch.randn(2, 1, 250, 64))
    assert strong.shape == (2, 125, 10) and weak.shape == (2, 10)
    assert float(strong.min()) >= 0.0 and float(strong.max()) <= 1.0


def test_linear_init_is_the_baselines_in_full_and_pytorchs_in_quick():
    full = build_crnn(resolve_config(SedTritrainConfig, "full"), num_classes=10)
    quick = build_crnn(resolve_config(SedTritrainConfig, "quick"), num_classes=10)
    gate = next(m for m in full.modules() if isinstance(m, torch.nn.Linear))
    assert float(gate.weight.std()) == pytest.approx(0.01, rel=0.3)  # N(0, 0.01) [ref]
    assert float(gate.bias.abs().max()) == 0.0
    gate = next(m for m in quick.modules() if isinstance(m, torch.nn.Linear))
    bound = 1 / gate.in_features**0.5  # PyTorch's Kaiming-uniform default
    assert float(gate.weight.std()) > 0.1 and float(gate.weight.abs().max()) <= bound
    with pytest.raises(ValueError, match="linear init"):
        init_weights(quick, "zeros")


def test_mean_teacher_starts_as_the_student_and_follows_the_ema_rule():
    torch.manual_seed(0)
    student = torch.nn.Linear(3, 2)
    mt = MeanTeacher(student, ema_max=0.999)
    with torch.no_grad():
        student.weight.add_(1.0)
    assert mt.update(student, step=0) == 0.0
    torch.testing.assert_close(mt.teacher.weight, student.weight)  # α = 0 at step 0
    before = mt.teacher.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    alpha = mt.update(student, step=3)
    assert alpha == pytest.approx(1 - 1 / 4)
    torch.testing.assert_close(mt.teacher.weight, alpha * before + (1 - alpha) * student.weight)
    assert mt.alpha(10**6) == 0.999
    assert not any(p.requires_grad for p in mt.teacher.parameters())


def test_consistency_ramp():
    assert consistency_weight(0, 100) == pytest.approx(2.0 * torch.exp(torch.tensor(-5.0)).item())
    assert consistency_weight(100, 100) == pytest.approx(2.0)
    assert consistency_weight(500, 100) == pytest.approx(2.0)
