"""Baseline CNN and LMF-CNN: the parameter counts of spec §2.3, the embedding point, SSN and bad arguments."""

import pytest
import torch

from devicelab.methods.asc_factorized.model import SceneClassifier, SceneCNN
from devicelab.nn.ssn import SubSpectralNorm
from devicelab.nn.utils import count_parameters


@pytest.mark.parametrize("frames", [500, 251])
def test_baseline_cnn_has_the_published_116118_parameters_at_any_length(frames):
    model = SceneCNN(10, conv="full")
    assert count_parameters(model) == 116_118
    assert model(torch.randn(2, 1, 40, frames)).shape == (2, 10)


@pytest.mark.parametrize(
    ("conv", "options", "params"),
    [
        ("rank1", {}, 43_318),
        ("parallel", {}, 43_318),
        ("sequential", {"mid_channels": "in"}, 35_933),
        ("sequential", {"mid_channels": "out"}, 64_598),
    ],
)
def test_factorised_networks_have_the_spec_counts(conv, options, params):
    model = SceneCNN(10, conv=conv, **options)
    assert count_parameters(model) == params
    assert model(torch.randn(2, 1, 40, 251)).shape == (2, 10)


def test_lmf_is_about_a_third_of_the_baseline():
    ratio = count_parameters(SceneCNN(10, conv="rank1")) / count_parameters(SceneCNN(10, conv="full"))
    assert ratio == pytest.approx(0.373, abs=5e-4)


def test_embedding_is_the_first_dense_layer_before_or_after_its_relu():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40, 120)
    pre = SceneCNN(8, embed_point="pre_relu").eval()
    post = SceneCNN(8, embed_point="post_relu").eval()
    post.load_state_dict(pre.state_dict())
    e_pre, e_post = pre.forward_features(x), post.forward_features(x)
    assert e_pre.shape == (4, 100) and bool((e_pre < 0).any())
    torch.testing.assert_close(e_post, torch.relu(e_pre))
    logits, e = pre.forward_with_embedding(x)
    torch.testing.assert_close(logits, pre(x))  # the classifier path continues ReLU - Dropout - Linear
    torch.testing.assert_close(logits, post(x))


def test_ssn_switch_replaces_both_batchnorms():
    model = SceneCNN(8, conv="rank1", norm="ssn", ssn_groups=2)
    norms = [m for m in model.modules() if isinstance(m, SubSpectralNorm)]
    assert len(norms) == 2 and not any(type(m) is torch.nn.BatchNorm2d for m in model.children())
    assert model(torch.randn(3, 1, 40, 251)).shape == (3, 8)


def test_classifier_standardises_each_band_with_training_statistics():
    cnn = SceneCNN(8).eval()
    mean, std = torch.linspace(-3, 3, 40), torch.linspace(1, 2, 40)
    model = SceneClassifier(cnn, mean, std).eval()
    x = torch.randn(2, 1, 40, 60)
    raw = x * std.view(1, 1, -1, 1) + mean.view(1, 1, -1, 1)
    torch.testing.assert_close(model(raw), cnn(x), atol=1e-5, rtol=1e-5)
    assert {"standardize.mean", "standardize.std"} <= set(model.state_dict())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="conv='depthwise'"):
        SceneCNN(conv="depthwise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_mels=50"):
        SceneCNN(n_mels=50)
    with pytest.raises(ValueError, match="norm='ln'"):
        SceneCNN(norm="ln")  # type: ignore[arg-type]
