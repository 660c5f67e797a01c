"""The build workers of the corpus builders: forked processes that die with the build that started them."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from devicelab.core.stages import die_with_parent


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def worker_pool(
    jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A pool of ``jobs`` forked workers that the kernel kills when the build process dies (``kill -9``
    included), so a killed build leaves no worker behind holding its lock. ``initializer(*initargs)`` runs
    in each worker after that, as in :class:`~concurrent.futures.ProcessPoolExecutor`."""
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("fork"),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
