"""Trial builder, cosine scoring, EER on known scores, the keyword probe and the GMM-UBM (spec §8)."""

import numpy as np
import pytest
import torch

from devicelab.methods.sv_kan.gmm_ubm import DiagonalGMM, gmm_scores, map_adapt_means, mfcc_frames
from devicelab.methods.sv_kan.trials import Trials, build_trials, cosine_scores, keyword_probe
from devicelab.metrics import eer


def _population():
    """Identities A, A2 (siblings: one base voice), B, C; 4 keywords x 2 takes each."""
    identity, keyword, group = [], [], []
    for who, grp in (("A", "vA"), ("A2", "vA"), ("B", "vB"), ("C", "vC")):
        for k in range(4):
            for _ in range(2):
                identity.append(who)
                keyword.append(k)
                group.append(grp)
    return identity, keyword, group


def test_tk_shares_the_keyword_and_ntk_does_not():
    identity, keyword, group = _population()
    trials = build_trials(identity, keyword, group, seed=1)
    assert {"tk", "ntk", "sibling"} <= set(trials)
    for kind, same_text in (("tk", True), ("ntk", False)):
        t = trials[kind]
        assert len(t) > 0
        for enrol, test, label in zip(t.enrol, t.test, t.label):
            assert (keyword[test] == keyword[enrol[0]]) is same_text
            assert test not in enrol  # an enrolment utterance is never its own trial's test item
            assert (identity[test] == identity[enrol[0]]) == bool(label)
            if not label:  # siblings are excluded from the claim trials
                assert group[test] != group[enrol[0]]
        assert sum(t.label) * 2 == len(t)  # half targets


def test_siblings_are_flagged_and_can_be_included():
    identity, keyword, group = _population()
    sib = build_trials(identity, keyword, group, seed=1)["sibling"]
    impostors = [(e[0], t) for e, t, y in zip(sib.enrol, sib.test, sib.label) if not y]
    assert impostors and all(group[t] == group[e] and identity[t] != identity[e] for e, t in impostors)
    included = build_trials(identity, keyword, group, seed=1, sibling_impostors="include", per_enrolment=6)
    assert any(group[t] == group[e[0]] and not y for e, t, y in zip(*_cols(included["ntk"])))


def _cols(t: Trials):
    return t.enrol, t.test, t.label


def test_builder_is_deterministic_under_a_seed():
    identity, keyword, group = _population()
    a, b = build_trials(identity, keyword, group, seed=4), build_trials(identity, keyword, group, seed=4)
    c = build_trials(identity, keyword, group, seed=5)
    assert _cols(a["ntk"]) == _cols(b["ntk"])
    assert _cols(a["ntk"]) != _cols(c["ntk"])


def test_two_enrolment_takes_leave_no_tk_trial_but_no_error():
    identity, keyword, group = _population()
    trials = build_trials(identity, keyword, group, n_enrol=2, seed=0)
    assert "tk" not in trials and len(trials["ntk"]) > 0
    assert all(len(e) == 2 for e in trials["ntk"].enrol)


def test_unknown_text_gives_text_independent_trials():
    identity, _, group = _population()
    trials = build_trials(identity, [-1] * len(identity), group, seed=0)
    assert set(trials) == {"ti"} and sum(trials["ti"].label) * 2 == len(trials["ti"])


def test_cosine_scores_use_the_normalised_mean_of_the_enrolment():
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    t = Trials()
    t.add((0, 1), 2, 1)
    t.add((0,), 3, 0)
    np.testing.assert_allclose(cosine_scores(e, t), [1.0, -1.0], atol=1e-6)


def test_eer_on_known_scores():
    assert eer([0.9, 0.8, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0]) == 0.0
    scores, labels = [0.9, 0.8, 0.3, 0.4, 0.2, 0.1], [1, 1, 1, 0, 0, 0]
    assert eer(scores, labels) == pytest.approx(1 / 3)
    assert eer(np.exp(3 * np.array(scores)), labels) == pytest.approx(1 / 3)  # monotone transform
    rng = np.random.default_rng(0)
    same = rng.normal(size=4000)
    assert abs(eer(same, np.r_[np.ones(2000), np.zeros(2000)]) - 0.5) < 0.05


def test_keyword_probe_reads_keywords_from_one_hot_embeddings_and_not_from_noise():
    rng = np.random.default_rng(0)
    k, n = 5, 200
    keywords = rng.integers(0, k, n)
    speakers = [f"s{i % 10}" for i in range(n)]
    one_hot = np.eye(k)[keywords] + 0.05 * rng.normal(size=(n, k))
    assert keyword_probe(one_hot, keywords, speakers)["probe_acc"] > 95.0
    noise = keyword_probe(rng.normal(size=(n, 16)), keywords, speakers)
    assert noise["probe_chance"] == 20.0 and abs(noise["probe_acc"] - 20.0) < 12.0


def test_infinite_relevance_leaves_the_ubm_unchanged_and_scores_zero():
    rng = np.random.default_rng(0)
    ubm = DiagonalGMM(np.array([0.5, 0.5]), rng.normal(size=(2, 3)), np.ones((2, 3)))
    frames = [rng.normal(size=(30, 3)) for _ in range(3)]
    adapted = map_adapt_means(ubm, frames[0], relevance=np.inf)
    np.testing.assert_array_equal(adapted.means, ubm.means)
    np.testing.assert_allclose(
        gmm_scores(ubm, frames, [(0,), (1,)], [1, 2], relevance=np.inf), 0.0, atol=1e-12
    )
    # a finite relevance moves the means towards the enrolment frames, and the own frames score higher
    moved = map_adapt_means(ubm, frames[0] + 3.0, relevance=1.0)
    assert np.abs(moved.means - ubm.means).max() > 0.5


def test_mfcc_frames_have_twenty_coefficients_and_deltas():
    frames = mfcc_frames(torch.randn(40, 57))
    assert frames.shape == (57, 40)
    flat = mfcc_frames(torch.zeros(40, 10) + torch.linspace(0, 1, 10))  # a ramp in time: constant delta
    assert np.allclose(flat[3:-3, 20], flat[4, 20]) and abs(flat[4, 20]) > 0
