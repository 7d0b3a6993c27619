"""The production session factory (presets + build_tandem_pipeline) on fake services."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from pipecat.audio.vad.silero import SileroVADAnalyzer

from pipecat_tandem.pipelines import presets
from pipecat_tandem.transports.tandem_session import TandemSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.fake_services import FakeSTTService, FakeTTSService
from tests.support.media import TestPeer, speech_pcm

pytestmark = pytest.mark.e2e


class FakeStack:
    """Stands in for the local model stack: hands out new interaction services."""

    def __init__(self) -> None:
        self.made = 0
        self.stts = 0
        self.ready = True

    def new_stt(self) -> Any:
        self.stts += 1
        return FakeSTTService()

    def new_tts(self) -> Any:
        return FakeTTSService()

    def interaction_llm(self, *, system_instruction: str | None = None) -> Any:
        self.made += 1
        return FakeLLMService(lambda m: FakeReply(text="Hi there."))


@pytest.fixture
def fake_presets(monkeypatch):
    stack = FakeStack()
    calls: list[tuple[Any, Any]] = []
    warmed: list[bool] = []

    def build_services(interaction=None, background=None, **kwargs):
        calls.append((interaction, background))

        async def warm() -> None:
            warmed.append(True)

        return presets.TandemServices(
            stt=FakeSTTService(),
            tts=FakeTTSService(),
            interaction_llm=stack.interaction_llm(),
            background_llm_factory=lambda: FakeLLMService(),
            vad_analyzer=SileroVADAnalyzer(),
            turn_analyzer=None,
            warm=warm,
            local=stack,  # type: ignore[arg-type]
        )

    monkeypatch.setattr(presets, "build_services", build_services)
    return stack, calls, warmed


async def test_one_call_at_a_time_and_fresh_services_for_the_next(fake_presets, tmp_path):
    stack, calls, warmed = fake_presets
    factory = TandemSessionFactory(interaction="local", background="local")
    steps: list[str] = []
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path, progress=steps.append)
    await srv.start()
    try:
        assert await srv.wait_warm()
        assert calls == [("local", "local")] and warmed == [True]
        assert any("assembling models" in s for s in steps) and any("warm" in s for s in steps)
        for n in range(2):
            peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=speech_pcm("Hello bot."))
            await peer.connect()
            busy = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=b"", video=False)
            with pytest.raises(RuntimeError, match="503.*all the calls they can"):
                await busy.connect(5)
            await busy.close()
            for _ in range(150):
                if peer.stats.loud_frames > 10:
                    break
                await asyncio.sleep(0.1)
            assert peer.stats.loud_frames > 10, f"session {n}: no answer"
            await peer.close()
            for _ in range(100):
                if srv.sessions.active == 0:
                    break
                await asyncio.sleep(0.1)
            assert srv.sessions.active == 0
        # Every call got its own interaction service and STT (the warmed ones
        # are a template no pipeline holds).
        assert stack.made == 3
        assert stack.stts == 2
        assert len(list(tmp_path.glob("*.jsonl"))) == 2
    finally:
        await srv.stop()


async def test_the_models_serve_as_many_calls_as_the_stack_has_slots(fake_presets, tmp_path):
    # Issue 14, part 1: the local stack serves one call per slot (one per core
    # by default); calls beyond that get a clear 503 with Retry-After, and a
    # freed slot takes the next caller.
    stack, _, _ = fake_presets
    stack.call_slots = 2
    factory = TandemSessionFactory(interaction="local", background="local")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path)
    await srv.start()
    base = f"http://127.0.0.1:{srv.port}"
    peers: list[TestPeer] = []
    try:
        assert await srv.wait_warm()
        assert factory.capacity == 2
        for _ in range(2):
            peer = TestPeer(base, pcm=speech_pcm("Hello bot."))
            await peer.connect()
            peers.append(peer)
        for peer in peers:
            assert await _wait(lambda p=peer: p.stats.loud_frames > 10, 15), "a call unanswered"
        assert factory.calls == 2 and factory.busy
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/healthz") as r:
                health = await r.json()
            assert health["model_calls"] == 2 and not health["can_take_call"]
            assert health["reason"] == "the models are serving all the calls they can"
            third = TestPeer(base, pcm=b"", video=False)
            await third.pc.setLocalDescription(await third.pc.createOffer())
            body = {"sdp": third.pc.localDescription.sdp, "type": "offer"}
            async with http.post(f"{base}/api/offer", json=body) as r:
                assert r.status == 503
                assert r.headers.get("Retry-After", "").isdigit()
                assert "all the calls they can" in (await r.json())["error"]
            await third.close()
        await peers.pop(0).close()
        assert await _wait(lambda: factory.calls == 1 and not factory.busy, 10)
        peer = TestPeer(base, pcm=speech_pcm("Hello again."))
        await peer.connect()
        peers.append(peer)
        assert await _wait(lambda: peer.stats.loud_frames > 10, 15), "the freed slot took no one"
    finally:
        for peer in peers:
            await peer.close()
        await srv.stop()


async def _wait(predicate: Any, seconds: float) -> bool:
    for _ in range(int(seconds * 10)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def test_an_ended_call_is_freed_with_its_pipeline(fake_presets, tmp_path):
    # A server takes call after call: each ended call's pipeline (and the
    # native resources its processors hold) must be freed, not kept by the
    # factory, the stack or the session list. The collector is off, so only
    # the server's own collection after a call can free the cycles.
    factory = TandemSessionFactory(interaction="local", background="local")
    workers: list[weakref.ref[Any]] = []
    create = factory.create_worker

    async def recording(transport: Any, session: Any) -> Any:
        worker = await create(transport, session)
        workers.append(weakref.ref(worker))
        return worker

    factory.create_worker = recording  # type: ignore[method-assign]
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path)
    await srv.start()
    gc.disable()
    try:
        assert await srv.wait_warm()
        for _ in range(2):
            peer = TestPeer(f"http://127.0.0.1:{srv.port}", pcm=speech_pcm("Hello bot."))
            await peer.connect()
            assert await _wait(lambda p=peer: p.stats.loud_frames > 10, 15)
            await peer.close()
            assert await _wait(lambda: srv.sessions.active == 0, 10)
        assert len(workers) == 2
        assert await _wait(lambda: all(w() is None for w in workers), 5), "a call was kept"
        assert srv.sessions.ended_sessions[-1].connection is None
    finally:
        gc.enable()
        await srv.stop()


async def test_an_offer_that_never_connects_frees_the_models(fake_presets, tmp_path):
    # Probe F2: a valid offer whose client never applies the answer held the
    # one-call-at-a-time models for pipecat's 60 s; everyone else got 503.
    factory = TandemSessionFactory(interaction="local", background="local")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path, connect_timeout_s=1.5)
    await srv.start()
    ghost = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        assert await srv.wait_warm()
        ghost.createDataChannel("tandem")
        ghost.addTransceiver("audio")
        await ghost.setLocalDescription(await ghost.createOffer())
        base = f"http://127.0.0.1:{srv.port}"
        async with aiohttp.ClientSession() as http:
            body = {"sdp": ghost.localDescription.sdp, "type": "offer"}
            async with http.post(f"{base}/api/offer", json=body) as r:
                assert r.status == 200  # ...and the answer is never applied
            async with http.post(f"{base}/api/offer", json=body) as r:
                assert r.status == 503
                assert r.headers.get("Retry-After", "").isdigit()
        assert await _wait(lambda: srv.sessions.active == 0, 6), "the ghost held its slot"
        assert srv.sessions.ended_sessions[-1].end_reason == "client never connected"
        peer = TestPeer(base, pcm=speech_pcm("Hello bot."))
        await peer.connect()
        assert await _wait(lambda: peer.stats.loud_frames > 10, 15), "next caller not answered"
        await peer.close()
    finally:
        await ghost.close()
        await srv.stop()


@pytest.mark.parametrize("perception", [True, False])
async def test_calls_run_micro_turn_ingest_and_fusion_unless_turned_off(fake_presets, perception):
    # Issue 16: perception is in the pipeline a user runs (tandem run), right
    # after the transport input; --no-perception takes it out.
    from pipecat_tandem.transports.session import SessionInfo

    factory = TandemSessionFactory(perception=perception)
    await factory.warm(lambda step: None)
    info = SessionInfo.new(transport_kind="webrtc", record_dir=None, request_data=None)
    worker = await factory.create_worker(None, info)  # type: ignore[arg-type]
    check_perception_stages(worker, perception)


def check_perception_stages(worker: Any, perception: bool) -> None:
    """Ingest then fusion before the STT in ``worker``'s pipeline, or neither."""
    from pipecat_tandem.processors.encoder_free_fusion_processor import (
        EncoderFreeFusionProcessor,
    )
    from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor

    def flat(processor: Any) -> list[Any]:
        inner = getattr(processor, "processors", None)
        return [q for p in inner for q in flat(p)] if inner else [processor]

    kinds = [type(p) for p in flat(worker.pipeline)]
    assert FakeSTTService in kinds
    if perception:
        ingest = kinds.index(MicroTurnIngestProcessor)
        assert kinds[ingest + 1] is EncoderFreeFusionProcessor
        assert kinds.index(FakeSTTService) > ingest + 1
    else:
        assert MicroTurnIngestProcessor not in kinds and EncoderFreeFusionProcessor not in kinds


async def test_a_caller_who_is_here_replaces_an_offer_that_never_connected(fake_presets, tmp_path):
    # Re-posting offers that never connect must not lock the service: once the
    # grace is over, a new caller takes the models from a session whose client
    # never connected; a connected call is never replaced.
    from pipecat_tandem.transports.webrtc_server import CONNECT_GRACE_S

    factory = TandemSessionFactory(interaction="local", background="local")
    srv = TandemServer(factory=factory, port=0, record_dir=tmp_path)  # 10 s connect timeout
    await srv.start()
    ghost = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    base = f"http://127.0.0.1:{srv.port}"
    try:
        assert await srv.wait_warm()
        ghost.createDataChannel("tandem")
        ghost.addTransceiver("audio")
        await ghost.setLocalDescription(await ghost.createOffer())
        async with aiohttp.ClientSession() as http:
            body = {"sdp": ghost.localDescription.sdp, "type": "offer"}
            async with http.post(f"{base}/api/offer", json=body) as r:
                assert r.status == 200
        await asyncio.sleep(CONNECT_GRACE_S + 0.3)
        peer = TestPeer(base, pcm=speech_pcm("Hello bot."))
        await peer.connect()
        assert await _wait(lambda: peer.stats.loud_frames > 10, 15), "caller not answered"
        assert srv.sessions.ended_sessions[-1].end_reason == "client never connected"
        await asyncio.sleep(CONNECT_GRACE_S + 0.3)
        other = TestPeer(base, pcm=b"", video=False)
        with pytest.raises(RuntimeError, match="503"):
            await other.connect(5)
        await other.close()
        assert peer.pc.connectionState == "connected"  # the live call was not replaced
        await peer.close()
    finally:
        await ghost.close()
        await srv.stop()
