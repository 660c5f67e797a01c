"""Run folders: ``runs/NAME/<run-id>/`` with config.yaml, metrics.json, log.jsonl, checkpoints/, plots/.

``execute(experiment, config, ...)`` is the one place that creates a run folder, calls the experiment's run
function, evaluates its claims and writes ``metrics.json``. A run is resumable: finished stages are read back
from ``stages/`` and unfinished training continues from its last checkpoint.

``run.json`` records the run's ``state``: ``started`` (running, or killed), ``failed`` (with the error) or
``finished``. A run that fails before it kept any stage or checkpoint leaves no folder behind.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from devicelab.core.checkpoint import TrainingCheckpoint
from devicelab.core.claims import MetricValue, evaluate_claims
from devicelab.core.config import ConfigError, load_config_yaml, to_dict
from devicelab.core.experiment import Experiment
from devicelab.core.paths import ensure_folder, runs_root
from devicelab.core.stages import StageExecutor

RESUMABLE_STATES = ("started", "failed")


class RunContext:
    """What a run function gets besides its config: the folder, logging, checkpoints, stages, data."""

    def __init__(
        self,
        experiment: Experiment,
        config: Any,
        run_dir: Path,
        profile: str,
        data_path: Path | None = None,
        resume: bool = False,
        executor: StageExecutor | None = None,
        skip_bad: bool = False,
    ):
        self.experiment = experiment
        self.config = config
        self.run_dir = run_dir
        self.profile = profile
        self.data_path = data_path
        self.resume = resume
        self.skip_bad = skip_bad  # loaders drop unreadable or non-finite input files and list them in a note
        self.executor = executor  # where stages run (devicelab.core.stages); None: local worker processes
        self.notes: list[str] = []
        self.plots: list[str] = []
        self.tables: list[str] = []
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (run_dir / "plots").mkdir(exist_ok=True)
        (run_dir / "stages").mkdir(exist_ok=True)

    # logging -------------------------------------------------------------------------------------------
    def log(self, **record: Any) -> None:
        """Append one record (a training-curve point, an event) to ``log.jsonl``."""
        record = {"time": round(time.time(), 3), **record}
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def note(self, text: str) -> None:
        """A remark that goes into metrics.json and the report (e.g. "list test split")."""
        if text not in self.notes:
            self.notes.append(text)

    def add_table(self, markdown: str) -> None:
        """A markdown table printed at the end of the run and kept in metrics.json."""
        self.tables.append(markdown)

    # files ---------------------------------------------------------------------------------------------
    @property
    def plots_dir(self) -> Path:
        return self.run_dir / "plots"

    def add_plot(self, path: str | Path) -> None:
        self.plots.append(str(Path(path).relative_to(self.run_dir)))

    def checkpoint(self, name: str) -> TrainingCheckpoint:
        """The resumable training checkpoint of one sub-run (e.g. ``"ssn-seed1"``)."""
        return TrainingCheckpoint(self.run_dir / "checkpoints" / name)

    def has_stage(self, name: str) -> bool:
        """Whether sub-run ``name`` has finished (its result is kept in ``stages/``)."""
        return (self.run_dir / "stages" / f"{name}.json").exists()

    def stage(self, name: str, fn: Callable[[], Mapping[str, Any]]) -> dict[str, Any]:
        """Run ``fn`` once and keep its JSON result in ``stages/NAME.json``; a resumed run reads it back."""
        path = self.run_dir / "stages" / f"{name}.json"
        if path.exists():
            return json.loads(path.read_text())
        result = dict(fn())
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(result, default=float))
        os.replace(tmp, path)
        return result

    def corpus(self, name: str, profile: str | None = None) -> Path:
        """The built offline corpus ``name`` for this run's profile, built first if missing."""
        from devicelab.data.corpora import ensure_corpus

        return ensure_corpus(name, profile or self.profile)


def _environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def new_run_dir(name: str, root: Path | None = None) -> Path:
    root = (root or ensure_folder(runs_root(), "DEVICELAB_RUNS")) / name
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir, k = root / stamp, 1
    while run_dir.exists():
        run_dir, k = root / f"{stamp}-{k}", k + 1
    run_dir.mkdir(parents=True)
    return run_dir


def latest_run_dir(
    name: str, profile: str | None = None, finished: bool | None = None, root: Path | None = None
) -> Path | None:
    """The newest run folder of ``name`` under ``$DEVICELAB_RUNS`` (optionally of one profile).

    ``finished=True``: the newest finished run; ``finished=False``: the newest *resumable* one, a run of this
    experiment whose ``run.json`` says it started and did not finish.
    """
    base = (root or runs_root()) / name
    if not base.is_dir():
        return None
    for d in sorted((p for p in base.iterdir() if (p / "config.yaml").exists()), reverse=True):
        meta = read_meta(d)
        if profile is not None and meta.get("profile") != profile:
            continue
        done = (d / "metrics.json").exists()
        if finished is not None and done != finished:
            continue
        if finished is False and not is_resumable(d, name):
            continue
        return d
    return None


def read_meta(run_dir: Path) -> dict:
    """``run.json`` of a run folder ({} when missing or unreadable)."""
    p = run_dir / "run.json"
    try:
        meta = json.loads(p.read_text()) if p.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def is_resumable(run_dir: Path, name: str) -> bool:
    """Whether ``run_dir`` is an unfinished run of experiment ``name`` that ``--resume`` can continue: one
    that is ``started`` (running or killed), or that failed (or predates recorded states) after keeping a
    stage result or a checkpoint. A start that failed before keeping anything is not worth resuming."""
    meta = read_meta(run_dir)
    if meta.get("experiment") != name or (run_dir / "metrics.json").exists():
        return False
    if not (run_dir / "config.yaml").is_file() or meta.get("state") not in (*RESUMABLE_STATES, None):
        return False
    return meta.get("state") == "started" or _holds_results(run_dir)


def _write_meta(run_dir: Path, meta: Mapping[str, Any]) -> None:
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(dict(meta), indent=2))
    os.replace(tmp, run_dir / "run.json")


def _holds_results(run_dir: Path) -> bool:
    """Whether a run folder kept anything a resume would reuse (a stage result or a checkpoint)."""
    return any(run_dir.glob("stages/*.json")) or any(run_dir.glob("checkpoints/*.safetensors"))


def execute(
    experiment: Experiment,
    config: Any,
    profile: str,
    *,
    data_path: Path | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    echo: Callable[[str], None] = print,
    executor: StageExecutor | None = None,
    skip_bad: bool = False,
) -> dict:
    """Run ``experiment`` with ``config`` in a new (or, with ``resume``, the given) run folder.

    Returns the content of ``metrics.json``. ``run.json`` says ``started`` while it runs, then ``finished`` or
    ``failed`` (with the error); a new run that fails before keeping any result leaves no folder.
    ``skip_bad`` lets loaders drop bad input files (listed in a note); a resumed run keeps its setting.
    """
    if resume and run_dir is not None:
        saved = load_config_yaml(experiment.config_cls, run_dir / "config.yaml")
        if to_dict(saved) != to_dict(config):
            raise ConfigError(
                f"{run_dir / 'config.yaml'}: the config differs from the one given; "
                "resume without overrides to continue this run"
            )
    else:
        run_dir = new_run_dir(experiment.name)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
        meta = {
            "experiment": experiment.name,
            "profile": profile,
            "data_path": str(data_path) if data_path else None,
            "skip_bad": skip_bad,
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "state": "started",
        }
        _write_meta(run_dir, meta)
    meta = read_meta(run_dir)
    if resume:
        skip_bad = skip_bad or bool(meta.get("skip_bad"))
        meta.update(state="started", error=None)
        _write_meta(run_dir, meta)
    echo(f"run folder: {run_dir}")
    ctx = RunContext(
        experiment,
        config,
        run_dir,
        profile,
        data_path=data_path,
        resume=resume,
        executor=executor,
        skip_bad=skip_bad,
    )
    ctx.log(event="resume" if resume else "start", profile=profile)
    t0 = time.perf_counter()
    try:
        metrics: Mapping[str, MetricValue] = experiment.run(config, ctx)
    except BaseException as e:
        if not resume and not _holds_results(run_dir):  # nothing to resume: leave no half-made folder
            shutil.rmtree(run_dir, ignore_errors=True)
            echo(f"removed {run_dir}: the run failed before keeping any result")
        else:
            meta.update(state="failed", error=f"{type(e).__name__}: {e}"[:2000])
            _write_meta(run_dir, meta)
            ctx.log(event="failed", error=meta["error"])
        raise
    wall = time.perf_counter() - t0
    prior = _earlier_wall_time(run_dir / "log.jsonl") if resume else 0.0
    claims = evaluate_claims(experiment.claims, metrics, profile)
    result = {
        "experiment": experiment.name,
        "paper": experiment.paper,
        "profile": profile,
        "seed": getattr(config, "seed", None),
        "data_path": str(data_path) if data_path else None,
        "metrics": {k: (list(v) if not isinstance(v, int | float) else v) for k, v in metrics.items()},
        "claims": [c.to_dict() for c in claims],
        "notes": ctx.notes,
        "tables": ctx.tables,
        "plots": ctx.plots,
        "wall_time_s": round(prior + wall, 2),
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "environment": _environment(),
    }
    tmp = run_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=float))
    os.replace(tmp, run_dir / "metrics.json")
    meta.update(state="finished", error=None)
    _write_meta(run_dir, meta)
    ctx.log(event="finish", wall_time_s=result["wall_time_s"])
    return result


def _earlier_wall_time(log_path: Path) -> float:
    """Seconds spent by the interrupted attempts of a resumed run, from the times in ``log.jsonl``.

    Each attempt starts with a start/resume record; it lasted until its last record. The current attempt
    (the last start/resume record) is excluded.
    """
    if not log_path.exists():
        return 0.0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    starts = [i for i, r in enumerate(records) if r.get("event") in ("start", "resume")]
    total = 0.0
    for a, b in zip(starts[:-1], starts[1:]):
        total += records[b - 1]["time"] - records[a]["time"]
    return total
