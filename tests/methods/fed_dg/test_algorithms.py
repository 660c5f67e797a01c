"""FedFD and the baselines as pure functions: aggregation of BN statistics, the frozen global copy, the IFA
stage, FedBN, FedProx, FedSR, leave-one-domain-out hygiene, registered claims."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from devicelab.federated import ClientReply, FederatedConfig, RoundPlan, run_loop
from devicelab.methods.fed_dg.algorithms import (
    FedAvg,
    FedBN,
    FedFD,
    FedProx,
    FedSR,
    LocalTraining,
    ModelConfig,
    build_model,
    evaluate,
    fedsr_loss,
    proximal_term,
)
from devicelab.methods.fed_dg.bn import is_adapter_key
from devicelab.methods.fed_dg.data import LodoSplit, synthetic_domains

MODEL = ModelConfig(widths=(4, 8, 8, 8))
TRAIN = LocalTraining(batch_size=8)


@pytest.fixture(scope="module")
def split():
    return LodoSplit(synthetic_domains(3, 10, 4, 16), "dom0")


def test_global_mean_is_weighted_mean_of_client_running_means(split):
    algo = FedFD(MODEL, TRAIN, rounds=1)
    g = algo.init_global(0)
    plan = algo.plan(1)
    replies = []
    for pid in range(2):
        r = algo.client_update(g, split.client_data(pid), {}, plan)
        replies.append(dataclasses.replace(r, pid=pid))
    out = algo.aggregate(g, replies, plan)
    key = "features.1.bn.running_mean"
    w = np.array([r.n for r in replies], dtype=np.float64)
    expected = (w[0] * replies[0].arrays[key] + w[1] * replies[1].arrays[key]) / w.sum()
    np.testing.assert_allclose(out[key], expected, rtol=1e-6)
    assert not np.allclose(out[key], g[key])


def test_pooled_variance_equals_variance_of_concatenated_data():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(3, momentum=None)  # exact (cumulative) statistics
    chunks = [torch.randn(50, 3, 10, 10) * s + m for s, m in ((1.0, 0.0), (2.0, 3.0))]
    replies = []
    for pid, x in enumerate(chunks):
        bn.reset_running_stats()
        bn.train()
        bn(x)
        arrays = {k: v.numpy().copy() for k, v in bn.state_dict().items() if k != "num_batches_tracked"}
        replies.append(ClientReply({f"bn.{k}": v for k, v in arrays.items()}, len(x), pid=pid))
    algo = FedFD(MODEL, TRAIN, global_var="pooled")
    from devicelab.federated import weighted_average
    from devicelab.methods.fed_dg.algorithms import pooled_bn_variance

    out = pooled_bn_variance(weighted_average({}, replies), replies)
    allx = torch.cat(chunks)
    np.testing.assert_allclose(out["bn.running_mean"], allx.mean((0, 2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    # BatchNorm keeps unbiased variances (n/(n-1) with n = 5000 per client): equal to 1e-3
    np.testing.assert_allclose(out["bn.running_var"], allx.var((0, 2, 3), unbiased=False).numpy(), rtol=1e-3)
    mean_only = weighted_average({}, replies)["bn.running_var"]
    assert np.all(mean_only < out["bn.running_var"])  # "mean" underestimates the spread across clients
    assert algo.global_var == "pooled"


def test_frozen_global_statistics_unchanged_after_a_round(split):
    seen = {}

    class Spy(FedFD):
        def round_context(self, model, global_arrays, data, plan):
            ctx = super().round_context(model, global_arrays, data, plan)
            seen["stats"] = ctx["stats"]
            seen["copy"] = {k: tuple(t.clone() for t in v) for k, v in ctx["stats"].items()}
            return ctx

    algo = Spy(MODEL, TRAIN)
    g = algo.init_global(0)
    reply = algo.client_update(g, split.client_data(0), {}, algo.plan(1))
    for name, (mu, sigma) in seen["stats"].items():
        assert torch.equal(mu, seen["copy"][name][0]) and torch.equal(sigma, seen["copy"][name][1])
        np.testing.assert_array_equal(mu.numpy(), g[f"{name}.running_mean"])
    assert not np.allclose(reply.arrays["features.0.bn.running_mean"], g["features.0.bn.running_mean"])


def test_ifa_stage_trains_and_sends_only_the_adapter(split):
    algo = FedFD(MODEL, TRAIN, rounds=1, ifa_rounds=1)
    g = algo.init_global(0)
    plan = algo.plan(2)
    assert plan.stage == "ifa" and plan.message_type == "train.ifa"
    reply = algo.client_update(g, split.client_data(1), {}, plan)
    assert set(reply.arrays) == algo.wire_keys(plan) and all(is_adapter_key(k) for k in reply.arrays)
    assert reply.arrays and any(not np.array_equal(v, g[k]) for k, v in reply.arrays.items())
    out = algo.aggregate(g, [dataclasses.replace(reply, pid=0)], plan)
    for k in g:
        if not is_adapter_key(k):
            np.testing.assert_array_equal(out[k], g[k])
    assert not any(is_adapter_key(k) for k in algo.wire_keys(algo.plan(1)))


def test_adapter_at_its_initial_values_is_the_control_of_fedfd_a(split):
    """``ifa-init`` equals ``ifa`` while the adapter is untrained and differs once its arrays move."""
    algo = FedFD(MODEL, TRAIN, rounds=1, ifa_rounds=1)
    g = algo.init_global(0)
    x, y = split.test_set()
    untrained = evaluate(algo, g, x, y, ("ifa", "ifa-init"), batch_size=16)
    assert untrained["ifa"] == untrained["ifa-init"]
    moved = {k: (v + 3.0 if is_adapter_key(k) and k.endswith(".b") else v) for k, v in g.items()}
    control = evaluate(algo, moved, x, y, ("ifa-init",), batch_size=16)
    assert control["ifa-init"] == untrained["ifa-init"]  # the control ignores the trained adapter


def test_fedbn_never_sends_bn(split):
    algo = FedBN(MODEL, TRAIN)
    g = algo.init_global(0)
    reply = algo.client_update(g, split.client_data(0), {}, algo.plan(1))
    assert not any(".bn." in k for k in reply.arrays)
    assert reply.state and all(".bn." in k for k in reply.state)
    again = algo.client_update(g, split.client_data(0), reply.state, algo.plan(2))
    assert int(again.state["features.0.bn.num_batches_tracked"]) > int(
        reply.state["features.0.bn.num_batches_tracked"]
    )


def test_fedprox_gradient_is_mu_times_drift():
    model = build_model(MODEL)
    anchor = {n: p.detach().clone() + 0.1 * torch.randn_like(p) for n, p in model.named_parameters()}
    model.zero_grad()
    proximal_term(model, anchor, mu=0.01).backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 0.01 * (p.detach() - anchor[n]), rtol=1e-5, atol=1e-8)
    assert FedProx(MODEL, TRAIN).plan(1).switches["proximal-mu"] == 0.01


def test_fedsr_loss_reduces_to_ce():
    model = build_model(dataclasses.replace(MODEL, fedsr_z_dim=8))
    x, y = torch.randn(6, 3, 16, 16), torch.arange(6) % 10
    loss, logits = fedsr_loss(model, x, y, 0.0, 0.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    full, _ = fedsr_loss(model, x, y, 0.01, 5e-4, torch.Generator().manual_seed(0))
    assert float(full.detach()) > float(loss.detach())
    with pytest.raises(ValueError, match="fedsr_z_dim"):
        FedSR(MODEL, TRAIN)


def test_no_client_opens_the_held_out_domain():
    source = synthetic_domains(3, 10, 4, 16)
    split = LodoSplit(source, "dom1")
    algo = FedAvg(MODEL, TRAIN, rounds=2, eval_data=split.test_set())
    result = run_loop(
        algo, split.client_data, FederatedConfig(num_rounds=2, num_partitions=split.num_clients)
    )
    assert len(result.rounds) == 2 and "acc-global" in result.rounds[-1].server
    client_reads = {(d, s) for who, d, s in source.access_log if who.startswith("client")}
    assert client_reads == {("dom0", "train"), ("dom2", "train")}
    assert ("server", "dom1", "test") in source.access_log


def test_registered_claims_match_the_spec():
    from devicelab.methods.fed_dg.experiment import EXPERIMENT

    got = {c.id: (c.method, c.baseline, c.margin, c.direction, c.kind) for c in EXPERIMENT.claims}
    assert got == {
        "Q1": ("fedfd", "fedavg", 1.0, "greater", "difference"),
        "Q2": ("fedfd_a", "fedfd", 0.5, "greater", "difference"),
        "Q3": ("fedfd_a", "fedfd_ttbn", 0.0, "greater", "difference"),
        "F1": ("pacs_fedfd_a", "pacs_fedavg", 2.0, "greater", "difference"),
        "F2": ("pacs_fedfd_a", "pacs_fedsr", 0.0, "greater", "difference"),
        "F3": ("pacs_fedfd_a", "pacs_fedfd", 0.5, "greater", "difference"),
        "F4": ("officehome_fedfd_a", "officehome_fedavg", 1.0, "greater", "difference"),
    }
    assert all("quick" in c.profiles for c in EXPERIMENT.claims if c.id.startswith("Q"))
    assert all(c.profiles == ("full",) for c in EXPERIMENT.claims if c.id.startswith("F"))


def test_bad_switches_are_named():
    with pytest.raises(ValueError, match="div_views"):
        FedFD(MODEL, TRAIN, div_views="all")
    with pytest.raises(ValueError, match="div_layers"):
        build_model(dataclasses.replace(MODEL, div_layers="last:2"))
    with pytest.raises(ValueError, match="held-out domain"):
        LodoSplit(synthetic_domains(2, 10, 2, 8), "nowhere")
    assert RoundPlan(1).stage == "train"
