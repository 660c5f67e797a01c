"""The build workers of the corpus builders: forked processes that die with the build that started them."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from devicelab.core.stages import die_with_parent


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple]) -> list[Any]:
    return [fn(*args) for args in chunk]


class WorkerPool:
    """Forked workers with an ordered :meth:`map`.

    Unlike :meth:`ProcessPoolExecutor.map`, an interrupted :meth:`map` does not cancel its queued futures
    from the calling thread: Python 3.11's executor thread raises ``InvalidStateError`` when it then fails
    those cancelled futures after a worker is killed. Queued work is dropped by :func:`worker_pool` instead,
    through ``shutdown(cancel_futures=True)``, which the executor's own thread carries out.
    """

    def __init__(self, executor: ProcessPoolExecutor):
        self.executor = executor

    def map(self, fn: Callable[..., Any], *iterables: Iterable, chunksize: int = 1) -> Iterator[Any]:
        """``fn`` over the zipped ``iterables``, results in order, ``chunksize`` calls per task."""
        calls = iter(zip(*iterables))
        chunks = iter(lambda: list(itertools.islice(calls, max(1, chunksize))), [])
        futures = [self.executor.submit(_run_chunk, fn, chunk) for chunk in chunks]
        for future in futures:
            yield from future.result()


@contextlib.contextmanager
def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[WorkerPool]:
    """A pool of ``workers`` forked workers that the kernel kills when the build process dies (``kill -9``
    included), so a killed build leaves no worker behind holding its lock. ``initializer(*initargs)`` runs
    in each worker after that, as in :class:`~concurrent.futures.ProcessPoolExecutor`.

    The workers leave the terminal's process group; when the block raises (an error, Ctrl-C) the queued
    tasks are dropped and the workers are stopped at once instead of finishing the build.
    """
    executor = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("fork"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    try:
        yield WorkerPool(executor)
    except BaseException:
        pids = list(getattr(executor, "_processes", None) or {})  # the executor keeps no public list
        executor.shutdown(wait=False, cancel_futures=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    executor.shutdown(wait=True)
