"""Codewords: random ±1 vectors drawn once per user, BCH codewords with a guaranteed distance (spec §2.2)."""

import numpy as np
import pytest

from devicelab.federated import FederatedConfig, run_loop
from devicelab.methods.fed_ua.algorithms import FedUA
from devicelab.methods.fed_ua.codes import (
    BCHCode,
    bch_codeword,
    gf2_poly_mod,
    id_determined_positions,
    id_width,
    random_codeword,
    secure_random_codeword,
    simulated_codeword,
)
from devicelab.methods.fed_ua.data import synthetic_task
from devicelab.methods.fed_ua.model import ModelConfig


def test_random_codeword_is_plus_minus_one_of_length_c():
    for v in (random_codeword(64, np.random.default_rng(0)), secure_random_codeword(64)):
        assert v.shape == (64,) and set(np.unique(v)) <= {-1.0, 1.0}
    v = simulated_codeword(0, 3, 4096)
    assert abs(v.mean()) < 0.1  # both signs, about equally often


def test_simulated_codeword_reproduces_from_seed_and_partition():
    assert np.array_equal(simulated_codeword(1, 7, 64), simulated_codeword(1, 7, 64))
    assert not np.array_equal(simulated_codeword(1, 7, 64), simulated_codeword(1, 8, 64))
    assert not np.array_equal(simulated_codeword(1, 7, 64), simulated_codeword(2, 7, 64))


def test_codeword_persists_in_the_client_state_across_rounds():
    task = synthetic_task(4, 0, 2, seed=1)
    algo = FedUA(original_users=4, rounds=3, fraction=1.0, code_length=8, seed=5,
                 model=ModelConfig(out_dim=8, channels=8, embed_dim=8))  # fmt: skip
    seen = {}
    original = algo.client_update

    def spy(global_arrays, data, state, plan):
        seen.setdefault(data.pid, []).append(None if "codeword" not in state else state["codeword"].copy())
        return original(global_arrays, data, state, plan)

    algo.client_update = spy
    result = run_loop(algo, task.client_data, FederatedConfig(algo.num_rounds, 4, strict_audit=True))
    for pid, states in seen.items():
        assert states[0] is None  # first call: drawn on the device
        drawn = result.client_states[pid]["codeword"]
        assert all(np.array_equal(s, drawn) for s in states[1:])  # later calls: the same vector
        assert np.array_equal(drawn, simulated_codeword(5, pid, 8))


@pytest.mark.parametrize(("n", "k", "d_min"), [(15, 7, 5), (63, 30, 13), (127, 64, 21)])
def test_bch_generator_divides_x_n_minus_1(n, k, d_min):
    code = BCHCode(n, k)
    x_n_minus_1 = np.zeros(n + 1, np.uint8)
    x_n_minus_1[[0, n]] = 1
    assert len(code.generator) - 1 == n - k
    assert not gf2_poly_mod(x_n_minus_1, code.generator).any()
    assert code.designed_distance == d_min


@pytest.mark.parametrize(("n", "k"), [(63, 30), (127, 64)])
def test_bch_codewords_have_zero_syndromes_and_distance(n, k):
    code = BCHCode(n, k)
    rng = np.random.default_rng(0)
    words = np.array([bch_codeword(code, i, 200, rng) for i in range(200)])
    bits = ((1 - words) / 2).astype(np.uint8)
    assert set(np.unique(words)) == {-1.0, 1.0} and words.shape == (200, n)
    assert all(not any(code.syndromes(b)) for b in bits[:25])
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    np.fill_diagonal(dist, n)
    assert dist.min() >= code.designed_distance
    flipped = bits[0].copy()
    flipped[3] ^= 1
    assert any(code.syndromes(flipped))  # a non-codeword is detected


def test_id_determined_positions_are_at_most_k_id():
    code = BCHCode(63, 30)
    positions = id_determined_positions(code, 200)
    assert 0 < len(positions) <= id_width(200) == 8
    # those positions are equal for two users with the same ID and different random bits
    a = bch_codeword(code, 5, 200, np.random.default_rng(1))
    b = bch_codeword(code, 5, 200, np.random.default_rng(2))
    assert np.array_equal(a[positions], b[positions]) and not np.array_equal(a, b)


def test_bch_rejects_a_code_that_does_not_exist():
    with pytest.raises(ValueError, match="BCH"):
        BCHCode(63, 31)
    with pytest.raises(ValueError, match="2\\^m"):
        BCHCode(60, 30)


def test_bch_matches_galois_when_installed():
    galois = pytest.importorskip("galois")
    code = BCHCode(63, 30)
    reference = galois.BCH(63, 30, systematic=False)
    message = np.random.default_rng(0).integers(0, 2, 30)
    # galois orders coefficients from the highest degree down
    assert np.array_equal(code.encode(message)[::-1], np.asarray(reference.encode(message[::-1])))
