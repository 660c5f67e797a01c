"""Faults in a run: a non-finite loss stops naming stage and epoch; a corrupt image stops before round 1."""

from __future__ import annotations

import json

import pytest
import torch

from devicelab.core.training import NonFiniteLossError, fit

from .conftest import cli, one_line_error, run_folders


def test_non_finite_loss_names_stage_and_epoch(toy_gsc):
    result = cli("run", "kws-ssn", "--profile", "smoke", "--data", str(toy_gsc), "lr=1.0e+30")
    one_line_error(result, "stage ssn-seed0", "in epoch", "training stopped")
    (run_dir,) = run_folders("kws-ssn")  # a kept epoch checkpoint makes the run resumable
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "failed" and "NonFiniteLossError" in meta["error"]
    assert not (run_dir / "metrics.json").exists()


def test_fit_saves_nothing_of_the_bad_epoch(tmp_path):
    from devicelab.core.checkpoint import TrainingCheckpoint

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = TrainingCheckpoint(tmp_path / "stage")
    losses = iter([0.5, float("inf")])
    with pytest.raises(NonFiniteLossError, match=r"^stage demo: loss became inf in epoch 2/3;"):
        fit(model, optimizer, lambda epoch: {"loss": next(losses)}, 3, checkpoint=ckpt, desc="demo")
    assert ckpt.loop_state()["epoch"] == 0  # the last good epoch is what a resume continues from


def test_corrupt_png_is_named_before_any_round(pacs):
    bad = pacs / "photo" / "dog" / "1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    result = cli("run", "fed-dg", "--profile", "smoke", "--data", str(pacs))
    one_line_error(result, str(bad), "cannot decode image")
    assert "round" not in result.stderr.lower()
    assert run_folders("fed-dg") == []


def test_image_that_is_not_an_image_is_named(pacs):
    bad = pacs / "sketch" / "house" / "0.png"
    bad.write_text("hello")
    one_line_error(cli("run", "fed-dg", "--profile", "smoke", "--data", str(pacs)), str(bad))


def test_domain_folder_missing_is_named(pacs):
    import shutil

    shutil.rmtree(pacs / "cartoon")
    result = cli("run", "fed-dg", "--profile", "smoke", "--data", str(pacs))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cartoon" in result.stderr
