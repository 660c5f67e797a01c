"""The corpus builders' worker pool: ordered results, and an interrupt that leaves the executor consistent."""

import subprocess
import sys
import textwrap

import pytest

from devicelab.data.corpora._workers import worker_pool


def _add(a, b):
    return a + b


@pytest.mark.parametrize("chunksize", [1, 3, 50])
def test_map_keeps_the_order_over_chunks(chunksize):
    with worker_pool(2) as pool:
        assert list(pool.map(_add, range(10), range(100, 110), chunksize=chunksize)) == [
            a + b for a, b in zip(range(10), range(100, 110))
        ]


def test_an_error_in_a_worker_reaches_the_build():
    with pytest.raises(ZeroDivisionError), worker_pool(2) as pool:
        list(pool.map(divmod, [1, 2], [1, 0]))


def test_interrupted_map_leaves_its_futures_to_the_executor():
    # Python 3.11's executor thread fails pending futures when a worker dies; a future cancelled by the
    # interrupted loop before that made it raise InvalidStateError (executor.map cancels in its finally)
    script = textwrap.dedent(
        """
        import os, signal, time
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context
        from devicelab.data.corpora._workers import WorkerPool

        def work(x):
            time.sleep(0.02)
            return x

        executor = ProcessPoolExecutor(2, mp_context=get_context("fork"))
        try:
            for r in WorkerPool(executor).map(work, range(100), chunksize=2):
                if r == 3:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            for pid in list(executor._processes):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)  # the executor's thread sees the dead workers before the shutdown
            executor.shutdown(wait=False, cancel_futures=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
