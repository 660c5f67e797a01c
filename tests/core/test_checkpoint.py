import json

import pytest
import torch
from torch import nn

from devicelab.core.checkpoint import (
    TrainingCheckpoint,
    load_model_weights,
    load_state,
    save_model,
    save_state,
)


def test_nested_state_round_trip(tmp_path):
    state = {"a": torch.arange(3.0), "b": [1, {"c": torch.ones(2, 2)}, (2, 3)], "nan": float("nan"), "s": "x"}
    save_state(tmp_path / "st", state)
    back = load_state(tmp_path / "st")
    assert torch.equal(back["a"], state["a"]) and torch.equal(back["b"][1]["c"], torch.ones(2, 2))
    assert back["b"][2] == (2, 3) and back["s"] == "x" and back["nan"] != back["nan"]
    assert not list(tmp_path.glob("*.tmp-*"))


def test_training_checkpoint_restores_optimizer_scheduler_and_rng(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    sched.step()
    ckpt = TrainingCheckpoint(tmp_path / "ckpt")
    ckpt.save(model, opt, sched, loop={"epoch": 0})
    expected_next = torch.rand(3)

    model2 = nn.Linear(4, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    torch.manual_seed(123)
    assert ckpt.restore(model2, opt2, sched2) == {"epoch": 0}
    assert torch.equal(torch.rand(3), expected_next)  # the random stream continues where it was saved
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["exp_avg"], opt2.state[q]["exp_avg"])


def test_missing_checkpoint_file_is_named(tmp_path):
    assert TrainingCheckpoint(tmp_path / "none").restore(nn.Linear(1, 1)) is None
    (tmp_path / "half.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="half.safetensors"):
        load_state(tmp_path / "half")


def test_save_model_writes_safetensors_and_json(tmp_path):
    model = nn.Linear(3, 1)
    save_model(tmp_path / "model", model, {"class": "Linear", "in": 3})
    weights, meta = load_model_weights(tmp_path / "model")
    assert torch.equal(weights["weight"], model.weight) and meta["in"] == 3
    assert json.loads((tmp_path / "model.json").read_text())["class"] == "Linear"
