"""SubSpectralNorm, spec kws-ssn §8.1 (1)-(10)."""

import pytest
import torch
from torch import nn

from devicelab.nn.ssn import FoldedSubSpectralNorm, SubSpectralNorm, fold_subspectral_norms


def _x(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3.0 * torch.randn(*shape, generator=g) + torch.linspace(-4, 4, shape[2]).reshape(1, 1, -1, 1)


def _randomise(ssn: SubSpectralNorm, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ssn.parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def test_1_one_group_equals_batchnorm_in_train_and_eval_with_running_stats():
    ssn, bn = SubSpectralNorm(6, spec_groups=1), nn.BatchNorm2d(6)
    _randomise(ssn)
    bn.load_state_dict({k.removeprefix("norm."): v for k, v in ssn.state_dict().items()})
    for step in range(3):
        x = _x(4, 6, 10, 7, seed=step)
        torch.testing.assert_close(ssn(x), bn(x))
    torch.testing.assert_close(ssn.norm.running_mean, bn.running_mean)
    torch.testing.assert_close(ssn.norm.running_var, bn.running_var)
    ssn.eval(), bn.eval()
    x = _x(2, 6, 10, 7, seed=9)
    torch.testing.assert_close(ssn(x), bn(x))


def test_2_train_mode_slices_have_zero_mean_unit_biased_variance():
    ssn = SubSpectralNorm(3, spec_groups=5).train()
    y = ssn(_x(8, 3, 20, 11))
    bands = y.reshape(8, 3, 5, 4, 11)  # band i = rows 4i..4i+3
    mean = bands.mean(dim=(0, 3, 4))
    var = bands.var(dim=(0, 3, 4), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(3, 5), atol=1e-4, rtol=0)
    torch.testing.assert_close(var, torch.ones(3, 5), atol=1e-4, rtol=0)


def test_3_bands_are_contiguous():
    ssn = SubSpectralNorm(2, spec_groups=4).train()
    x = _x(5, 2, 16, 9)
    base = ssn(x)
    shifted = x.clone()
    shifted[:, :, 4:8] += 7.0  # a constant on all of band 1
    torch.testing.assert_close(ssn(shifted), base, atol=1e-4, rtol=0)
    half = x.clone()
    half[:, :, 4:6] += 7.0  # half of band 1
    changed = (ssn(half) - base).abs().amax(dim=(0, 1, 3)) > 1e-3  # per frequency row
    assert changed[4:8].all() and not changed[:4].any() and not changed[8:].any()


def _per_band_reference(x, s, eps=1e-5):
    n, c, f, t = x.shape
    out = torch.empty_like(x)
    rows = f // s
    for ch in range(c):
        for i in range(s):
            sl = x[:, ch, i * rows : (i + 1) * rows]
            out[:, ch, i * rows : (i + 1) * rows] = (sl - sl.mean()) / torch.sqrt(
                sl.var(unbiased=False) + eps
            )
    return out


@pytest.mark.parametrize("groups", [2, 4, 5, 10])
def test_4_equals_per_band_loop_reference(groups):
    x = _x(3, 2, 20, 6, seed=groups)
    torch.testing.assert_close(
        SubSpectralNorm(2, groups, affine="none")(x), _per_band_reference(x, groups), atol=1e-5, rtol=1e-5
    )


def test_5_freq_dim_3_on_transposed_input_gives_transposed_output():
    a, b = SubSpectralNorm(3, 4), SubSpectralNorm(3, 4, freq_dim=3)
    _randomise(a)
    b.load_state_dict(a.state_dict())
    x = _x(4, 3, 8, 5)
    torch.testing.assert_close(b(x.transpose(2, 3)), a(x).transpose(2, 3))


def test_6_indivisible_frequency_size_names_f_and_s():
    with pytest.raises(ValueError, match=r"F=13.*S=4"):
        SubSpectralNorm(2, 4)(torch.zeros(2, 2, 13, 5))
    with pytest.raises(ValueError, match="affine"):
        SubSpectralNorm(2, 4, affine="band")


def test_7_parameter_counts():
    c, s = 7, 5
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(SubSpectralNorm(c, s, affine="sub")) == 2 * c * s
    assert count(SubSpectralNorm(c, s, affine="all")) == 2 * c
    assert count(SubSpectralNorm(c, s, affine="none")) == 0
    ssn = SubSpectralNorm(c, s)
    assert ssn.norm.running_mean.numel() == ssn.norm.running_var.numel() == c * s


def test_8_instance_stats_do_not_depend_on_the_rest_of_the_batch():
    ssn = SubSpectralNorm(3, 5, stats="instance").train()
    x = _x(4, 3, 20, 8)
    alone = ssn(x[:1])
    other = torch.cat([x[:1], 10 * _x(3, 3, 20, 8, seed=5)])
    torch.testing.assert_close(ssn(other)[:1], alone)


@pytest.mark.parametrize("affine", ["sub", "all", "none"])
@pytest.mark.parametrize("freq_dim", [2, 3])
def test_9_eval_mode_equals_folded_multiply_add(affine, freq_dim):
    ssn = SubSpectralNorm(4, 5, affine=affine, freq_dim=freq_dim)
    _randomise(ssn)
    for step in range(3):  # fill running statistics
        x = _x(6, 4, 20, 9, seed=step)
        ssn(x.transpose(2, 3) if freq_dim == 3 else x)
    ssn.eval()
    x = _x(2, 4, 20, 9, seed=7)
    x = x.transpose(2, 3) if freq_dim == 3 else x
    folded = ssn.fold(20)
    assert isinstance(folded, FoldedSubSpectralNorm)
    torch.testing.assert_close(folded(x), ssn(x), atol=1e-5, rtol=1e-5)
    model = nn.Sequential(nn.Identity(), ssn)
    folded_model = fold_subspectral_norms(model, x)
    assert not any(isinstance(m, SubSpectralNorm) for m in folded_model.modules())
    assert any(isinstance(m, SubSpectralNorm) for m in model.modules())  # the original is left as it was
    torch.testing.assert_close(folded_model(x), ssn(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="instance"):
        SubSpectralNorm(4, 5, stats="instance").fold(20)


def test_9_folded_ssn_exports_to_onnx_without_reshape(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ssn = SubSpectralNorm(4, 5)
    _randomise(ssn)
    ssn(_x(6, 4, 20, 9))
    ssn.eval()
    x = _x(2, 4, 20, 9, seed=3)
    path = tmp_path / "ssn.onnx"
    torch.onnx.export(fold_subspectral_norms(ssn, x), (x,), str(path), dynamo=True, verbose=False)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Reshape" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert abs(out - ssn(x).detach().numpy()).max() < 1e-5


def test_10_gradcheck_float64():
    for affine, stats in (("sub", "batch"), ("all", "batch"), ("sub", "instance")):
        ssn = SubSpectralNorm(2, 2, affine=affine, stats=stats).double().train()
        x = torch.randn(2, 2, 4, 3, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(ssn, (x,), eps=1e-6, atol=1e-5)
