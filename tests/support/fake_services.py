"""Fake STT and TTS services for fast, deterministic pipeline tests.

They are real pipecat services (``SegmentedSTTService``/``TTSService``
subclasses) driven by the real VAD in the user aggregator; only the model is
replaced: the STT answers every speech segment with scripted text, the TTS
answers every sentence with a tone whose length follows the word count.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame, TranscriptionFrame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601


class FakeSTTService(SegmentedSTTService):
    """Transcribes each VAD speech segment as scripted text.

    Args:
        transcript: A fixed text, or a function of the segment's duration in seconds.
    """

    def __init__(self, *, transcript: str | Callable[[float], str] = "hello there", **kwargs):
        super().__init__(**kwargs)
        self._transcript = transcript
        self.segments: list[float] = []

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        seconds = len(audio) / 2 / max(1, self.sample_rate)
        self.segments.append(seconds)
        text = self._transcript(seconds) if callable(self._transcript) else self._transcript
        if text:
            yield TranscriptionFrame(text=text, user_id="user", timestamp=time_now_iso8601())


def tone(seconds: float, sample_rate: int, freq: float = 440.0, amplitude: float = 0.3) -> bytes:
    """A sine tone as 16-bit mono PCM."""
    n = max(1, int(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    samples = amplitude * np.sin(2 * math.pi * freq * t)
    return (samples * 32767).astype(np.int16).tobytes()


class FakeTTSService(TTSService):
    """Speaks each sentence as a tone, ``seconds_per_word`` long per word.

    Args:
        seconds_per_word: Tone length per word of text.
        freq: Tone frequency in Hz.
    """

    def __init__(self, *, seconds_per_word: float = 0.15, freq: float = 440.0, **kwargs):
        kwargs.setdefault("sample_rate", 16000)
        super().__init__(push_start_frame=True, push_stop_frames=True, **kwargs)
        self._per_word = seconds_per_word
        self._freq = freq
        self.spoken: list[str] = []

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        self.spoken.append(text)
        words = max(1, len(text.split()))
        pcm = tone(words * self._per_word, self.sample_rate, self._freq)
        chunk = self.sample_rate // 50 * 2  # 20 ms
        for i in range(0, len(pcm), chunk):
            yield TTSAudioRawFrame(
                audio=pcm[i : i + chunk],
                sample_rate=self.sample_rate,
                num_channels=1,
                context_id=context_id,
            )


#
# A session factory on fake services (for the real server in tests and benchmarks)
#


class FakeSessionFactory:
    """Builds the real tandem pipeline per session, on fake STT/LLM/TTS.

    ``build_tandem_pipeline`` with the user aggregator on Silero VAD and
    speech-timeout turns; the interaction model answers every turn with
    ``reply``; background jobs run on a fake model (``background_reply``).

    Args:
        reply: What the interaction model answers to every user turn.
        background_reply: What background jobs answer (``hang=True`` never finishes).
        delegate_on_connect: Start a background job with this task when the client connects.
        warm_delay_s: Simulated warm-up time.
        warm_error: Raise this from ``warm`` (to test a failed warm-up).
        vad: Run Silero VAD (off for load tests that send no speech).
        interaction: A responder for the interaction model instead of ``reply``.
        background: A responder for the background model instead of ``background_reply``.
        stt: Makes each session's STT (default ``FakeSTTService``).
        tts: Makes each session's TTS (default ``FakeTTSService``).
        options: Makes more ``build_tandem_pipeline`` arguments per session
            (a registry, tools, ``speech_timeout_s``...).
        on_event_log: Called with each session's event log once it is made (to
            break its disk, for instance).
        keep_pipelines: Keep every session's pipeline in ``tandems`` for the test
            to inspect (default). Off for benchmarks: an ended call's pipeline
            holds its codecs, VAD and their native threads (~13 MB and ~2
            threads a call), which a server run would have freed.
    """

    def __init__(
        self,
        *,
        reply: str = "Hi! I can hear you fine.",
        background_reply: Any = None,
        delegate_on_connect: str | None = None,
        warm_delay_s: float = 0.0,
        warm_error: Exception | None = None,
        vad: bool = True,
        interaction: Callable[[list[dict[str, Any]]], Any] | None = None,
        background: Callable[[list[dict[str, Any]]], Any] | None = None,
        stt: Callable[[], FrameProcessor] | None = None,
        tts: Callable[[], FrameProcessor] | None = None,
        options: Callable[[], dict[str, Any]] | None = None,
        on_event_log: Callable[[Any], None] | None = None,
        keep_pipelines: bool = True,
    ):
        self.reply = reply
        self.interaction = interaction
        self.background = background
        self.stt = stt
        self.tts = tts
        self.options = options
        self.on_event_log = on_event_log
        self.background_reply = background_reply
        self.delegate_on_connect = delegate_on_connect
        self.warm_delay_s = warm_delay_s
        self.warm_error = warm_error
        self.vad = vad
        self.keep_pipelines = keep_pipelines
        self.warm_gate: asyncio.Event | None = None
        #: Set once warm() has reported its first progress line.
        self.warming = asyncio.Event()
        self.progress: list[str] = []
        self.tandems: list[Any] = []
        self.job_ids: list[str] = []
        self.finished: list[str] = []

    async def warm(self, progress: Callable[[str], None]) -> dict[str, Any]:
        progress("loading fake models")
        self.progress.append("loading fake models")
        self.warming.set()
        if self.warm_gate is not None:
            await self.warm_gate.wait()
        if self.warm_delay_s:
            await asyncio.sleep(self.warm_delay_s)
        if self.warm_error:
            raise self.warm_error
        progress("fake models warm")
        return {"interaction": "fake", "background": "fake"}

    async def create_worker(self, transport: Any, session: Any) -> Any:
        from pipecat.audio.vad.silero import SileroVADAnalyzer
        from pipecat.audio.vad.vad_analyzer import VADParams
        from pipecat.pipeline.worker import PipelineParams, PipelineWorker
        from pipecat.processors.aggregators.llm_response_universal import (
            LLMUserAggregatorParams,
        )
        from pipecat.turns.user_start import VADUserTurnStartStrategy
        from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
        from pipecat.turns.user_turn_strategies import UserTurnStrategies

        from pipecat_tandem.observe.event_log import EventLog
        from pipecat_tandem.pipelines.tandem import build_tandem_pipeline

        from .fake_llm import FakeLLMService, FakeReply

        log = EventLog(session.clock, path=session.record_path)
        if self.on_event_log is not None:
            self.on_event_log(log)
        user_params = LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=0.2)) if self.vad else None,
            user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy()],
                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.3)],
            ),
        )
        reply = self.reply
        background_reply = self.background_reply or FakeReply(text="The answer is 42.")
        interaction = self.interaction or (lambda messages: FakeReply(text=reply))
        background = self.background or (lambda messages: background_reply)

        tandem = build_tandem_pipeline(
            transport=transport,
            interaction_llm=FakeLLMService(interaction),
            background=lambda: FakeLLMService(background),
            stt=self.stt() if self.stt else FakeSTTService(),
            tts=self.tts() if self.tts else FakeTTSService(),
            user_params=user_params,
            clock=session.clock,
            event_log=log,
            **(self.options() if self.options else {}),
        )
        if self.keep_pipelines:
            self.tandems.append(tandem)
        worker = PipelineWorker(
            tandem.pipeline,
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000),
            cancel_on_idle_timeout=False,
        )

        if self.delegate_on_connect:
            task = self.delegate_on_connect

            @transport.event_handler("on_client_connected")
            async def _delegate(transport: Any, client: Any) -> None:
                self.job_ids.append(await tandem.delegation.delegate(task))

        @worker.event_handler("on_pipeline_finished")
        async def _finished(worker: Any, frame: Any) -> None:
            self.finished.append(session.session_id)
            log.close()

        return worker


def failing_factory() -> FakeSessionFactory:
    """A factory whose warm-up fails (``tandem run --factory`` start-up failure tests)."""
    return FakeSessionFactory(warm_error=ValueError("the fake models refuse to load"))


def serving_factory() -> FakeSessionFactory:
    """Fake models for measuring the server (``--factory``): keeps no ended call."""
    return FakeSessionFactory(reply="Sure, here is a short answer for you.", keep_pipelines=False)
