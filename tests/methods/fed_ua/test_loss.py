"""The positive-only loss and its variants; its gradient is the threat model's rank-one update (spec §2.3)."""

import numpy as np
import torch

from devicelab.methods.fed_ua.codes import simulated_codeword
from devicelab.methods.fed_ua.loss import codeword_loss, codeword_scores
from devicelab.methods.fed_ua.model import CodewordModel, ModelConfig


def test_hinge_equals_the_formula():
    g = torch.Generator().manual_seed(0)
    o, v = torch.randn(5, 16, generator=g), torch.from_numpy(simulated_codeword(0, 1, 16))
    expected = torch.clamp(1 - (o * v).sum(1) / 16, min=0).mean()
    assert torch.allclose(codeword_loss(o, v), expected)
    assert torch.allclose(codeword_scores(o, v), (o @ v) / 16)


def test_hinge_is_zero_on_scaled_codewords_and_positive_below():
    v = torch.from_numpy(simulated_codeword(0, 2, 32))
    for k in (1.0, 1.5, 4.0):
        assert float(codeword_loss(k * v[None, :].repeat(3, 1), v)) == 0.0
    assert float(codeword_loss(0.5 * v[None, :], v)) == 0.5
    assert float(codeword_loss(-v[None, :], v)) == 2.0


def test_l2_output_gives_one_minus_cosine():
    model = CodewordModel(ModelConfig(out_dim=16, channels=8, embed_dim=8, output_norm="l2"))
    x = torch.randn(4, 40, 20)
    v = torch.from_numpy(simulated_codeword(0, 3, 16))
    raw = model.output(model.embedding(x))
    cos = torch.nn.functional.cosine_similarity(raw, v[None, :], dim=1)
    assert torch.allclose(codeword_loss(model(x), v), (1 - cos).mean(), atol=1e-6)


def test_bce_variant_targets_the_bits():
    v = torch.tensor([1.0, -1.0, 1.0, -1.0])
    assert float(codeword_loss(20 * v[None, :], v, "bce")) < 1e-6
    assert float(codeword_loss(-20 * v[None, :], v, "bce")) > 10


def test_output_layer_gradient_is_rank_one_with_left_factor_v():
    model = CodewordModel(ModelConfig(out_dim=32, channels=8, embed_dim=8))
    v = torch.from_numpy(simulated_codeword(0, 4, 32))
    loss = codeword_loss(model(torch.randn(6, 40, 20)), v)
    loss.backward()
    grad = model.output.weight.grad.double().numpy()  # (c, d)
    s = np.linalg.svd(grad, compute_uv=False)
    assert s[1] < 1e-6 * s[0]
    u = np.linalg.svd(grad)[0][:, 0]
    assert abs(abs(np.dot(np.sign(u), v.numpy())) - 32) < 1e-9


def test_pos_neg_needs_the_codebook():
    v = torch.from_numpy(simulated_codeword(0, 0, 8))
    book = torch.stack([v, -v])
    o = v[None, :].clone()
    assert float(codeword_loss(o, v, "pos+neg", book, 0)) == 0.0  # other codeword at −1: no penalty
    try:
        codeword_loss(o, v, "pos+neg")
    except ValueError as e:
        assert "codebook" in str(e)
    else:
        raise AssertionError("pos+neg without the codebook must fail")
