"""Initialisation, the two mean parametrisations, and bound-difference scoring (spec §2.5–§2.6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from devicelab.methods.phoneme_vgpds.config import VgpdsConfig
from devicelab.methods.phoneme_vgpds.tokens import pad_tokens
from devicelab.methods.phoneme_vgpds.training import VgpdsClassifier, initialise_models, masked_median


def smooth_tokens(rng: np.random.Generator, lengths, dim: int = 3, offset: float = 0.0) -> list[np.ndarray]:
    return [offset + np.cumsum(rng.normal(size=(n, dim)), 0) * 0.3 for n in lengths]


def test_initialisation_follows_the_spec():
    rng = np.random.default_rng(0)
    tokens = [smooth_tokens(rng, (8, 5, 7, 6)), smooth_tokens(rng, (4, 9, 6))]
    config = VgpdsConfig(latent_dim=2, num_inducing=5)
    models = initialise_models(pad_tokens(tokens), config)
    with torch.no_grad():
        latent = models.latent_marginals()
        variance = masked_median(latent.variance, models.frame_mask)
        torch.testing.assert_close(variance, torch.full_like(variance, 0.18), rtol=1e-6, atol=0)
        # μ = K_t μ̄ reproduces the whitened class PCA scores
        scores = models.project(models.frames) * models.frame_mask.unsqueeze(-1)
        torch.testing.assert_close(latent.mean, scores, rtol=0, atol=1e-8)
        snr = models.emission_variances()[1] * models.data_variance
        torch.testing.assert_close(snr, torch.full_like(snr, 100.0))
    flat = latent.mean.reshape(2, -1, 2)
    for c in range(2):  # Z rows are rows of μ
        assert all(torch.isclose(flat[c], z).all(-1).any() for z in models.inducing[c].detach())


def test_both_mean_parametrisations_give_the_same_initial_bound():
    rng = np.random.default_rng(1)
    tokens = [smooth_tokens(rng, (6, 4, 5))]
    bounds = []
    for parametrisation in ("mean_bar", "mean"):
        config = VgpdsConfig(latent_dim=2, num_inducing=4, mean_parametrisation=parametrisation)
        with torch.no_grad():
            bounds.append(initialise_models(pad_tokens(tokens), config)().bound.item())
    assert bounds[0] == pytest.approx(bounds[1], rel=1e-9)


@pytest.mark.parametrize("parametrisation", ["mean_bar", "mean"])
@pytest.mark.parametrize("latent_prior", ["gp_time", "isotropic"])
def test_classifier_scores_every_token_against_every_class(parametrisation, latent_prior):
    rng = np.random.default_rng(2)
    train = [smooth_tokens(rng, (5, 6, 4)), smooth_tokens(rng, (6, 5), offset=3.0)]
    test = smooth_tokens(rng, (4, 9)) + smooth_tokens(rng, (7,), offset=3.0)  # 9 frames: longer than training
    config = VgpdsConfig(
        latent_dim=2,
        num_inducing=4,
        train_iters=5,
        fixed_beta_iters=2,
        test_iters=3,
        latent_prior=latent_prior,
        mean_parametrisation=parametrisation,
    )
    classifier = VgpdsClassifier(config).fit(train)
    scores = classifier.score(test)
    assert scores.shape == (3, 2) and torch.isfinite(scores).all()
    assert classifier.predict(test).shape == (3,)
    torch.testing.assert_close(classifier.log_prior.exp().sum(), torch.tensor(1.0, dtype=torch.float64))


def test_training_resumes_from_a_checkpoint_to_the_uninterrupted_result(tmp_path):
    from dataclasses import replace

    from devicelab.core.checkpoint import TrainingCheckpoint
    from devicelab.methods.phoneme_vgpds.config import ConstraintConfig
    from devicelab.methods.phoneme_vgpds.training import train_models

    rng = np.random.default_rng(3)
    tokens = pad_tokens([smooth_tokens(rng, (5, 6, 4)), smooth_tokens(rng, (6, 5))])
    config = VgpdsConfig(
        latent_dim=2,
        num_inducing=4,
        train_iters=8,
        fixed_beta_iters=3,
        checkpoint_every=2,
        constraint=ConstraintConfig(solver="dual", dual_every=2),
    )
    straight = initialise_models(tokens, config)
    train_models(straight, config)

    checkpoint = TrainingCheckpoint(tmp_path / "vgpds")
    interrupted = initialise_models(tokens, config)
    train_models(interrupted, replace(config, train_iters=4), checkpoint=checkpoint)
    resumed = initialise_models(tokens, config)
    history = train_models(resumed, config, checkpoint=checkpoint)
    assert [h["iteration"] for h in history] == [2, 4, 6, 8]  # one record per checkpoint block
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_lbfgs_option_raises_the_bound():
    from devicelab.methods.phoneme_vgpds.training import train_models

    rng = np.random.default_rng(4)
    tokens = pad_tokens([smooth_tokens(rng, (6, 5, 4)), smooth_tokens(rng, (5, 6))])
    config = VgpdsConfig(
        latent_dim=2,
        num_inducing=4,
        optimizer="lbfgs",
        lr=1.0,
        train_iters=8,
        fixed_beta_iters=3,
        checkpoint_every=1,
    )
    history = train_models(initialise_models(tokens, config), config)
    assert all(np.isfinite(h["bound_per_frame"]) for h in history)
    assert history[-1]["bound_per_frame"] > history[0]["bound_per_frame"]
