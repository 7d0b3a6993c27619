"""The production session factory (presets + build_tandem_pipeline) on fake services."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
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
            with pytest.raises(RuntimeError, match="503.*another call"):
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
        assert stack.made == 2  # the second call got a new interaction service
        assert stack.stts == 1  # ... and a new STT with the stack's settings
        assert len(list(tmp_path.glob("*.jsonl"))) == 2
    finally:
        await srv.stop()
