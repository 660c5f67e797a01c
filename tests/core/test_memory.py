"""core.memory: exact counts (parameters, gradients, optimizer, saved activations) and the live tracker."""

from __future__ import annotations

import sys

import torch
from torch import nn

from devicelab.core.memory import (
    account_inference,
    gradient_bytes,
    measure_peak_rss,
    optimizer_state_bytes,
    parameter_bytes,
    peak_live_bytes,
    saved_activation_bytes,
)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_parameter_gradient_and_optimizer_bytes_are_exact():
    model = _mlp()
    model[0].requires_grad_(False)
    p = parameter_bytes(model)
    assert p.frozen == (8 * 16 + 16) * 4 and p.trainable == (16 * 4 + 4) * 4 and p.buffers == 0
    assert gradient_bytes(model) == p.trainable
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad])
    model(torch.randn(3, 8)).sum().backward()
    opt.step()
    assert optimizer_state_bytes(opt) == 2 * p.trainable + 2 * 4  # exp_avg, exp_avg_sq, two step counters
    model[2].to("meta")
    assert parameter_bytes(model).trainable == 0 and parameter_bytes(model).meta_parameters == 16 * 4 + 4


def test_tied_weights_count_once():
    a = nn.Linear(4, 4, bias=False)
    model = nn.Sequential(a, nn.Linear(4, 4, bias=False))
    model[1].weight = a.weight
    assert parameter_bytes(model).trainable == 16 * 4


def test_saved_activation_bytes_of_a_linear_relu_stack():
    model = _mlp()
    x = torch.randn(5, 8)
    saved, loss = saved_activation_bytes(model, lambda: model(x).sum())
    # Linear 1 saves x (5×8); ReLU saves its output (5×16), which Linear 2 saves too: one storage
    assert saved == (5 * 8 + 5 * 16) * 4 and loss.requires_grad
    with torch.no_grad():
        assert saved_activation_bytes(model, lambda: model(x).sum())[0] == 0


def test_live_tracker_returns_to_zero_after_a_no_grad_forward():
    model = _mlp()
    x = torch.randn(64, 8)
    with torch.no_grad():
        peak, live, out = peak_live_bytes(lambda: model(x).sum().item())
    assert live == 0 and peak >= 64 * 16 * 4
    with torch.no_grad():
        peak, live, out = peak_live_bytes(lambda: model(x))
    assert live == out.numel() * 4  # only the returned output is still alive
    account = account_inference(model, lambda: model(x))
    assert account.weights == parameter_bytes(model).total and account.peak_activations == peak


def test_measure_peak_rss_reads_the_json_line_of_a_fresh_process(tmp_path, monkeypatch):
    probe = tmp_path / "rss_probe_mod.py"
    probe.write_text(
        "from devicelab.core.memory import print_peak_rss\nprint('noise')\nprint_peak_rss({'x': 1})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path) + ":" + ":".join(sys.path))
    out = measure_peak_rss("rss_probe_mod", [])
    assert out["x"] == 1 and out["peak_rss_bytes"] > 0


def test_the_allocator_profile_sees_the_peak_of_a_step_and_what_it_frees():
    from devicelab.core.memory import profiled_peak_bytes

    def step():
        with torch.no_grad():
            a = torch.ones(500, 500)  # 1 MB
            b = a @ a  # 1 MB, a still live: peak 2 MB
            del a
            return b @ b  # 1 MB more while b lives; a freed before

    peak, net, out = profiled_peak_bytes(step)
    assert peak == 2_000_000 and net == 1_000_000 and out.shape == (500, 500)
