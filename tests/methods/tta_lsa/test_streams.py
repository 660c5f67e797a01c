"""Label-shift streams (spec §6.3, §9): LT counts, Dirichlet priors, Dirichlet order, seeds."""

import numpy as np
import pytest

from devicelab.methods.tta_lsa.streams import (
    batches,
    class_counts,
    dirichlet_order,
    dirichlet_prior,
    lt_prior,
    sample_domain_indices,
)


def test_backward_prior_is_the_reversed_forward_prior():
    forward, backward = lt_prior(10, 10, "forward"), lt_prior(10, 10, "backward")
    np.testing.assert_allclose(backward, forward[::-1])
    assert forward.sum() == pytest.approx(1.0)
    assert forward[0] / forward[-1] == pytest.approx(10.0)
    np.testing.assert_allclose(lt_prior(10, 1, "forward"), np.full(10, 0.1))
    np.testing.assert_allclose(lt_prior(10, 50, "uniform"), np.full(10, 0.1))


def test_constant_size_counts_are_exact_and_long_tailed():
    for direction in ("forward", "backward"):
        counts = class_counts(lt_prior(10, 10, direction), size=1000)
        assert counts.sum() == 1000
        assert counts.max() / counts.min() == pytest.approx(10, rel=0.05)
    forward = class_counts(lt_prior(10, 10, "forward"), size=1000)
    backward = class_counts(lt_prior(10, 10, "backward"), size=1000)
    np.testing.assert_array_equal(forward, backward[::-1])
    assert np.all(np.diff(forward) <= 0)


def test_max_size_keeps_every_sample_of_the_largest_class():
    counts = class_counts(lt_prior(10, 100, "forward"), size="max", n_max=5000)
    assert counts[0] == 5000 and counts[-1] == 50


def test_class_order_permutes_the_head():
    order = np.array([3, 1, 4, 0, 2, 5, 9, 8, 7, 6])
    prior = lt_prior(10, 10, "forward", class_order=order)
    assert prior.argmax() == 3 and prior.argmin() == 6


def test_sampling_draws_without_replacement_and_reproduces():
    labels = np.repeat(np.arange(10), 50)
    counts = class_counts(lt_prior(10, 10, "backward"), size=200)
    a, b = sample_domain_indices(labels, counts, seed=4), sample_domain_indices(labels, counts, seed=4)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == len(a) == 200
    np.testing.assert_array_equal(np.bincount(labels[a], minlength=10), counts)
    assert not np.array_equal(a, sample_domain_indices(labels, counts, seed=5))


def test_sampling_more_than_the_domain_holds_names_the_class():
    labels = np.repeat(np.arange(3), 5)
    with pytest.raises(ValueError, match="class 0: 9 samples requested, the domain has 5"):
        sample_domain_indices(labels, np.array([9, 1, 1]), seed=0)


def test_dirichlet_prior_is_a_seeded_distribution():
    p = dirichlet_prior(10, 1.0, seed=3)
    assert p.sum() == pytest.approx(1.0) and np.all(p > 0)
    np.testing.assert_array_equal(p, dirichlet_prior(10, 1.0, seed=3))


def _slot_entropy(labels: np.ndarray, slots: int) -> float:
    entropies = []
    for part in np.array_split(labels, slots):
        p = np.bincount(part, minlength=10) / len(part)
        entropies.append(-(p[p > 0] * np.log(p[p > 0])).sum())
    return float(np.mean(entropies))


def test_dirichlet_order_is_a_permutation_with_lower_slot_entropy():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), 100))
    order = dirichlet_order(labels, beta=0.1, seed=1)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(labels)))  # nothing lost or duplicated
    np.testing.assert_array_equal(np.bincount(labels[order]), np.bincount(labels))  # marginal unchanged
    assert _slot_entropy(labels[order], 10) < 0.7 * _slot_entropy(labels, 10)
    np.testing.assert_array_equal(order, dirichlet_order(labels, beta=0.1, seed=1))


def test_dirichlet_order_that_cannot_fill_its_slots_says_so():
    with pytest.raises(ValueError, match="cannot fill"):
        dirichlet_order(np.arange(10) % 2, beta=0.1, seed=0, num_slots=5, min_per_slot=5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="rho must be >= 1"):
        lt_prior(10, 0.5)
    with pytest.raises(ValueError, match="direction"):
        lt_prior(10, 10, "sideways")
    with pytest.raises(ValueError, match="n_max"):
        class_counts(lt_prior(10, 10), size="max")
    with pytest.raises(ValueError, match="batch_size"):
        batches(np.arange(4), 0)
