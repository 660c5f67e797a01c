"""The stage runner: plan order, the metric-key rule, resumable stages, parallel workers that agree."""

import json
import os

import pytest
import torch

from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import Stage, metric_key, plan_stages, run_stages


def _ctx(tmp_path) -> RunContext:
    experiment = Experiment(name="t", paper="p", config_cls=dict, run=lambda c, x: {})
    return RunContext(experiment, {}, tmp_path, "smoke")


def fit_line(task: torch.Tensor, stage: Stage, ctx: RunContext) -> dict:
    """A small deterministic stage: the error of a seeded noisy line; reports where it ran."""
    g = torch.Generator().manual_seed(stage.seed)
    x = torch.randn(64, 3, generator=g)
    y = x @ task + 0.1 * torch.randn(64, generator=g)
    scale = {"a": 1.0, "b": 2.0}[stage.variant]
    return {
        "error": float((y - x @ task).abs().mean()) * scale,
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "curve": [1.0, 2.0],
    }


def fail_on_b(task, stage: Stage, ctx: RunContext) -> dict:
    if stage.variant == "b":
        raise ValueError(f"variant b cannot run (seed {stage.seed})")
    return {"value": 1.0}


def test_plan_is_seed_major_and_names_are_stable():
    stages = plan_stages(["ssn", "bn"], seeds=[0, 1])
    assert [s.name for s in stages] == ["ssn-seed0", "bn-seed0", "ssn-seed1", "bn-seed1"]
    held = plan_stages(["fedfd"], seeds=[0], conditions=["mnist", "svhn"])
    assert [s.name for s in held] == ["fedfd-mnist-seed0", "fedfd-svhn-seed0"]


def test_metric_key_rule():
    assert metric_key("test_acc", "ssn") == "test_acc/ssn"
    assert metric_key("acc", "fedfd", "mnist") == "acc/fedfd/mnist"
    assert Stage("bn", 3, "svhn").key("acc") == "acc/bn/svhn"


def test_per_seed_lists_follow_the_rule_in_plan_order(tmp_path):
    task = torch.tensor([1.0, -2.0, 0.5])
    stages = plan_stages(["a", "b"], seeds=[0, 1, 2])
    results = run_stages(_ctx(tmp_path), stages, fit_line, task, workers=1)
    per_seed = results.per_seed(["error"])
    assert list(per_seed) == ["error/a", "error/b"]
    assert per_seed["error/b"] == pytest.approx([2 * v for v in per_seed["error/a"]])
    assert "curve/a" not in results.per_seed()  # only numbers are keyed
    assert [r["error"] for r in results.of("a")] == per_seed["error/a"]
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == sorted(f"{s.name}.json" for s in stages)


def test_workers_give_the_serial_results_with_their_threads(tmp_path):
    task = torch.tensor([1.0, -2.0, 0.5])
    stages = plan_stages(["a", "b"], seeds=[0, 1])
    serial = run_stages(_ctx(tmp_path / "serial"), stages, fit_line, task, workers=1)
    parallel = run_stages(_ctx(tmp_path / "parallel"), stages, fit_line, task, workers=2, threads=1)
    assert parallel.per_seed(["error"]) == serial.per_seed(["error"])
    worker_pids = {r["pid"] for r in parallel.values()}
    assert os.getpid() not in worker_pids and 1 <= len(worker_pids) <= 2
    assert {r["threads"] for r in parallel.values()} == {1}


def test_finished_stages_are_read_back_not_rerun(tmp_path):
    ctx = _ctx(tmp_path)
    (tmp_path / "stages" / "a-seed0.json").write_text(json.dumps({"error": -1.0}))
    results = run_stages(ctx, plan_stages(["a"], seeds=[0, 1]), fit_line, torch.ones(3), workers=2)
    assert results["a-seed0"] == {"error": -1.0}
    assert results["a-seed1"]["error"] >= 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_stage_raises_its_error_and_keeps_the_finished_ones(tmp_path, workers):
    with pytest.raises(ValueError, match="variant b cannot run") as raised:
        run_stages(_ctx(tmp_path), plan_stages(["a", "b"], seeds=[0]), fail_on_b, workers=workers)
    if workers > 1:
        assert "in stage b-seed0" in raised.value.__notes__
    assert (tmp_path / "stages" / "a-seed0.json").exists()
    assert not (tmp_path / "stages" / "b-seed0.json").exists()


def test_repeated_stage_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="stages repeat: a-seed0"):
        run_stages(_ctx(tmp_path), [Stage("a", 0), Stage("a", 0)], fit_line, workers=1)
