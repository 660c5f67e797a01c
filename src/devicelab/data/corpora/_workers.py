"""The build workers of the corpus builders: forked processes that die with the build that started them."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from devicelab.core.stages import die_with_parent


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` forked workers that the kernel kills when the build process dies (``kill -9``
    included), so a killed build leaves no worker behind holding its lock. ``initializer(*initargs)`` runs
    in each worker after that, as in :class:`~concurrent.futures.ProcessPoolExecutor`.

    The workers leave the terminal's process group; when the block raises (an error, Ctrl-C) the queued
    tasks are dropped and the workers are stopped at once instead of finishing the build.
    """
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("fork"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    try:
        yield pool
    except BaseException:
        workers = list(getattr(pool, "_processes", None) or {})  # PIDs; the executor keeps no public list
        pool.shutdown(wait=False, cancel_futures=True)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    pool.shutdown(wait=True)
