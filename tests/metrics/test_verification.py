import numpy as np
import pytest
from sklearn.metrics import roc_curve

from devicelab.metrics import eer, min_dcf, tpr_at_fpr


def test_separable_scores_have_zero_error():
    scores = [0.9, 0.8, 0.7, 0.1, 0.2]
    labels = [1, 1, 1, 0, 0]
    assert eer(scores, labels) == 0.0
    assert min_dcf(scores, labels) == 0.0
    assert tpr_at_fpr(scores, labels, 0.0) == 1.0


def test_inverted_scores_have_full_error():
    assert eer([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_known_eer_of_a_hand_made_case():
    # 4 targets, 4 non-targets; one of each on the wrong side: FAR = FRR = 0.25 at the crossing
    scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, 0.05]
    labels = [1, 1, 1, 1, 0, 0, 0, 0]
    assert eer(scores, labels) == pytest.approx(0.25)


def test_eer_matches_the_roc_crossing_on_gaussian_scores():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(1.5, 1, 4000), rng.normal(0, 1, 4000)])
    labels = np.r_[np.ones(4000), np.zeros(4000)]
    fpr, tpr, _ = roc_curve(labels, scores)
    i = np.argmin(np.abs((1 - tpr) - fpr))
    assert eer(scores, labels) == pytest.approx((fpr[i] + 1 - tpr[i]) / 2, abs=2e-3)
    # theory: Phi(-0.75) = 0.2266
    assert eer(scores, labels) == pytest.approx(0.2266, abs=0.015)


def test_tpr_at_fpr_reads_the_roc():
    rng = np.random.default_rng(1)
    scores = np.concatenate([rng.normal(2, 1, 2000), rng.normal(0, 1, 2000)])
    labels = np.r_[np.ones(2000), np.zeros(2000)]
    fpr, tpr, _ = roc_curve(labels, scores)
    assert tpr_at_fpr(scores, labels, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())
    assert tpr_at_fpr(scores, labels, 0.01) < tpr_at_fpr(scores, labels, 0.1)


def test_min_dcf_is_at_most_one_when_normalised():
    rng = np.random.default_rng(2)
    s = rng.normal(size=500)
    labels = rng.integers(0, 2, 500)
    labels[:2] = [0, 1]
    assert 0.0 < min_dcf(s, labels) <= 1.0 + 1e-12


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0, 0], [0, 2, 1]])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError, match="labels"):
        eer([0.1, 0.2, 0.3], labels)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, float("nan")], [1, 0])
