"""The classical baselines of spec §4: a left-to-right GMM-HMM per class and a bag-of-frames GMM per class.

Own numpy recursions (no hmmlearn); scikit-learn's diagonal ``GaussianMixture`` fits the mixtures.

- :class:`LeftToRightHmm`: S emitting states, each with a self-loop and a transition to the next state only;
  a sequence starts in the first state and ends in the last. ``training="viterbi"`` (default): uniform
  segmentation, then rounds of segmental k-means (Viterbi alignment, a warm-started GMM refit per state,
  transition counts); ``"baum_welch"``: log-space forward–backward with weighted GMM updates. Score: the
  forward log-likelihood. [reconstruction of the paper's "classical HMM"]
- :class:`FrameGmmClassifier`: ``score = Σ_n log p(y_n)`` under one diagonal GMM per class.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from devicelab.methods.phoneme_vgpds.config import GmmConfig, HmmConfig
from devicelab.methods.phoneme_vgpds.tokens import class_log_prior

LOG_2PI = np.log(2.0 * np.pi)
TRANSITION_FLOOR = 1e-4  # self-loop / next probabilities are kept in [floor, 1 − floor]


@dataclass
class DiagonalGmm:
    """A Gaussian mixture with diagonal covariances: weights (K,), means (K, D), variances (K, D)."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray

    def component_log_prob(self, x: np.ndarray) -> np.ndarray:
        """log w_k + log N(x_t; μ_k, diag v_k) for frames x (T, D): (T, K)."""
        diff = x[:, None, :] - self.means[None]  # (T, K, D)
        log_gauss = -0.5 * (LOG_2PI + np.log(self.variances)[None] + diff**2 / self.variances[None]).sum(-1)
        return np.log(self.weights)[None] + log_gauss

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """log p(x_t) per frame: (T,)."""
        return logsumexp(self.component_log_prob(x), axis=1)

    @classmethod
    def fit(
        cls, x: np.ndarray, components: int, reg_covar: float, seed: int, init: DiagonalGmm | None = None
    ) -> DiagonalGmm:
        """Fit by scikit-learn's EM (diag, ``reg_covar``), warm-started from ``init`` when it has as many
        components; with fewer frames than components, one component per frame at most."""
        k = max(1, min(components, len(x)))
        kwargs = {}
        if init is not None and len(init.weights) == k:
            kwargs = {
                "weights_init": init.weights,
                "means_init": init.means,
                "precisions_init": 1.0 / init.variances,
            }
        gm = GaussianMixture(k, covariance_type="diag", reg_covar=reg_covar, random_state=seed, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(x)
        return cls(weights=gm.weights_, means=gm.means_, variances=gm.covariances_)

    @classmethod
    def weighted_update(cls, x: np.ndarray, resp: np.ndarray, reg_covar: float) -> DiagonalGmm:
        """The M-step from frames x (T, D) with posterior weights resp (T, K) (Baum–Welch)."""
        mass = resp.sum(0) + 10 * np.finfo(float).eps  # (K,)
        means = resp.T @ x / mass[:, None]
        variances = resp.T @ x**2 / mass[:, None] - means**2
        return cls(weights=mass / mass.sum(), means=means, variances=np.maximum(variances, 0.0) + reg_covar)


class LeftToRightHmm:
    """A left-to-right GMM-HMM (spec §4): log_start (S,), log_trans (S, S), log_end (S,), one GMM per
    state."""

    def __init__(self, config: HmmConfig):
        self.config = config
        s = config.states
        self.log_start = np.full(s, -np.inf)
        self.log_start[0] = 0.0
        self.log_end = np.full(s, -np.inf)
        self.log_end[-1] = 0.0
        self.log_trans = self._transitions(np.full(s, 0.5))
        self.gmms: list[DiagonalGmm] = []
        self.history: list[float] = []  # training log-likelihood before each round and after the last

    # --------------------------------------------------------------------------------------- recursions
    def emission_log_prob(self, x: np.ndarray) -> np.ndarray:
        """log b_s(x_t): (T, S)."""
        return np.stack([g.log_prob(x) for g in self.gmms], axis=1)

    def forward(self, log_b: np.ndarray) -> np.ndarray:
        """log α (T, S) for emission log-probabilities log_b (T, S)."""
        alpha = np.empty_like(log_b)
        alpha[0] = self.log_start + log_b[0]
        for t in range(1, len(log_b)):
            alpha[t] = logsumexp(alpha[t - 1][:, None] + self.log_trans, axis=0) + log_b[t]
        return alpha

    def backward(self, log_b: np.ndarray) -> np.ndarray:
        """log β (T, S)."""
        beta = np.empty_like(log_b)
        beta[-1] = self.log_end
        for t in range(len(log_b) - 2, -1, -1):
            beta[t] = logsumexp(self.log_trans + (log_b[t + 1] + beta[t + 1])[None], axis=1)
        return beta

    def log_likelihood(self, x: np.ndarray) -> float:
        """log p(x) summed over every state path (forward algorithm, logsumexp); −inf if len(x) < S."""
        alpha = self.forward(self.emission_log_prob(x))
        return float(logsumexp(alpha[-1] + self.log_end))

    def viterbi(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """The best state path (T,) and its joint log-probability."""
        return self._viterbi(self.emission_log_prob(x))

    def _viterbi(self, log_b: np.ndarray) -> tuple[np.ndarray, float]:
        t_len, s = log_b.shape
        delta = self.log_start + log_b[0]
        back = np.zeros((t_len, s), dtype=np.int64)
        for t in range(1, t_len):
            cand = delta[:, None] + self.log_trans  # (from, to)
            back[t] = cand.argmax(0)
            delta = cand.max(0) + log_b[t]
        final = delta + self.log_end
        path = np.empty(t_len, dtype=np.int64)
        path[-1] = int(final.argmax())
        for t in range(t_len - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        return path, float(final.max())

    # ----------------------------------------------------------------------------------------- training
    def fit(self, sequences: Sequence[np.ndarray]) -> LeftToRightHmm:
        """Uniform segmentation, then ``rounds`` rounds of Viterbi or Baum–Welch training (spec §4)."""
        s = self.config.states
        short = [i for i, x in enumerate(sequences) if len(x) < s]
        if short:
            raise ValueError(f"sequences {short[:5]} have fewer frames than the {s} HMM states")
        self.history = []
        paths = [uniform_segmentation(len(x), s) for x in sequences]
        self._refit_from_alignment(sequences, paths)
        for _ in range(self.config.rounds):
            if self.config.training == "baum_welch":
                self.history.append(self._baum_welch_round(sequences))
            else:
                aligned = [self.viterbi(x) for x in sequences]
                self.history.append(sum(score for _, score in aligned))
                self._refit_from_alignment(sequences, [p for p, _ in aligned])
        if self.config.training == "baum_welch":
            self.history.append(sum(self.log_likelihood(x) for x in sequences))
        else:
            self.history.append(sum(self.viterbi(x)[1] for x in sequences))
        return self

    def _refit_from_alignment(self, sequences: Sequence[np.ndarray], paths: Sequence[np.ndarray]) -> None:
        """GMMs per state on the aligned frames and transitions from the alignment counts (segmental k-means).

        A refitted state GMM replaces the old one only if it scores the aligned frames at least as well, so
        the Viterbi log-likelihood never falls from one round to the next.
        """
        s, cfg = self.config.states, self.config
        frames = np.concatenate(sequences)
        states = np.concatenate(paths)
        new_gmms = []
        for k in range(s):
            x = frames[states == k]
            old = self.gmms[k] if self.gmms else None
            gmm = DiagonalGmm.fit(x, cfg.mixtures, cfg.reg_covar, cfg.seed, init=old)
            if old is not None and old.log_prob(x).sum() > gmm.log_prob(x).sum():
                gmm = old
            new_gmms.append(gmm)
        self.gmms = new_gmms
        stays, leaves = np.zeros(s), np.zeros(s)
        for path in paths:
            moved = path[1:] != path[:-1]
            np.add.at(leaves, path[:-1][moved], 1)
            np.add.at(stays, path[:-1][~moved], 1)
        self.log_trans = self._transitions(stays / np.maximum(stays + leaves, 1))

    def _transitions(self, self_loop: np.ndarray) -> np.ndarray:
        """log A with only self-loops and next-state moves; the last state loops on itself."""
        s = len(self_loop)
        p = np.clip(self_loop, TRANSITION_FLOOR, 1.0 - TRANSITION_FLOOR)
        a = np.zeros((s, s))
        for i in range(s - 1):
            a[i, i], a[i, i + 1] = p[i], 1.0 - p[i]
        a[s - 1, s - 1] = 1.0
        with np.errstate(divide="ignore"):
            return np.log(a)

    def _baum_welch_round(self, sequences: Sequence[np.ndarray]) -> float:
        """One EM round: posteriors under the current model, then weighted GMM and transition updates.

        Returns the total forward log-likelihood under the model before the update.
        """
        s, cfg = self.config.states, self.config
        total = 0.0
        xi_sum = np.zeros((s, s))
        frames, resp = [], [[] for _ in range(s)]
        for x in sequences:
            comp = [g.component_log_prob(x) for g in self.gmms]  # S × (T, K)
            log_b = np.stack([logsumexp(c, axis=1) for c in comp], axis=1)  # (T, S)
            alpha, beta = self.forward(log_b), self.backward(log_b)
            loglik = logsumexp(alpha[-1] + self.log_end)
            total += loglik
            gamma = np.exp(alpha + beta - loglik)  # (T, S)
            xi = alpha[:-1, :, None] + self.log_trans[None] + (log_b[1:] + beta[1:])[:, None, :] - loglik
            xi_sum += np.exp(xi).sum(0)
            frames.append(x)
            for k in range(s):
                within = np.exp(comp[k] - log_b[:, k : k + 1])  # (T, K) component posteriors in state k
                resp[k].append(gamma[:, k : k + 1] * within)
        x_all = np.concatenate(frames)
        self.gmms = [
            DiagonalGmm.weighted_update(x_all, np.concatenate(resp[k]), cfg.reg_covar) for k in range(s)
        ]
        stay = np.diag(xi_sum)
        nxt = np.array([xi_sum[i, i + 1] if i + 1 < s else 0.0 for i in range(s)])
        self.log_trans = self._transitions(stay / np.maximum(stay + nxt, 1e-300))
        return float(total)


def uniform_segmentation(length: int, states: int) -> np.ndarray:
    """State labels (length,) splitting a sequence into ``states`` nearly equal consecutive parts."""
    return np.concatenate(
        [np.full(len(part), k) for k, part in enumerate(np.array_split(np.arange(length), states))]
    )


class GmmHmmClassifier:
    """One :class:`LeftToRightHmm` per class; a token goes to ``argmax_c log p(Y | c) + log π_c`` (spec
    §4)."""

    def __init__(self, config: HmmConfig, use_class_prior: bool = True):
        self.config, self.use_class_prior = config, use_class_prior
        self.models: list[LeftToRightHmm] = []
        self.log_prior = np.zeros(0)

    def fit(self, tokens_per_class: Sequence[Sequence[np.ndarray]]) -> GmmHmmClassifier:
        self.models = [LeftToRightHmm(self.config).fit(toks) for toks in tokens_per_class]
        self.log_prior = class_log_prior([len(t) for t in tokens_per_class])
        return self

    def score(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Forward log-likelihoods (K, C)."""
        return np.array([[m.log_likelihood(np.asarray(tok)) for m in self.models] for tok in tokens])

    def predict(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        return _decide(self.score(tokens), self.log_prior if self.use_class_prior else None)


class FrameGmmClassifier:
    """Bag-of-frames baseline: one diagonal GMM per class, ``score = Σ_n log p(y_n)`` (spec §4)."""

    def __init__(self, config: GmmConfig, use_class_prior: bool = True):
        self.config, self.use_class_prior = config, use_class_prior
        self.gmms: list[DiagonalGmm] = []
        self.log_prior = np.zeros(0)

    def fit(self, tokens_per_class: Sequence[Sequence[np.ndarray]]) -> FrameGmmClassifier:
        cfg = self.config
        self.gmms = [
            DiagonalGmm.fit(np.concatenate(toks), cfg.components, cfg.reg_covar, cfg.seed)
            for toks in tokens_per_class
        ]
        self.log_prior = class_log_prior([len(t) for t in tokens_per_class])
        return self

    def score(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Σ_n log p(y_n | c): (K, C)."""
        return np.array([[g.log_prob(np.asarray(tok)).sum() for g in self.gmms] for tok in tokens])

    def predict(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        return _decide(self.score(tokens), self.log_prior if self.use_class_prior else None)


def _decide(scores: np.ndarray, log_prior: np.ndarray | None) -> np.ndarray:
    return (scores + (0.0 if log_prior is None else log_prior)).argmax(1)
