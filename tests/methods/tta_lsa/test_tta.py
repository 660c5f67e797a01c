"""TTA wrappers (spec §3.7, §9): pre-update predictions, what changes, reset, EATA's filter, SAR's reset."""

import copy
import math

import pytest
import torch

from devicelab.methods.tta_lsa.adapter import LabelShiftAdapter
from devicelab.methods.tta_lsa.estimator import PriorEstimator
from devicelab.methods.tta_lsa.heads import make_head
from devicelab.methods.tta_lsa.streams import lt_prior
from devicelab.methods.tta_lsa.tta import TTA_REGISTRY, TTAMethod, compute_fisher, softmax_entropy

PI_S = torch.as_tensor(lt_prior(10, 10, "forward"), dtype=torch.float32)


def _params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def test_registry_has_the_six_methods_and_names_bad_ones(tiny_model):
    assert {"source", "bn-adapt", "tent", "eata", "sar", "lame"} <= set(TTA_REGISTRY.names())
    with pytest.raises(ValueError, match="unknown TTA method 'norm'"):
        TTA_REGISTRY.build("norm", tiny_model)
    with pytest.raises(TypeError, match="split model"):
        TTA_REGISTRY.build("tent", torch.nn.Linear(3, 3))


def test_tent_returns_pre_update_logits_and_changes_only_bn_affine(tiny_model, image_batch):
    tent = TTA_REGISTRY.build("tent", tiny_model)
    reference = copy.deepcopy(tent.model)  # same configuration, never updated
    before = _params(tent.model)
    logits = tent(image_batch)
    with torch.no_grad():
        expected = reference.head(reference.features(image_batch))
    assert torch.equal(logits, expected)
    after = _params(tent.model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    bn_affine = {
        n
        for n, m in tent.model.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for n in (f"{n}.weight", f"{n}.bias")
    }
    assert changed and changed <= bn_affine
    # the wrapped source model itself is untouched
    assert all(torch.equal(a, b) for a, b in zip(tiny_model.parameters(), _params(tiny_model).values()))


def test_reset_restores_parameters_optimizer_state_and_prior(tiny_model, image_batch):
    adapter = LabelShiftAdapter(10, tiny_model.feature_dim, PI_S)
    tent = TTA_REGISTRY.build(
        "tent", tiny_model, head=make_head("logit", PI_S, estimator=PriorEstimator(PI_S))
    )
    state = copy.deepcopy(tent.model.state_dict())
    for _ in range(3):
        tent(image_batch)
    assert not torch.equal(tent.head.prior, PI_S)
    assert tent.optimizer.state_dict()["state"]
    tent.reset()
    assert all(torch.equal(state[k], v) for k, v in tent.model.state_dict().items())
    assert tent.optimizer.state_dict()["state"] == {}
    assert torch.equal(tent.head.prior, PI_S / PI_S.sum())
    assert adapter is not None


def test_bn_adapt_changes_no_parameter_but_uses_batch_statistics(tiny_model, image_batch):
    bn = TTA_REGISTRY.build("bn-adapt", tiny_model)
    before = _params(bn.model)
    out = bn(image_batch)
    assert all(torch.equal(before[n], p) for n, p in bn.model.named_parameters())
    with torch.no_grad():
        source = tiny_model(image_batch)
    assert not torch.allclose(out, source)  # normalised with the batch's statistics
    source_wrapper = TTA_REGISTRY.build("source", tiny_model)
    assert torch.equal(source_wrapper(image_batch), source)


def test_eata_gives_zero_gradient_to_unreliable_samples(tiny_model):
    eata = TTA_REGISTRY.build("eata", tiny_model)
    logits = torch.randn(16, 10) * 3
    logits[:8] = torch.randn(8, 10) * 0.01  # near-uniform: entropy ≈ ln 10 > E0 = 0.4 ln 10
    logits.requires_grad_(True)
    entropy = softmax_entropy(logits.detach())
    loss = eata.loss(logits, torch.zeros(16, 4))
    assert loss is not None
    loss.backward()
    unreliable = entropy >= 0.4 * math.log(10)
    assert unreliable[:8].all()
    assert torch.all(logits.grad[unreliable] == 0)
    assert torch.any(logits.grad[~unreliable] != 0)


def test_eata_fisher_penalty_and_reset(tiny_model, image_batch):
    plain = TTA_REGISTRY.build("eata", tiny_model)
    fisher = compute_fisher(plain, image_batch, batch_size=16)
    assert set(fisher) and all(torch.all(f >= 0) for f in fisher.values())
    eata = TTA_REGISTRY.build("eata", tiny_model, fisher=fisher, fisher_alpha=1.0)
    eata(image_batch * 4)
    eata.reset()
    assert eata.model_probs is None


def test_eata_cosine_filter_drops_samples_redundant_with_the_running_prediction(tiny_model):
    eata = TTA_REGISTRY.build("eata", tiny_model, d_margin=0.4)
    confident = torch.full((4, 10), -5.0)
    confident[torch.arange(4), torch.tensor([0, 0, 3, 7])] = 5.0  # low entropy: all reliable
    mask, _ = eata.selection(confident)
    assert mask.all()  # no running prediction yet: nothing is redundant
    eata.model_probs = torch.nn.functional.one_hot(torch.tensor(0), 10).float()  # p̄ ≈ class 0
    mask, _ = eata.selection(confident)
    # |cos(p̄, p)| ≈ 1 for the two class-0 samples (redundant), ≈ 0 for the others
    assert mask.tolist() == [False, False, True, True]


def test_eata_fisher_penalty_is_alpha_f_delta_squared_and_pulls_back_to_the_source(tiny_model):
    plain = TTA_REGISTRY.build("eata", tiny_model)
    name = next(n for n, p in plain.model.named_parameters() if any(p is q for q in plain.params))
    fisher = {name: torch.full_like(dict(plain.model.named_parameters())[name], 2.0)}
    eata = TTA_REGISTRY.build("eata", copy.deepcopy(tiny_model), fisher=fisher, fisher_alpha=3.0)
    confident = torch.full((4, 10), -5.0)
    confident[torch.arange(4), torch.arange(4)] = 5.0
    at_anchor = eata.loss(confident, torch.zeros(4, 4))
    param = dict(eata.model.named_parameters())[name]
    with torch.no_grad():
        param.add_(0.1)  # move θ away from θ0 by δ = 0.1 everywhere
    eata.model_probs = None  # the same samples again, not filtered as redundant this time
    moved = eata.loss(confident, torch.zeros(4, 4))
    assert float((moved - at_anchor).detach()) == pytest.approx(3.0 * 2.0 * 0.01 * param.numel(), rel=1e-4)
    (grad,) = torch.autograd.grad(moved, param)
    assert torch.allclose(grad, torch.full_like(grad, 2 * 3.0 * 2.0 * 0.1))  # points back to θ0


def test_sar_resets_when_the_loss_ema_falls_below_the_threshold(tiny_model, image_batch):
    confident = copy.deepcopy(tiny_model)
    with torch.no_grad():  # a head so sharp that every entropy is ≈ 0 < 0.2
        confident.head.weight.mul_(500.0)
    sar = TTA_REGISTRY.build("sar", confident)
    snapshot = copy.deepcopy(sar.model.state_dict())
    sar(image_batch)
    assert sar.resets == 1 and sar.loss_ema is None
    assert all(torch.equal(snapshot[k], v) for k, v in sar.model.state_dict().items())
    # the last stage's BN is not adapted
    adapted = {id(p) for p in sar.params}
    last_bn = dict(sar.model.named_modules())[confident.last_stage_names[1]]
    assert id(last_bn.weight) not in adapted


def test_sar_adapts_without_reset_on_uncertain_batches(tiny_model, image_batch):
    sar = TTA_REGISTRY.build("sar", tiny_model, e_margin_scale=1.01)  # every sample counts as reliable
    before = _params(sar.model)
    sar(image_batch)
    assert sar.resets == 0
    assert any(not torch.equal(before[n], p) for n, p in sar.model.named_parameters())


def test_lame_returns_log_assignments_and_changes_no_parameter(tiny_model, image_batch):
    lame = TTA_REGISTRY.build("lame", tiny_model)
    out = lame(image_batch)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(len(image_batch)))
    assert all(torch.equal(a, b) for a, b in zip(lame.model.parameters(), tiny_model.parameters()))


def test_zero_init_lsa_around_tent_equals_plain_tent_over_three_batches(tiny_model):
    adapter = LabelShiftAdapter(10, tiny_model.feature_dim, PI_S)
    plain = TTA_REGISTRY.build("tent", tiny_model)
    lsa = TTA_REGISTRY.build("tent", tiny_model, head=make_head("lsa", PI_S, adapter, PriorEstimator(PI_S)))
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        x = torch.randn(16, 3, 32, 32, generator=g)
        assert torch.equal(plain(x), lsa(x))
    assert all(torch.equal(a, b) for a, b in zip(plain.model.parameters(), lsa.model.parameters()))
    assert not torch.equal(lsa.head.prior, PI_S / PI_S.sum())  # the estimate moved, the head ignored it


def test_a_new_method_is_a_subclass_and_a_registry_entry(tiny_model, image_batch):
    from devicelab.methods.tta_lsa.tta import Registry, Tent

    registry = Registry()

    @registry.register("tent-2step")
    class TwoStepTent(Tent):
        def __init__(self, model, **kwargs):
            super().__init__(model, steps=2, **kwargs)

    method = registry.build("tent-2step", tiny_model)
    assert isinstance(method, TTAMethod) and method.steps == 2
    assert method(image_batch).shape == (32, 10)
