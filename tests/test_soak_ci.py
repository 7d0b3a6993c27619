"""A short soak (issue 13): call after call on one server, nothing piles up.

Ten sequential calls from real aiortc peers against one ``TandemServer`` on
fake models (benchmarks/bench_soak.py is the long version, on the real ones).
After every call the server must be back where it was after the first: the
same number of asyncio tasks, and at most a few more threads (the default
executor grows to its cap once). Every call must connect, and the last one
must still be answered.
"""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp

from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_services import FakeSessionFactory
from tests.support.media import TestPeer, speech_pcm
from tests.test_server import offer_sdp

CALLS = 10


async def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def _tasks() -> list[str]:
    me = asyncio.current_task()
    return sorted(t.get_name() for t in asyncio.all_tasks() if t is not me)


async def test_ten_calls_leave_no_tasks_or_threads_behind(tmp_path):
    started = time.monotonic()
    factory = FakeSessionFactory(reply="Hello, I hear you.")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path)
    await srv.start()
    assert await srv.wait_warm()
    base = f"http://127.0.0.1:{srv.port}"
    speech = speech_pcm("Hello bot, can you hear me?")
    levels: list[tuple[int, int]] = []
    answered = False
    try:
        for n in range(CALLS):
            last = n == CALLS - 1
            peer = TestPeer(base, pcm=speech if last else b"", video=True, video_fps=5)
            try:
                await peer.connect(connect_timeout_s=15)
                # The server sees the connection a moment after the peer does.
                assert await _wait_for(
                    lambda: any(s.connected for s in srv.sessions.sessions()), 5
                ), f"call {n + 1} never connected at the server"
                if last:
                    answered = await _wait_for(
                        lambda p=peer: p.stats.loud_frames > 10 and p.tandem_messages("bot_text"),
                        15,
                    )
                else:
                    await asyncio.sleep(0.5)
            finally:
                await peer.close()
            assert await _wait_for(lambda: srv.sessions.active == 0, 10), f"call {n + 1} stuck"
            await asyncio.sleep(0.3)  # the collector and closing sockets settle
            levels.append((len(_tasks()), threading.active_count()))
        assert answered, "the last call got no answer"
        ended = srv.sessions.ended_sessions
        assert len(ended) == CALLS and all(s.connected for s in ended)
        tasks_after_first, threads_after_first = levels[0]
        assert all(t <= tasks_after_first for t, _ in levels), levels
        assert all(th <= threads_after_first + 3 for _, th in levels), levels
        # No creep either: the second half is no higher than the first.
        half = CALLS // 2
        assert max(th for _, th in levels[half:]) <= max(th for _, th in levels[:half]) + 1
    finally:
        await srv.stop()
    assert time.monotonic() - started < 60


async def test_a_session_ended_right_after_its_answer_leaves_no_task(tmp_path):
    """Regression: ended mid-start, a session kept its STT's segment task forever."""
    srv = TandemServer(factory=FakeSessionFactory(), port=0, record_dir=tmp_path)
    await srv.start()
    assert await srv.wait_warm()
    before = _tasks()
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                pc, sdp = await offer_sdp()
                body = {"sdp": sdp, "type": "offer"}
                async with http.post(f"{base_url(srv)}/api/offer", json=body) as r:
                    assert r.status == 200
                await pc.close()
                # The client vanished before the pipeline finished starting.
                for s in srv.sessions.sessions():
                    await srv.sessions.end(s, "client vanished")
                    await s.ended.wait()
        assert await _wait_for(lambda: _tasks() == before, 5), _tasks()
    finally:
        await srv.stop()


def base_url(srv: TandemServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


def test_the_server_caps_heap_arenas_unless_the_operator_did(monkeypatch):
    # Per-call threads each claimed a glibc arena that never shrank: RSS climbed call
    # after call (docs/benchmarks.md). The cap is set once; MALLOC_ARENA_MAX stands.
    import ctypes.util

    from pipecat_tandem.transports.session_manager import limit_malloc_arenas

    uncached = limit_malloc_arenas.__wrapped__
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert uncached(2) is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    glibc = (ctypes.util.find_library("c") or "").startswith("libc.so")
    assert uncached(2) is glibc
