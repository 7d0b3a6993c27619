"""The speech guard's rules (no loop) and its time limit on any pipecat speech service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessor

from pipecat_tandem.policy.speech_faults import SpeechApologies, SpeechFaultNotices
from pipecat_tandem.processors.speech_guard import limit_speech_time
from tests.support.fake_services import FakeSTTService, FakeTTSService
from tests.support.virtual_time import run_virtual


def test_one_apology_for_a_burst_and_none_for_a_dead_service():
    n = SpeechFaultNotices(quiet_s=30.0, expire_s=8.0)
    n.failed("tts", 1.0)
    n.failed("tts", 1.5)  # the same reply's next sentence
    assert n.due(1.6, busy=False) == SpeechApologies().tts
    assert n.due(1.7, busy=False) is None
    # The apology itself fails (a dead TTS): it is not apologized for again.
    n.failed("tts", 2.0)
    assert n.pending is None and n.due(2.1, busy=False) is None
    n.failed("stt", 40.0)  # after the quiet time, a new fault is told again
    assert n.due(40.1, busy=False) == SpeechApologies().stt
    assert (n.said, n.unsaid, n.faults) == (2, 2, {"stt": 1, "tts": 3, "llm": 0, "llm_hung": 0})


def test_an_apology_waits_while_busy_and_expires():
    n = SpeechFaultNotices(expire_s=8.0)
    n.failed("stt", 0.0)
    assert n.due(5.0, busy=True) is None and n.pending == "stt"
    assert n.due(7.9, busy=False) == SpeechApologies().stt
    n = SpeechFaultNotices(quiet_s=0.0, expire_s=8.0)
    n.failed("tts", 0.0)
    assert n.due(8.1, busy=False) is None and n.pending is None and n.unsaid == 1


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_notices_refuse_bad_times(bad):
    with pytest.raises(ValueError):
        SpeechFaultNotices(quiet_s=bad)


class SlowTTS(FakeTTSService):
    """Yields a chunk every ``step_s`` seconds, ``n`` chunks; or hangs before the first."""

    def __init__(self, *, step_s: float, n: int = 5, hang: bool = False):
        super().__init__()
        self._step = step_s
        self._n = n
        self._hang = hang
        self.closed = False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        try:
            if self._hang:
                await asyncio.sleep(3600)
            for _ in range(self._n):
                await asyncio.sleep(self._step)
                yield TTSAudioRawFrame(b"\x00\x00" * 160, 16000, 1, context_id=context_id)
        finally:
            self.closed = True


async def _collect(gen: AsyncGenerator[Frame | None, None]) -> tuple[list[Frame | None], float]:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    frames = [f async for f in gen]
    return frames, loop.time() - t0


def test_the_limit_is_per_step_a_long_stream_is_not_cut():
    tts = SlowTTS(step_s=3.0, n=5)  # 15 s in all, 3 s per step
    assert limit_speech_time(tts, 5.0)
    frames, took = run_virtual(_collect(tts.run_tts("hello", "ctx")))
    assert len(frames) == 5 and all(isinstance(f, TTSAudioRawFrame) for f in frames)
    assert took == pytest.approx(15.0)


def test_a_hung_request_ends_in_one_error_after_the_limit():
    tts = SlowTTS(step_s=0.1, hang=True)
    assert limit_speech_time(tts, 5.0)
    frames, took = run_virtual(_collect(tts.run_tts("hello", "ctx")))
    [error] = frames
    assert isinstance(error, ErrorFrame) and "speech synthesis took over 5 s" in error.error
    assert took == pytest.approx(5.0) and tts.closed  # the hung request was closed


def test_the_limit_applies_once_and_only_to_speech_services():
    stt = FakeSTTService()
    assert limit_speech_time(stt, 5.0) and not limit_speech_time(stt, 1.0)
    assert not limit_speech_time(FrameProcessor(), 5.0)
    with pytest.raises(ValueError):
        limit_speech_time(FakeSTTService(), 0.0)
