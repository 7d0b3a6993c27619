"""Real WebRTC clients (aiortc) against the real server and the real tandem pipeline.

The services are fakes (tests/support) so turns are fast and deterministic; the
transport, VAD, aggregators, delegation and interleaving are the real ones.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_llm import FakeReply
from tests.support.fake_services import FakeSessionFactory
from tests.support.media import TestPeer, speech_pcm

pytestmark = pytest.mark.e2e


async def start(factory, tmp_path, **kwargs) -> TandemServer:
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path, **kwargs)
    await srv.start()
    assert await srv.wait_warm()
    return srv


async def wait_for(predicate, timeout_s: float, step_s: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return predicate()


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_aiortc_peer_speaks_and_the_bot_answers(tmp_path):
    factory = FakeSessionFactory(reply="Hello, I hear you.")
    srv = await start(factory, tmp_path)
    peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=speech_pcm("Hello bot, can you hear me?"))
    try:
        await peer.connect()
        # The bot answers: audible audio arrives and the data channel carries the turn.
        answered = await wait_for(
            lambda: peer.stats.loud_frames > 10 and peer.tandem_messages("bot_text"), 15
        )
        assert answered, (peer.stats.loud_frames, peer.tandem_messages())
        transcripts = [m["text"] for m in peer.tandem_messages("transcript")]
        assert transcripts and transcripts[0] == "hello there"
        assert "Hello," in " ".join(m["text"] for m in peer.tandem_messages("bot_text"))
    finally:
        await peer.close()
    assert await wait_for(lambda: srv.sessions.active == 0, 10)
    await srv.stop()
    # The recorded event log shows the turn: user spoke, then the bot.
    (log_path,) = tmp_path.glob("*.jsonl")
    kinds = [e["kind"] for e in read_log(log_path)]
    assert "user_started" in kinds and "user_stopped" in kinds and "bot_started" in kinds
    assert kinds.index("user_started") < kinds.index("user_stopped") < kinds.index("bot_started")
    assert srv.sessions.ended_sessions[-1].end_reason in (
        "connection closed",
        "client disconnected",
    )


async def test_vanished_client_cancels_its_jobs_and_frees_the_session(tmp_path):
    factory = FakeSessionFactory(
        background_reply=FakeReply(hang=True), delegate_on_connect="research the weather"
    )
    srv = await start(factory, tmp_path, liveness_timeout_s=1.0)
    peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=b"", video=False)
    try:
        await peer.connect()
        assert await wait_for(lambda: peer.tandem_messages("job_state"), 10)
        assert await wait_for(lambda: len(peer.stats.messages) and srv.sessions.active == 1, 2)
        # The client vanishes: no goodbye, no more keep-alives (a killed tab).
        await asyncio.sleep(1.5)
        peer.stop_keepalive()
        assert await wait_for(lambda: srv.sessions.active == 0, 15), "session not freed"
        session = srv.sessions.ended_sessions[-1]
        assert session.end_reason == "client unresponsive"
        assert session.worker is None and session.runner is None
        assert factory.finished == [session.info.session_id]
        events = read_log(session.info.record_path)
        job_id = factory.job_ids[0]
        states = [e["state"] for e in events if e["kind"] == "job_state" and e["job_id"] == job_id]
        assert states[-1] == "cancelled", states
        # The server keeps serving: a new client is admitted.
        healthy = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=b"", video=False)
        await healthy.connect()
        await healthy.close()
    finally:
        await peer.close()
        await srv.stop()
