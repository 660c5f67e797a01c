"""toy: plan the (width, seed) stages, run them, keep the claims (the template of ``docs/contract.md``)."""

from __future__ import annotations

from devicelab.core.claims import Claim
from devicelab.core.experiment import Experiment
from devicelab.core.run import RunContext
from devicelab.core.stages import plan_stages, run_stages

from .config import ToyConfig
from .data import make_task
from .recipe import train_stage
from .report import accuracy_table

PAPER = "A toy problem for testing the experiment contract"

CLAIMS = (
    Claim(
        "T1",
        "the wide model is within 5 points of the narrow one, or better",
        method="accuracy/w16",
        baseline="accuracy/w4",
        margin=-5.0,
        profiles=("smoke", "quick"),
    ),
)


def run(config: ToyConfig, ctx: RunContext) -> dict[str, list[float]]:
    """Every width x seed as a resumable stage; per-seed metrics keyed ``metric/variant``."""
    variants = [f"w{w}" for w in config.widths]
    stages = plan_stages(variants, range(config.seed, config.seed + config.seeds))
    task = make_task(config.seed)
    results = run_stages(ctx, stages, train_stage, task, workers=config.workers, threads=config.threads)
    metrics = results.per_seed()
    ctx.add_table(accuracy_table(metrics, variants))
    return metrics


EXPERIMENT = Experiment(
    name="toy",
    paper=PAPER,
    config_cls=ToyConfig,
    run=run,
    claims=CLAIMS,
    headline=("accuracy/w16", "accuracy/w4"),
)
