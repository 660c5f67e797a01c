"""FedUA and the baselines as pure algorithms: thresholds, joining users, privacy audit, threat model."""

import numpy as np
import pytest
import torch

from devicelab.federated import FederatedConfig, run_loop
from devicelab.federated.algo import RoundPlan
from devicelab.methods.fed_ua.algorithms import (
    FedAwS,
    FedUA,
    NaiveFedAvg,
    PrivacyAuditError,
    random_crop,
    spreadout_step,
    warmup_threshold,
)
from devicelab.methods.fed_ua.data import synthetic_task
from devicelab.methods.fed_ua.model import ModelConfig
from devicelab.methods.fed_ua.privacy import codeword_recovery

SMALL = dict(channels=8, embed_dim=8)


@pytest.fixture(scope="module")
def task():
    return synthetic_task(6, 2, 4, seed=3)


def fedua(**kw):
    kw.setdefault("model", ModelConfig(out_dim=kw.get("code_length", 16), **SMALL))
    return FedUA(**{"original_users": 6, "rounds": 3, "fraction": 0.5, "code_length": 16, **kw})


@pytest.mark.parametrize("q", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_threshold_accepts_at_least_q_with_ties(q):
    rng = np.random.default_rng(0)
    for scores in (rng.normal(size=10), np.array([0.3] * 4 + [0.1] * 6), rng.integers(0, 3, size=17) * 1.0):
        tau = warmup_threshold(scores, q)
        assert np.mean(scores >= tau) >= q
        assert tau in scores


def test_threshold_rejects_bad_input():
    with pytest.raises(ValueError, match="no warm-up scores"):
        warmup_threshold(np.array([]), 0.9)
    with pytest.raises(ValueError, match="q="):
        warmup_threshold(np.ones(3), 1.5)


def test_warmup_round_keeps_tau_on_the_client_and_replies_counts_only(task):
    algo = fedua()
    result = run_loop(algo, task.client_data, FederatedConfig(algo.num_rounds, 8, strict_audit=True))
    last = result.rounds[-1]
    assert last.stage == "warmup" and last.ok == list(range(6))  # every active user, no late ones here
    assert set(last.metrics) == {"warmup-tpr"} and last.metrics["warmup-tpr"] >= 0.9
    for pid in range(6):
        state = result.client_states[pid]
        assert set(state) == {"codeword", "threshold"} and state["threshold"].shape == ()


def test_late_users_join_without_changing_any_shape(task):
    algo = fedua(late_users=2, join_round=3, rounds=4, fraction=1.0)
    init = algo.init_global(0)
    shapes = {k: v.shape for k, v in init.items()}
    result = run_loop(algo, task.client_data, FederatedConfig(algo.num_rounds, 8, strict_audit=True))
    assert [r.ok for r in result.rounds[:2]] == [list(range(6))] * 2  # before join_round
    assert result.rounds[2].ok == list(range(8))  # their first replies aggregate
    assert {k: v.shape for k, v in result.arrays.items()} == shapes
    assert result.rounds[-1].ok == list(range(8))  # and they run the warm-up


def test_fraction_samples_ceil_f_of_the_active_pool():
    algo = fedua(original_users=100, late_users=20, join_round=5, rounds=6, fraction=0.1)
    assert len(algo.partitions_for(0, 1, range(120), 0)) == 10
    assert len(algo.partitions_for(0, 5, range(120), 0)) == 12
    assert max(algo.partitions_for(0, 4, range(120), 0)) < 100
    assert algo.partitions_for(0, 7, range(120), 0) == list(range(120))  # warm-up


def test_fedaws_replies_are_rejected_unless_privacy_exempt(task):
    model = ModelConfig(head="fedaws", out_dim=8, **SMALL)
    cfg = FederatedConfig(3, 8, strict_audit=True)
    audited = FedAwS(model=model, original_users=6, late_users=2, join_round=2, rounds=2)
    with pytest.raises(PrivacyAuditError, match="privacy_exempt"):
        run_loop(audited, task.client_data, cfg)
    algo = FedAwS(model=model, original_users=6, late_users=2, join_round=2, rounds=2, privacy_exempt=True)
    with pytest.raises(PrivacyAuditError):
        FedAwS(model=model, original_users=6, rounds=2).aggregate(algo.init_global(0), [], RoundPlan(1))
    result = run_loop(algo, task.client_data, cfg)
    table = result.arrays["class_embeddings"]
    assert np.allclose(np.linalg.norm(table, axis=1), 1.0, atol=1e-5)


def test_spreadout_pushes_close_embeddings_apart():
    w = np.array([[1.0, 0.0], [0.995, 0.0998], [0.0, 1.0]], dtype=np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    out = spreadout_step(w, nu=0.9, lr=0.1)
    assert np.linalg.norm(out[0] - out[1]) > np.linalg.norm(w[0] - w[1])
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_naive_fedavg_scores_log_probability_of_own_class(task):
    algo = NaiveFedAvg(model=ModelConfig(head="softmax", out_dim=8, **SMALL), original_users=6, late_users=2,
                       join_round=2, rounds=2)  # fmt: skip
    result = run_loop(algo, task.client_data, FederatedConfig(algo.num_rounds, 8, strict_audit=True))
    model = algo.new_model()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in result.arrays.items()})
    scores = algo.user_scores(model, task.client_data(1).warmup, {}, 1)
    assert (scores <= 0).all() and scores.shape == (len(task.users[1].warmup),)


def test_random_crop_is_one_seeded_window_per_batch():
    x = torch.arange(2 * 3 * 20, dtype=torch.float32).reshape(2, 3, 20)
    assert random_crop(x, 0, None) is x and random_crop(x, 20, None) is x  # off, or nothing to crop
    windows = {int(random_crop(x, 8, torch.Generator().manual_seed(s))[0, 0, 0]) for s in range(40)}
    assert windows <= set(range(13)) and len(windows) > 5  # offsets 0..12, not always the same
    a = random_crop(x, 8, torch.Generator().manual_seed(7))
    assert a.shape == (2, 3, 8) and torch.equal(a, random_crop(x, 8, torch.Generator().manual_seed(7)))
    assert torch.equal(a[:, :, 1:], a[:, :, :-1] + 1)  # one contiguous window, the same for the batch


def test_training_crops_change_the_update_reproducibly(task):
    arrays, plan = fedua().init_global(0), RoundPlan(1, "train", 0)
    replies = [fedua(crop_frames=crop).client_update(arrays, task.client_data(0), {}, plan).arrays
               for crop in (0, 16, 16)]  # fmt: skip
    key = "output.weight"
    assert not np.allclose(replies[0][key], replies[1][key])
    assert all(np.array_equal(replies[1][k], replies[2][k]) for k in replies[1])
    with pytest.raises(ValueError, match="crop_frames"):
        fedua(crop_frames=-1)


def test_local_examples_draw_the_same_seeded_share_in_every_engine(task):
    data, plan = task.client_data(1), RoundPlan(2, "train", 0)
    algo = fedua(local_examples=3)
    a, b = algo.round_examples(data, plan), algo.round_examples(data, plan)
    assert len(a) == 3 and a.pid == 1 and torch.equal(a.inputs, b.inputs)
    assert all(any(torch.equal(row, full) for full in data.inputs) for row in a.inputs)  # a subset
    other = algo.round_examples(data, RoundPlan(3, "train", 0))
    assert not torch.equal(a.inputs, other.inputs)  # a new draw each round
    assert (
        fedua().round_examples(data, plan) is data
        and fedua(local_examples=99).round_examples(data, plan) is data
    )
    reply = algo.client_update(algo.init_global(0), data, {}, plan)
    assert reply.n == 3
    with pytest.raises(ValueError, match="local_examples"):
        fedua(local_examples=-2)


def test_pos_neg_oracle_must_be_privacy_exempt():
    with pytest.raises(ValueError, match="privacy_exempt"):
        fedua(loss_kind="pos+neg")


@pytest.mark.parametrize("norm", ["none", "l2"])
def test_one_clients_update_reveals_its_codeword(task, norm):
    """The documented limit of the threat model (spec §2.1): ΔW of one client gives v_u up to sign."""
    algo = fedua(code_length=64, model=ModelConfig(out_dim=64, output_norm=norm, **SMALL))
    arrays = algo.init_global(0)
    for pid in range(3):
        reply = algo.client_update(arrays, task.client_data(pid), {}, RoundPlan(1, "train", 0))
        delta = reply.arrays["output.weight"] - arrays["output.weight"]
        assert codeword_recovery(delta, reply.state["codeword"]) >= 0.95


def test_fedua_learns_to_separate_generated_speakers():
    """Positive-only training alone separates users: EER against unseen users drops well below chance."""
    from devicelab.federated import LocalTraining, load_arrays
    from devicelab.methods.fed_ua.evaluate import score_function, score_sets, verification_metrics

    task = synthetic_task(12, 0, 6, seed=0)
    eers = {}
    for rounds in (1, 40):
        algo = FedUA(original_users=12, rounds=rounds, fraction=0.5, code_length=32, seed=0,
                     train=LocalTraining(0.05, 0.0, 0.0, 3, 1), model=ModelConfig(out_dim=32, channels=16,
                     embed_dim=16))  # fmt: skip
        result = run_loop(algo, task.client_data, FederatedConfig(algo.num_rounds, 12, strict_audit=True))
        model = algo.new_model()
        load_arrays(model, result.arrays)
        model.eval()
        tau = np.array([float(result.client_states[u]["threshold"]) for u in range(12)])
        score = score_function(algo, model, result.client_states, 12)
        eers[rounds] = verification_metrics(score_sets(score, task, tau), 12)["eer_unseen"]
    assert eers[40] < 35.0 and eers[40] < eers[1] - 10.0, eers
