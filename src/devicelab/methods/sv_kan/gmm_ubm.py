"""The GMM-UBM baseline (Reynolds et al., DSP 2000) as spec §4 sets it up [reconstruction].

A diagonal-covariance universal background model on 20 MFCC + Δ (mean-normalised per utterance), MAP
adaptation of the means from the enrolment frames (relevance factor r), score = mean frame log-likelihood
ratio of the test frames between the adapted model and the UBM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp

from devicelab.audio.features import dct_matrix


def mfcc_frames(log_mel: torch.Tensor, n_mfcc: int = 20, delta_width: int = 2) -> np.ndarray:
    """(T, 2 n_mfcc) frames: DCT-II of a mean-normalised log-mel (n_mels, T), plus regression deltas."""
    dct = torch.tensor(dct_matrix(n_mfcc, log_mel.shape[0]), dtype=torch.float32)
    c = (dct @ log_mel.float()).numpy().T  # (T, n_mfcc); the log-mel mean is already removed per band
    padded = np.pad(c, ((delta_width, delta_width), (0, 0)), mode="edge")
    n = len(c)
    weights = np.arange(1, delta_width + 1)
    delta = sum(
        w * (padded[delta_width + w : delta_width + w + n] - padded[delta_width - w : delta_width - w + n])
        for w in weights
    )
    delta = delta / (2.0 * float((weights**2).sum()))
    return np.concatenate([c, delta], axis=1).astype(np.float64)


@dataclass
class DiagonalGMM:
    """Weights (C,), means (C, D), variances (C, D)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def component_log_likelihood(self, frames: np.ndarray) -> np.ndarray:
        """log w_c + log N(x_t; mu_c, diag(var_c)), shape (T, C)."""
        precision = 1.0 / self.variances
        quad = (
            (frames**2) @ precision.T
            - 2.0 * frames @ (self.means * precision).T
            + ((self.means**2) * precision).sum(1)[None, :]
        )
        log_det = np.log(self.variances).sum(1)
        d = frames.shape[1]
        return np.log(self.weights)[None, :] - 0.5 * (d * np.log(2 * np.pi) + log_det[None, :] + quad)

    def frame_log_likelihood(self, frames: np.ndarray) -> np.ndarray:
        return logsumexp(self.component_log_likelihood(frames), axis=1)


def train_ubm(frames: np.ndarray, components: int, iterations: int = 20, seed: int = 0) -> DiagonalGMM:
    """EM for a diagonal GMM (scikit-learn, k-means initialisation)."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(
        components, covariance_type="diag", max_iter=iterations, random_state=seed, reg_covar=1e-3
    ).fit(frames)
    return DiagonalGMM(gmm.weights_.copy(), gmm.means_.copy(), gmm.covariances_.copy())


def map_adapt_means(ubm: DiagonalGMM, frames: np.ndarray, relevance: float = 16.0) -> DiagonalGMM:
    """Mean-only MAP adaptation (Reynolds 2000, eq. 2-4 with alpha_c = n_c / (n_c + r)); an infinite
    relevance factor returns the UBM unchanged."""
    log_post = ubm.component_log_likelihood(frames)
    post = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))  # (T, C)
    counts = post.sum(0)  # n_c
    first = post.T @ frames  # (C, D)
    expected = first / np.maximum(counts, 1e-10)[:, None]
    alpha = counts / (counts + relevance) if np.isfinite(relevance) else np.zeros_like(counts)
    means = alpha[:, None] * expected + (1.0 - alpha[:, None]) * ubm.means
    return DiagonalGMM(ubm.weights, means, ubm.variances)


def llr_score(ubm: DiagonalGMM, speaker: DiagonalGMM, frames: np.ndarray) -> float:
    """Mean over test frames of log p(x | speaker model) - log p(x | UBM)."""
    return float((speaker.frame_log_likelihood(frames) - ubm.frame_log_likelihood(frames)).mean())


def gmm_scores(
    ubm: DiagonalGMM,
    frames: Sequence[np.ndarray],
    enrol: Sequence[tuple[int, ...]],
    test: Sequence[int],
    relevance: float = 16.0,
) -> np.ndarray:
    """Scores of trials (enrolment index tuple, test index) over per-utterance frame arrays."""
    models = {
        key: map_adapt_means(ubm, np.concatenate([frames[i] for i in key]), relevance) for key in set(enrol)
    }
    baseline = {i: ubm.frame_log_likelihood(frames[i]) for i in set(test)}
    return np.array(
        [
            float((models[key].frame_log_likelihood(frames[t]) - baseline[t]).mean())
            for key, t in zip(enrol, test)
        ]
    )
