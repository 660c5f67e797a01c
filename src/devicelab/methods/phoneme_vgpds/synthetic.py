"""The in-process synthetic sets of spec §7 (every profile; no corpus).

- :func:`estimation_set`: sequences drawn from a VGPDS with known ℓ_t, w, σ_f², β (parameter estimation).
- :func:`classification_set`: classes that differ only in the time lengthscale ℓ_t and share one emission map,
  drawn once as random Fourier features of the RBF kernel; the latent columns have unit marginal variance in
  every class, so the frame marginals are identical and a bag-of-frames model is at chance by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devicelab.core.seeding import child_rng
from devicelab.methods.phoneme_vgpds.config import SyntheticClassificationConfig, SyntheticEstimationConfig

LATENT_JITTER = 1e-6  # added to the latent time covariance before its Cholesky factor


def rbf_time_covariance(
    frames: int, frame_period_s: float, lengthscale_s: float, white: float = 0.0
) -> np.ndarray:
    """σ_r² = 1 RBF covariance over the token times 0, period, …, plus ``white`` on the diagonal: (n, n)."""
    t = frame_period_s * np.arange(frames)
    rbf = np.exp(-0.5 * (t[:, None] - t[None]) ** 2 / lengthscale_s**2)
    return rbf + (white + LATENT_JITTER) * np.eye(frames)


def sample_latent(
    rng: np.random.Generator, time_cov: np.ndarray, sequences: int, latent_dim: int
) -> np.ndarray:
    """Latent trajectories with columns x_q ~ N(0, K_t), independent over q and sequences: (S, n, Q)."""
    chol = np.linalg.cholesky(time_cov)
    return np.einsum("ts,ksq->ktq", chol, rng.standard_normal((sequences, len(time_cov), latent_dim)))


@dataclass
class EstimationSet:
    """Training and held-out sequences of one VGPDS, and the parameters that drew them."""

    train: list[np.ndarray]  # each (n, D)
    held_out: list[np.ndarray]
    latent: np.ndarray  # (S_train + S_held_out, n, Q)
    truth: dict[str, float | list[float]]


def estimation_set(config: SyntheticEstimationConfig, held_out: int = 5) -> EstimationSet:
    """Draw ``sequences`` (+ ``held_out``) sequences from the VGPDS of spec §2.2 with the config's parameters.

    Time kernel: σ_r² = 1 RBF with ℓ_t and σ_w² = 1e-3, no bias; emission: one draw of f_d ~ GP(0, k_f) at
    every latent point (exact joint sample), then y = f + ε with ε ~ N(0, β⁻¹).
    """
    if len(config.inverse_widths) != config.latent_dim:
        raise ValueError(
            f"inverse_widths has {len(config.inverse_widths)} values; latent_dim={config.latent_dim}"
        )
    rng = child_rng(config.seed, "phoneme-vgpds", "estimation")
    total = config.sequences + held_out
    time_cov = rbf_time_covariance(
        config.frames, config.frame_period_s, config.time_lengthscale_s, white=1e-3
    )
    latent = sample_latent(rng, time_cov, total, config.latent_dim)  # (S, n, Q)
    points = latent.reshape(-1, config.latent_dim)
    w = np.asarray(config.inverse_widths)
    sq = (((points[:, None] - points[None]) ** 2) * w).sum(-1)
    k_f = config.signal_variance * np.exp(-0.5 * sq) + 1e-8 * config.signal_variance * np.eye(len(points))
    f = np.linalg.cholesky(k_f) @ rng.standard_normal((len(points), config.output_dim))
    y = f + rng.standard_normal(f.shape) / np.sqrt(config.noise_precision)
    seqs = list(y.reshape(total, config.frames, config.output_dim))
    truth = {
        "time_lengthscale_s": config.time_lengthscale_s,
        "inverse_widths": list(config.inverse_widths),
        "signal_variance": config.signal_variance,
        "noise_precision": config.noise_precision,
    }
    return EstimationSet(
        train=seqs[: config.sequences], held_out=seqs[config.sequences :], latent=latent, truth=truth
    )


@dataclass
class RandomFourierEmission:
    """f(x) = sqrt(2σ_f²/R) cos(x Ωᵀ + b) W: a draw of a GP with the RBF kernel, approximated by R
    features."""

    frequencies: np.ndarray  # (R, Q)  Ω ~ N(0, w I), the RBF kernel's spectral density
    phases: np.ndarray  # (R,)  b ~ U(0, 2π)
    weights: np.ndarray  # (R, D)  W ~ N(0, 1)
    signal_variance: float

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        features: int,
        latent_dim: int,
        output_dim: int,
        inverse_width: float,
        signal_variance: float,
    ) -> RandomFourierEmission:
        return cls(
            frequencies=rng.standard_normal((features, latent_dim)) * np.sqrt(inverse_width),
            phases=rng.uniform(0.0, 2.0 * np.pi, features),
            weights=rng.standard_normal((features, output_dim)),
            signal_variance=signal_variance,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (..., Q) -> f(x) (..., D)."""
        scale = np.sqrt(2.0 * self.signal_variance / len(self.phases))
        return scale * np.cos(x @ self.frequencies.T + self.phases) @ self.weights


@dataclass
class ClassificationSet:
    """Train and test tokens per class (each (n, D)) and the class lengthscales."""

    train: list[list[np.ndarray]]
    test: list[list[np.ndarray]]
    time_lengthscales_s: list[float]

    def test_tokens_and_labels(self) -> tuple[list[np.ndarray], np.ndarray]:
        tokens = [tok for toks in self.test for tok in toks]
        labels = np.concatenate([np.full(len(toks), c) for c, toks in enumerate(self.test)])
        return tokens, labels


def classification_set(config: SyntheticClassificationConfig) -> ClassificationSet:
    """The 3-class set of spec §7: ℓ_t ∈ {0.02, 0.05, 0.15} s, one shared random-Fourier-feature emission."""
    rng = child_rng(config.seed, "phoneme-vgpds", "classification")
    emission = RandomFourierEmission.draw(
        rng,
        config.fourier_features,
        config.latent_dim,
        config.output_dim,
        config.emission_inverse_width,
        config.signal_variance,
    )
    train, test = [], []
    for c, lengthscale in enumerate(config.time_lengthscales_s):
        class_rng = child_rng(config.seed, "phoneme-vgpds", "classification", c)
        time_cov = rbf_time_covariance(config.frames, config.frame_period_s, lengthscale)
        count = config.train_per_class + config.test_per_class
        latent = sample_latent(class_rng, time_cov, count, config.latent_dim)  # (S, n, Q)
        y = emission(latent) + np.sqrt(config.noise_variance) * class_rng.standard_normal(
            (count, config.frames, config.output_dim)
        )
        train.append(list(y[: config.train_per_class]))
        test.append(list(y[config.train_per_class :]))
    return ClassificationSet(train=train, test=test, time_lengthscales_s=list(config.time_lengthscales_s))
