"""A server's thread count after warm-up is the most its pools hold (issue 13, soak).

The 100-call soak had 30 threads before the first call and 35 for good after
it: asyncio's default executor (+2) and the interaction model's executor (+2)
grew on the first calls, and OpenCV started its worker pool (+1). Each test
here warms the real part, counts its threads, works it as hard as a call's
worst moment could, and counts again: on the old code every count grew.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipecat_tandem.thread_pools import (
    default_executor_workers,
    install_default_executor,
    limit_blas_threads,
    prestart,
)

ROOT = Path(__file__).resolve().parents[1]

# A fresh process: the test process's own OpenCV pool and executors would hide growth.
SERVER_SCRIPT = """
import asyncio, json, os, sys, threading
sys.path.insert(0, {root!r})
import numpy as np
import cv2
from tests.support.fake_services import FakeSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer

def threads():
    return len(os.listdir("/proc/self/task"))

async def main():
    server = TandemServer(factory=FakeSessionFactory(keep_pipelines=False), port=0)
    await server.start()
    assert await server.wait_warm()
    loop = asyncio.get_running_loop()
    before = threads()
    # More blocking jobs at once than asyncio's default executor has threads
    # (a call's VAD hops, transcriptions and to_thread calls all land there).
    release = threading.Event()
    jobs = [loop.run_in_executor(None, release.wait, 10) for _ in range(os.cpu_count() + 6)]
    release.set()
    await asyncio.gather(*jobs)
    # What a call's perception and dMel run: a frame's resize, a DFT.
    frame = np.zeros((720, 1280, 3), np.uint8)
    cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    cv2.dft(np.ones((64, 512), np.float32), flags=cv2.DFT_ROWS)
    after = threads()
    from threadpoolctl import threadpool_info
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    await server.stop()
    print(json.dumps({{"before": before, "after": after, "blas": blas}}))

asyncio.run(main())
"""


def test_a_warm_server_does_not_start_threads_later():
    out = subprocess.run(
        [sys.executable, "-c", SERVER_SCRIPT.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    # Old code: +4 default-executor threads and +1 OpenCV thread.
    assert counts["after"] == counts["before"], counts
    # numpy's and OpenCV's OpenBLAS, one thread each (they start one per core).
    assert counts["blas"] and set(counts["blas"]) == {1}, counts


def _pool_threads(prefix: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


async def test_prestart_starts_every_thread_of_the_pool():
    executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="prestart-test")
    try:
        assert await prestart(executor)
        assert _pool_threads("prestart-test") == 3
    finally:
        executor.shutdown()


async def test_prestart_gives_up_on_a_pool_that_stays_busy():
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="busy-test")
    release = threading.Event()
    busy = executor.submit(release.wait, 10)
    try:
        assert not await prestart(executor, timeout_s=0.2)
    finally:
        release.set()
        busy.result()
        executor.shutdown()


async def test_the_installed_default_executor_is_full_and_replaces_asyncio_s():
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(lambda: None)  # asyncio makes its own default executor
    old = loop._default_executor  # type: ignore[attr-defined]
    assert old is not None
    executor = await install_default_executor(loop, workers=2)
    try:
        assert loop._default_executor is executor  # type: ignore[attr-defined]
        assert old._shutdown  # its idle threads end: none left outside the counted pool
        assert sum(1 for t in executor._threads if t.is_alive()) == 2
    finally:
        executor.shutdown()


async def test_a_default_executor_without_threads_is_refused():
    with pytest.raises(ValueError, match="workers"):
        await install_default_executor(asyncio.get_running_loop(), workers=0)


def test_the_default_executor_keeps_asyncio_s_size():
    assert default_executor_workers() == min(32, (os.cpu_count() or 1) + 4)


@pytest.mark.slow
async def test_a_warm_model_server_does_not_start_threads_later():
    pytest.importorskip("xllamacpp")
    from pipecat_tandem.models.local_server import LocalModelServer
    from pipecat_tandem.models.local_stack import LocalStack
    from pipecat_tandem.models.requantize import QWEN_05B_Q4_0

    stack = LocalStack(interaction_model=QWEN_05B_Q4_0, background_model=None, call_slots=2)
    assert stack.interaction_server is not None
    # Its own name: other tests' servers in this process have "interaction" threads too.
    config = dataclasses.replace(stack.interaction_server.config, name="pool-test")
    server = LocalModelServer(config)
    await server.warm()
    before = _pool_threads("tandem-pool-test")
    # More requests at once than the server has slots: two calls' turns, a
    # cache refill and a cancelled stream, all wanting a thread.
    request = {"messages": [{"role": "user", "content": "Hi."}], "max_tokens": 1}

    async def stream_one() -> None:
        async for _ in server.stream_chat(request):
            break  # the caller hung up after the first token

    await asyncio.gather(
        *(server.complete_async(request) for _ in range(3)), *(stream_one() for _ in range(3))
    )
    after = _pool_threads("tandem-pool-test")
    # Old code: two threads after warm-up, then more with each request at once.
    assert after == before, (before, after)
    assert before == 4  # two per slot


def test_limit_blas_threads_refuses_zero():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        limit_blas_threads(0)
