"""The GMM-HMM and GMM baselines: forward recursion against brute force, left-to-right structure, training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from devicelab.methods.phoneme_vgpds.config import GmmConfig, HmmConfig
from devicelab.methods.phoneme_vgpds.hmm import FrameGmmClassifier, GmmHmmClassifier, LeftToRightHmm


def three_phase_sequences(rng: np.random.Generator, count: int, dim: int = 2, offset: float = 0.0):
    """Sequences of three consecutive segments with different means (a left-to-right source)."""
    seqs = []
    for _ in range(count):
        lengths = rng.integers(2, 6, size=3)
        means = np.array([[-2.0], [0.0], [2.0]]) + offset
        seqs.append(np.concatenate([m + 0.7 * rng.normal(size=(n, dim)) for m, n in zip(means, lengths)]))
    return seqs


@pytest.mark.parametrize("training", ["viterbi", "baum_welch"])
def test_forward_equals_brute_force_over_state_paths(training):
    rng = np.random.default_rng(0)
    hmm = LeftToRightHmm(HmmConfig(mixtures=2, rounds=3, training=training)).fit(
        three_phase_sequences(rng, 12)
    )
    x = rng.normal(size=(5, 2))
    log_b = hmm.emission_log_prob(x)
    paths = []
    for path in itertools.product(range(3), repeat=5):
        score = hmm.log_start[path[0]] + log_b[0, path[0]] + hmm.log_end[path[-1]]
        for t in range(1, 5):
            score += hmm.log_trans[path[t - 1], path[t]] + log_b[t, path[t]]
        paths.append(score)
    brute_force = logsumexp(paths)
    assert np.isfinite(brute_force)
    assert hmm.log_likelihood(x) == pytest.approx(brute_force, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("training", ["viterbi", "baum_welch"])
def test_transitions_are_left_to_right(training):
    rng = np.random.default_rng(1)
    hmm = LeftToRightHmm(HmmConfig(mixtures=1, rounds=4, training=training)).fit(
        three_phase_sequences(rng, 10)
    )
    trans = np.exp(hmm.log_trans)
    np.testing.assert_allclose(trans.sum(1), 1.0, rtol=0, atol=1e-12)
    for i, j in itertools.product(range(3), repeat=2):
        if j < i or j > i + 1:
            assert trans[i, j] == 0.0, (i, j)
    path, _ = hmm.viterbi(three_phase_sequences(rng, 1)[0])
    steps = np.diff(path)
    assert path[0] == 0 and path[-1] == 2 and set(steps.tolist()) <= {0, 1}


def test_viterbi_training_raises_the_training_log_likelihood_every_round():
    rng = np.random.default_rng(2)
    hmm = LeftToRightHmm(HmmConfig(mixtures=2, rounds=6)).fit(three_phase_sequences(rng, 15))
    history = np.array(hmm.history)
    assert len(history) == 7
    assert (np.diff(history) >= 0).all(), history
    assert history[-1] > history[0]


def test_baum_welch_raises_the_forward_log_likelihood():
    rng = np.random.default_rng(3)
    hmm = LeftToRightHmm(HmmConfig(mixtures=1, rounds=5, training="baum_welch")).fit(
        three_phase_sequences(rng, 15)
    )
    history = np.array(hmm.history)
    assert (np.diff(history) >= -1e-6 * np.abs(history[1:])).all(), history
    assert history[-1] > history[0]


def test_sequences_shorter_than_the_states_are_refused():
    with pytest.raises(ValueError, match="fewer frames than the 3 HMM states"):
        LeftToRightHmm(HmmConfig()).fit([np.zeros((2, 2)), np.zeros((5, 2))])


def test_gmm_hmm_separates_order_but_bag_of_frames_cannot():
    """Two classes with the same frames in opposite order: only the HMM sees the order."""
    rng = np.random.default_rng(4)
    forward = three_phase_sequences(rng, 30)
    backward = [seq[::-1].copy() for seq in three_phase_sequences(rng, 30)]
    train = [forward[:20], backward[:20]]
    test = forward[20:] + backward[20:]
    labels = np.repeat([0, 1], 10)
    hmm = GmmHmmClassifier(HmmConfig(mixtures=1, rounds=3)).fit(train)
    gmm = FrameGmmClassifier(GmmConfig(components=3)).fit(train)
    assert hmm.score(test).shape == (20, 2)
    assert (hmm.predict(test) == labels).mean() >= 0.95
    assert (gmm.predict(test) == labels).mean() <= 0.8
