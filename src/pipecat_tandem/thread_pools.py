#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Thread pools that are full before the first call, so a server's thread count is flat.

A ``ThreadPoolExecutor`` starts a thread only when a task finds no idle one,
up to its cap, and never ends one. In a long-lived server that reads as
growth: the 100-call soak (issue 13) had 30 threads before the first call and
35 after it, for good: asyncio's default executor +2, the interaction model's
executor +2, and OpenCV's worker pool +1 (``docs/benchmarks.md``). None grew
per call, but an operator comparing the level at start with the level after
a busy hour sees five threads that never come back.

So a server sizes each pool to what its work needs and starts every thread
at warm-up (:func:`prestart`): the count before the first call is the most
the pools will ever hold. OpenCV's own pool is not started at all
(:func:`limit_opencv_threads`): the images it sees in a call are small, and on
the few cores a voice server has its second thread only competes with the
models for them. The same holds for the BLAS libraries numpy and OpenCV load
(:func:`limit_blas_threads`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolController

#: How long :func:`prestart` waits for every pool thread to be free at once.
PRESTART_TIMEOUT_S = 30.0


def default_executor_workers() -> int:
    """Threads for a server loop's default executor: asyncio's own default size.

    ``min(32, cpu_count + 4)``, as ``ThreadPoolExecutor`` picks it; kept so that
    nothing that ran there before (pipecat's VAD hops, speech-to-text, the
    services' ``to_thread`` calls) now waits for a thread.
    """
    return min(32, (os.cpu_count() or 1) + 4)


def executor_workers(executor: ThreadPoolExecutor) -> int:
    """The most threads ``executor`` may start (its ``max_workers``)."""
    # The stdlib keeps the cap private; it is set once in __init__ and never changes.
    workers: int = executor._max_workers
    return workers


async def prestart(executor: ThreadPoolExecutor, timeout_s: float = PRESTART_TIMEOUT_S) -> bool:
    """Start every thread ``executor`` may ever have, now.

    Submits one task per possible thread, all waiting on one barrier, so the
    pool must give each its own thread. Awaited, not blocking: a blocking wait
    (on the loop, or in one of the pool's own threads) would hold up the very
    work the barrier waits for.

    Args:
        executor: The pool to fill.
        timeout_s: Give up if its threads are not all free at once in this time
            (work already running on it that does not end).

    Returns:
        Whether the pool is full. False only on a timeout; then the pool has
        as many threads as could start, and grows on demand as before.
    """
    workers = executor_workers(executor)
    barrier = threading.Barrier(workers)
    futures = [executor.submit(barrier.wait, timeout_s) for _ in range(workers)]
    results = await asyncio.gather(
        *(asyncio.wrap_future(f) for f in futures), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        logger.warning(f"could not start all {workers} threads of {executor!r}: {failed[0]!r}")
        return False
    return True


async def install_default_executor(
    loop: asyncio.AbstractEventLoop, workers: int | None = None
) -> ThreadPoolExecutor:
    """Give ``loop`` a default executor of ``workers`` threads, all started.

    One that asyncio made already (on a first ``to_thread``) is shut down: its
    threads end once idle, so none is left behind outside the counted pool.

    Args:
        loop: The server's event loop.
        workers: Pool size; :func:`default_executor_workers` when ``None``.

    Returns:
        The new default executor.

    Raises:
        ValueError: ``workers`` is less than 1.
    """
    workers = default_executor_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    # asyncio keeps its default executor private; read only to retire it.
    previous = getattr(loop, "_default_executor", None)
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asyncio")
    loop.set_default_executor(executor)
    if previous is not None:
        previous.shutdown(wait=False)
    await prestart(executor)
    return executor


def lower_blas_threads(controller: ThreadpoolController, threads: int) -> list[tuple[Any, int]]:
    """Set each of ``controller``'s libraries that runs above ``threads`` to ``threads``.

    A library at or below it is not touched: each set costs ~60 µs.

    Returns:
        ``(library, its previous thread count)`` for each library set, to restore.
    """
    lowered = [(lib, n) for lib in controller.lib_controllers if (n := lib.num_threads) > threads]
    for lib, _ in lowered:
        lib.set_num_threads(threads)
    return lowered


def limit_blas_threads(threads: int = 1) -> list[str]:
    """Run every BLAS the process has loaded on at most ``threads`` threads.

    A server holds two: numpy's OpenBLAS and the one OpenCV bundles, each with
    one thread per core by default. The products a call makes with them are
    small (the fusion's patch embeddings, the motion counter's projections),
    where a second thread costs more CPU than it saves, and its workers only
    compete with the models for the cores. The fusion processor limited BLAS
    around each micro-turn itself, setting and restoring both libraries five
    times a second (~0.4 ms each time); at the limit already, it leaves them.

    Args:
        threads: The most threads each library may use.

    Returns:
        The libraries limited (their internal API names, e.g. ``openblas``).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    lower_blas_threads(blas, threads)
    return [lib.internal_api for lib in blas.lib_controllers]


def limit_opencv_threads() -> bool:
    """Run OpenCV's functions on the calling thread: no worker pool is started.

    With its default (one thread per core) OpenCV starts a pool thread on its
    first parallel call (a frame's resize, a DFT) and keeps it for the life of
    the process. The frames a call's perception handles are small (480 px
    high), and the cores are the models'.

    Returns:
        Whether OpenCV is installed (and now single-threaded).
    """
    try:
        import cv2
    except ImportError:
        return False
    cv2.setNumThreads(1)
    return True
