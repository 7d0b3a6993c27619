"""Rounds of concurrent calls on one server leave no task or thread behind (issue 14).

``tests/test_soak_ci.py`` places calls one at a time and counts Python threads;
here rounds of calls are on the line at once, as in a ``bench_server --sessions``
sweep, and the count is of the process's native threads (``/proc/self/task``):
codecs, onnxruntime and executors start threads Python's ``threading`` never
lists. After each round has hung up, the server must be where it was after the
first: the same asyncio tasks and no more threads (the executors have grown to
their size in the first round, give or take ``SLACK``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time

from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_services import serving_factory
from tests.support.media import TestPeer, speech_pcm
from tests.test_soak_ci import _wait_for

ROUNDS = (4, 4, 4)
#: Threads the executors may still add after the first round (they grow to a cap).
SLACK = 2


def _native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _tasks() -> list[str]:
    me = asyncio.current_task()
    return sorted(t.get_name() for t in asyncio.all_tasks() if t is not me)


async def _round(base: str, n: int, pcm: bytes) -> int:
    """``n`` calls at once, each speaking until answered; returns how many were answered."""
    peers = [TestPeer(base, pcm=pcm, loop_audio=True) for _ in range(n)]
    try:
        await asyncio.gather(*(p.connect(connect_timeout_s=20) for p in peers))
        await _wait_for(lambda: all(p.stats.loud_frames > 10 for p in peers), 15)
        return sum(p.stats.loud_frames > 10 for p in peers)
    finally:
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_rounds_of_concurrent_calls_leave_no_tasks_or_threads_behind(caplog):
    # aiortc logs a VP8 frame it cannot decode with the exception as an argument;
    # pytest's log capture keeps the record, and through the exception's traceback
    # the call's decoder and its threads (a logging handler in a server keeps nothing).
    caplog.set_level(logging.ERROR, logger="aiortc.rtcrtpreceiver")
    srv = TandemServer(factory=serving_factory(), port=0, max_sessions=max(ROUNDS))
    await srv.start()
    assert await srv.wait_warm()
    base = f"http://127.0.0.1:{srv.port}"
    pcm = speech_pcm("Hello bot, can you hear me?", tail_silence_s=1.0)
    levels: list[tuple[list[str], int]] = []
    try:
        for n in ROUNDS:
            assert await _round(base, n, pcm) == n, "a call was not answered"
            assert await _wait_for(lambda: srv.sessions.active == 0, 10), "a call did not end"
            # An ended call's codecs sit in reference cycles: their threads end when
            # the cyclic collector frees them, a moment after the hang-up.
            limit = levels[0][1] + SLACK if levels else 0
            deadline = time.monotonic() + 5
            while True:
                await asyncio.sleep(0.5)
                gc.collect()
                if not levels or _native_threads() <= limit or time.monotonic() > deadline:
                    break
            levels.append((_tasks(), _native_threads()))
    finally:
        await srv.stop()
    first_tasks, first_threads = levels[0]
    assert all(tasks == first_tasks for tasks, _ in levels), levels
    # Held, they would not: FakeSessionFactory's default (it keeps every call's
    # pipeline) fails this, 23 -> 31 -> 43 threads over these rounds.
    assert all(threads <= first_threads + SLACK for _, threads in levels), levels
