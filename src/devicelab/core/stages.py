"""Stages: the (variant, seed[, condition]) units of an experiment, run resumably in parallel workers.

An experiment plans its stages, then hands them to :func:`run_stages` with one stage function::

    stages = plan_stages(["ssn", "bn"], seeds=[0, 1, 2])
    results = run_stages(ctx, stages, train_stage, task, workers=config.workers, threads=config.threads)
    metrics = results.per_seed()  # {"test_acc/ssn": [s0, s1, s2], "test_acc/bn": [...], ...}

``train_stage(task, stage, ctx) -> dict`` must be a module-level function (workers import it by name). Each
stage runs once and keeps its JSON result in ``stages/NAME.json`` (:meth:`RunContext.stage`); a resumed run
skips the finished ones. Workers write their own stage files, so a killed run loses only unfinished stages.

Metric keys follow one rule: ``metric/variant`` or ``metric/variant/condition``, with one value per seed in
the order of the plan (:func:`metric_key`). Only the number-valued entries of a stage result are keyed;
everything else (curves, per-class lists) stays readable as ``results[stage.name]``.

Executors: :class:`LocalExecutor` (default) forks ``workers`` processes (default: one per core) that run
with ``threads`` torch threads each and die with their parent; the task goes to them as a process argument
(inherited by fork, never pickled). :class:`RayExecutor` runs the same stages on a Ray cluster
(``devicelab run NAME --ray ADDRESS``); its workers must see the run folder (same machine or a shared file
system).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    from devicelab.core.run import RunContext

StageFunction = Callable[[Any, "Stage", "RunContext"], Mapping[str, Any]]


@dataclass(frozen=True)
class Stage:
    """One resumable unit: a variant trained with one seed, optionally under one condition."""

    variant: str
    seed: int
    condition: str | None = None

    @property
    def name(self) -> str:
        """Stage and checkpoint name: ``ssn-seed1``, ``fedfd-mnist-seed0``."""
        middle = f"-{self.condition}" if self.condition is not None else ""
        return f"{self.variant}{middle}-seed{self.seed}"

    def key(self, metric: str) -> str:
        """This stage's key for ``metric`` (see :func:`metric_key`)."""
        return metric_key(metric, self.variant, self.condition)


def metric_key(metric: str, variant: str, condition: str | None = None) -> str:
    """``metric/variant`` or ``metric/variant/condition``: the key of a per-seed list in ``metrics.json``."""
    return "/".join(p for p in (metric, variant, condition) if p is not None)


def plan_stages(
    variants: Iterable[str], seeds: Iterable[int], conditions: Iterable[str] | None = None
) -> list[Stage]:
    """Every (seed, variant[, condition]), seed-major, so an interrupted run holds complete comparisons."""
    variants, conditions = list(variants), (list(conditions) if conditions is not None else [None])
    return [Stage(v, s, c) for s in seeds for v in variants for c in conditions]


class StageResults(dict[str, dict[str, Any]]):
    """Stage name -> the stage's JSON result, in plan order; :meth:`per_seed` keys the numbers."""

    def __init__(self, stages: Sequence[Stage], results: Mapping[str, dict[str, Any]]):
        super().__init__((s.name, results[s.name]) for s in stages)
        self.stages = list(stages)

    def of(self, variant: str, condition: str | None = None) -> list[dict[str, Any]]:
        """The results of one variant (and condition), one per seed in plan order."""
        return [self[s.name] for s in self.stages if s.variant == variant and s.condition == condition]

    def per_seed(self, metrics: Iterable[str] | None = None) -> dict[str, list[float]]:
        """``{metric/variant[/condition]: [one value per seed]}`` for every number-valued result entry
        (or only ``metrics``)."""
        wanted = set(metrics) if metrics is not None else None
        out: dict[str, list[float]] = {}
        for stage in self.stages:
            for metric, value in self[stage.name].items():
                if wanted is not None and metric not in wanted:
                    continue
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out.setdefault(stage.key(metric), []).append(value)
        return out


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class StageCall:
    """What every worker runs for a stage: ``fn(task, stage, ctx)`` with ``threads`` torch threads, its result
    kept in ``stages/`` by the worker itself."""

    ctx: RunContext
    fn: StageFunction
    task: Any
    threads: int

    def __call__(self, stage: Stage) -> dict[str, Any]:
        torch.set_num_threads(self.threads)
        return self.ctx.stage(stage.name, lambda: self.fn(self.task, stage, self.ctx))


class StageExecutor(Protocol):
    """Runs ``call`` on pending stages, at most ``workers`` at a time, and yields ``(stage, result)`` as they
    finish."""

    def run(
        self, call: StageCall, stages: Sequence[Stage], workers: int
    ) -> Iterator[tuple[Stage, dict[str, Any]]]: ...


def run_stages(
    ctx: RunContext,
    stages: Sequence[Stage],
    fn: StageFunction,
    task: Any = None,
    *,
    workers: int = 0,
    threads: int = 1,
    executor: StageExecutor | None = None,
) -> StageResults:
    """Run ``fn(task, stage, ctx)`` for every stage not finished yet and return all results.

    ``workers`` parallel processes (0: one per core) of ``threads`` torch threads each; with one worker or
    one pending stage everything runs in this process. ``executor`` defaults to ``ctx.executor`` (set by
    ``--ray``), else local processes.
    """
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"stages repeat: {', '.join(repeated)}")
    if threads < 1:
        raise ValueError(f"threads={threads}: expected at least 1")
    workers = workers if workers > 0 else default_workers()
    done = {s.name: ctx.stage(s.name, _unreachable) for s in stages if ctx.has_stage(s.name)}
    pending = [s for s in stages if s.name not in done]
    executor = executor or getattr(ctx, "executor", None)
    call = StageCall(ctx, fn, task, threads)
    if executor is None and (workers == 1 or len(pending) <= 1):
        done.update((stage.name, call(stage)) for stage in pending)
    elif pending:
        done.update(
            (stage.name, result)
            for stage, result in (executor or LocalExecutor()).run(call, pending, workers)
        )
    return StageResults(stages, done)


def _unreachable() -> dict[str, Any]:
    raise AssertionError("a finished stage is read back, never recomputed")


# local worker processes -------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists; a zombie child of this process (exited, unreaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:  # not our child: it exists
        return True


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``prctl``); elsewhere a no-op.

    Also leaves the parent's process group, so a terminal's Ctrl-C reaches only the parent, which then
    stops its workers itself.
    """
    os.setpgid(0, 0)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker_main(
    parent_pid: int,
    call: StageCall,
    inbox: multiprocessing.SimpleQueue,
    outbox: multiprocessing.SimpleQueue,
) -> None:
    """A worker: run the stages it is sent until it gets ``None``; report each result or error."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the workers
    while (stage := inbox.get()) is not None:
        try:
            outbox.put((stage, call(stage), None))
        except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent
            outbox.put((stage, None, _portable_error(error, stage)))


def _portable_error(error: BaseException, stage: Stage) -> BaseException:
    """The error itself (with a note naming the stage) when it pickles, else a RuntimeError carrying its
    traceback."""
    error.add_note(f"in stage {stage.name}")
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        text = "".join(traceback.format_exception(error))
        return RuntimeError(f"stage {stage.name} failed:\n{text}")


class LocalExecutor:
    """Forked worker processes on this machine, each in its own process group and killed with its parent."""

    poll_s = 0.5

    def run(
        self, call: StageCall, stages: Sequence[Stage], workers: int
    ) -> Iterator[tuple[Stage, dict[str, Any]]]:
        mp = multiprocessing.get_context("fork")
        inbox, outbox = mp.SimpleQueue(), mp.SimpleQueue()
        count = min(workers, len(stages))
        procs = [
            mp.Process(
                target=_worker_main,
                args=(os.getpid(), call, inbox, outbox),
                name=f"devicelab-worker-{i}",
                daemon=True,
            )
            for i in range(count)
        ]
        for p in procs:
            p.start()
        try:
            for stage in stages:
                inbox.put(stage)
            for _ in procs:
                inbox.put(None)
            for _ in stages:
                stage, result, error = self._next(outbox, procs)
                if error is not None:
                    raise error
                yield stage, result
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                p.join()

    def _next(self, outbox: multiprocessing.SimpleQueue, procs: list) -> tuple[Stage, Any, Any]:
        """The next report; raises when a worker died without one (killed, out of memory)."""
        while True:
            if not outbox.empty():
                return outbox.get()
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead and outbox.empty():
                codes = ", ".join(f"{p.name}: exit code {p.exitcode}" for p in dead)
                raise RuntimeError(f"a stage worker died without reporting ({codes})")
            multiprocessing.connection.wait([p.sentinel for p in procs if p.is_alive()] or [], self.poll_s)


# Ray ---------------------------------------------------------------------------------------------------
def _ray_stage(call: StageCall, stage: Stage) -> dict[str, Any]:
    return call(stage)


class RayExecutor:
    """Stages as Ray tasks of ``threads`` CPUs each, at most ``workers`` at a time.

    ``address`` is a running cluster (``ray://host:10001`` or ``host:6379``), or ``"local"`` for a private
    instance on this machine bound to 127.0.0.1 (``num_cpus`` of them, default: the cores) that is shut
    down after the run.
    """

    def __init__(self, address: str, num_cpus: int | None = None):
        self.address = address
        self.num_cpus = num_cpus

    def __reduce__(self):  # only the address travels (e.g. inside a pickled RunContext)
        return (RayExecutor, (self.address, self.num_cpus))

    def _init(self) -> bool:
        """Connect (or start the local instance); True when this call started Ray and must shut it down."""
        import ray

        if ray.is_initialized():
            return False
        quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.address == "local":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                num_cpus=self.num_cpus or default_workers(),
                _node_ip_address="127.0.0.1",
                object_store_memory=256 * 2**20,
                **quiet,
            )
        else:
            ray.init(address=self.address, log_to_driver=False)
        return True

    def run(
        self, call: StageCall, stages: Sequence[Stage], workers: int
    ) -> Iterator[tuple[Stage, dict[str, Any]]]:
        import ray

        started = self._init()
        try:
            remote = ray.remote(num_cpus=call.threads, max_retries=0)(_ray_stage)
            call_ref = ray.put(call)  # context, function and task travel once
            waiting = list(stages)
            running: dict[Any, Stage] = {}
            while waiting or running:
                while waiting and len(running) < max(1, workers):
                    stage = waiting.pop(0)
                    running[remote.remote(call_ref, stage)] = stage
                ready, _ = ray.wait(list(running), num_returns=1)
                stage = running.pop(ready[0])
                yield stage, ray.get(ready[0])
        finally:
            for ref in running:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()


def executor_for(ray_address: str | None) -> StageExecutor | None:
    """The executor a ``--ray`` option asks for (None: local worker processes)."""
    return RayExecutor(ray_address) if ray_address else None


__all__ = [
    "LocalExecutor",
    "RayExecutor",
    "Stage",
    "StageCall",
    "StageExecutor",
    "StageResults",
    "die_with_parent",
    "executor_for",
    "metric_key",
    "plan_stages",
    "run_stages",
]
