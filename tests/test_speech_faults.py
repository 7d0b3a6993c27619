"""Fault injection on the speech services (issue 13): STT or TTS failing mid-call.

The real tandem pipeline (``build_tandem_pipeline``: delegation, pipecat's
aggregators, awareness, interaction model, interleaver) runs on virtual time with
real pipecat STT and TTS services (``tests/support/fake_services``) whose model
raises, reports an error or hangs for one turn. A speaker stand-in after the TTS
plays its audio and emits the bot-speaking frames an output transport would.

What must hold for every fault: the call goes on (later turns are transcribed and
answered), the user hears one short sentence for the failing turn and nothing
garbled, a background result due while the fault lasts is heard afterwards, and
the error is logged once. A hang is cut by the pipeline's time limit on any
pipecat speech service (``speech_timeout_s``), not only on the product's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.bench.harness import worker_with_start_event
from pipecat_tandem.clock import LoopClock
from pipecat_tandem.models.local_stt import LocalWhisperSTTService
from pipecat_tandem.models.local_tts import HIBARI_SAMPLE_RATE, HibariTTSService
from pipecat_tandem.models.weights import whisper_model_dir
from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.pipelines.tandem import build_tandem_pipeline
from pipecat_tandem.policy.delivery import DeliveryScheduler
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.fake_services import FakeSTTService, FakeTTSService
from tests.support.scenario import background_responder, weaving_responder
from tests.support.virtual_time import run_virtual
from tests.test_scenarios import answer, delegate_arith

#: How a faulty pipecat service misbehaves on one request. pipecat's base classes put
#: no time limit on a model: a hang is cut by the pipeline's (``speech_timeout_s``).
FAULTS = ("raise", "error_frame", "hang")
SORRY_STT = "Sorry, I didn't catch that."
SORRY_TTS = "Sorry, my voice cut out there."
SORRY_LLM = "Sorry, could you say that again?"


class FaultySTT(FakeSTTService):
    """Transcribes segment ``i`` as ``texts[i]``; segments in ``faults`` fail instead."""

    def __init__(self, texts: list[str], faults: dict[int, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._texts = texts
        self._faults = faults
        self.calls = 0

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        i, self.calls = self.calls, self.calls + 1
        fault = self._faults.get(i)
        if fault == "raise":
            raise RuntimeError("stt model exploded")
        if fault == "error_frame":
            yield ErrorFrame("stt model error")
            return
        if fault == "hang":
            await asyncio.sleep(3600)
        self._transcript = self._texts[i] if i < len(self._texts) else ""
        async for f in super().run_stt(audio):
            yield f


class FaultyTTS(FakeTTSService):
    """Speaks as ``FakeTTSService``; the requests numbered in ``faults`` fail instead."""

    def __init__(self, faults: dict[int, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._faults = faults
        self.calls = 0
        self.voiced: list[str] = []

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        i, self.calls = self.calls, self.calls + 1
        fault = self._faults.get(i)
        if fault == "raise":
            raise RuntimeError("tts model exploded")
        if fault == "error_frame":
            yield ErrorFrame("tts model error")
            return
        if fault == "hang":
            await asyncio.sleep(3600)
        if fault == "stalled_socket":
            # A streaming service sends the text and returns; its audio never comes.
            yield None
            return
        self.voiced.append(text)
        async for f in super().run_tts(text, context_id):
            yield f


class Speaker(FrameProcessor):
    """Plays TTS audio in real (virtual) time with the bot-speaking frames both ways."""

    def __init__(self) -> None:
        super().__init__(name="speaker")
        self._seconds = 0.0
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._seconds = 0.0
            if self._speaking:
                self._speaking = False
                await self.broadcast_frame(BotStoppedSpeakingFrame)
        elif isinstance(frame, TTSAudioRawFrame):
            if not self._speaking:
                self._speaking = True
                await self.broadcast_frame(BotStartedSpeakingFrame)
            self._seconds += len(frame.audio) / 2 / frame.sample_rate
        elif isinstance(frame, TTSStoppedFrame) and self._speaking:
            await asyncio.sleep(self._seconds)
            self._seconds = 0.0
            self._speaking = False
            await self.broadcast_frame(BotStoppedSpeakingFrame)
        await self.push_frame(frame, direction)


def _turn(t: float, seconds: float = 1.0) -> list[tuple[float, Frame]]:
    """The user speaks for ``seconds`` from ``t``: VAD frames, audio, turn proposals."""
    chunk = InputAudioRawFrame(audio=b"\x10\x00" * 320, sample_rate=16000, num_channels=1)
    frames: list[tuple[float, Frame]] = [
        (t, ProposedUserStartedSpeakingFrame()),
        (t, VADUserStartedSpeakingFrame()),
    ]
    frames += [
        (t + i * 0.02, InputAudioRawFrame(chunk.audio, 16000, 1))
        for i in range(int(seconds / 0.02))
    ]
    frames += [
        (t + seconds, VADUserStoppedSpeakingFrame()),
        (t + seconds + 0.3, ProposedUserStoppedSpeakingFrame()),
    ]
    return frames


@dataclass
class Call:
    events: list[dict[str, Any]]
    errors: list[str]
    warnings: list[str]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]


async def _call(
    starts: list[float] | list[float | tuple[float, float]],
    *,
    stt: FrameProcessor,
    tts: FrameProcessor,
    until: float = 40.0,
    speech_timeout_s: float | None = 5.0,
    interaction: Any = None,
    **options: Any,
) -> Call:
    clock = LoopClock()
    clock.now()
    tandem = build_tandem_pipeline(
        interaction_llm=FakeLLMService(
            interaction or weaving_responder(delegate_arith), ttft_s=0.3
        ),
        background=lambda: FakeLLMService(background_responder(answer), ttft_s=2.0),
        stt=stt,
        tts=Pipeline([tts, Speaker()]),
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=ExternalUserTurnStrategies(), user_turn_stop_timeout=2.0
        ),
        clock=clock,
        speech_timeout_s=speech_timeout_s,
        **options,
    )
    worker, started = worker_with_start_event(tandem.pipeline)
    # A start is a time (a one-second turn) or a (time, seconds of speech) pair.
    turns = [_turn(*t) if isinstance(t, tuple) else _turn(t) for t in starts]
    script = sorted((f for turn in turns for f in turn), key=lambda x: x[0])

    async def drive() -> None:
        await started.wait()
        base = clock.now()
        for t, frame in script:
            delay = base + t - clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            await worker.queue_frame(frame)
        await asyncio.sleep(max(0.0, base + until - clock.now()))
        await worker.queue_frame(EndFrame())

    errors: list[str] = []
    warnings: list[str] = []
    sinks = [
        logger.add(lambda m: errors.append(str(m)), level="ERROR"),
        logger.add(
            lambda m: warnings.append(str(m)), filter=lambda r: r["level"].name == "WARNING"
        ),
    ]
    try:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        # The call must also end: a stuck service would hold the EndFrame.
        await asyncio.wait_for(asyncio.gather(runner.run(), drive()), until + 30)
    finally:
        for sink in sinks:
            logger.remove(sink)
    return Call(tandem.event_log.events, errors, warnings)


def _fault_errors(c: Call, needle: str) -> list[str]:
    return [e for e in c.errors if needle in e]


TEXTS = ["what is 1234 times 5678", "how are you", "hello again"]
STARTS = [1.0, 10.0, 20.0]


def test_no_fault_baseline():
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", "Sure.", "Sure."]
    assert not _fault_errors(c, "exploded") and not _fault_errors(c, "model error")


@pytest.mark.parametrize("fault", FAULTS)
def test_stt_fault_on_one_turn_later_turns_work(fault):
    stt, tts = FaultySTT(TEXTS, {1: fault}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    assert stt.calls == 3
    # The failing turn gets one short apology (nothing garbled) once the user's
    # turn is over; the result and the next turn are heard.
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", SORRY_STT, "Sure."]
    m = compute_metrics(c.events)
    assert m.lost == 0 and m.repeated == 0 and m.delivered_outputs == 1
    needle = "speech recognition took over 5 s" if fault == "hang" else "stt model"
    assert len(_fault_errors(c, needle)) == 1  # logged once
    assert [e["service"] for e in c.kinds("speech_fault")] == ["stt"]
    [said] = c.kinds("speech_apology")
    assert said["t"] - c.kinds("speech_fault")[0]["t"] < 3.0


@pytest.mark.parametrize("fault", FAULTS)
def test_tts_fault_on_the_delivery_the_result_is_heard_later(fault):
    # TTS request 1 is the woven result; the user speaks again at 10 s.
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({1: fault})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    # The user's turn at 10 s comes first; the apology waits for the failed delivery
    # to be settled (its speech would be taken for the result's) and the result is
    # heard once, at the gap after it.
    assert tts.voiced == ["I'm on it.", "Sure.", SORRY_TTS, "The answer is 7006652.", "Sure."]
    m = compute_metrics(c.events)
    assert m.lost == 0 and m.repeated == 0
    needle = "speech synthesis took over 5 s" if fault == "hang" else "tts model"
    assert len(_fault_errors(c, needle)) == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_a_result_the_tts_failed_to_speak_is_delivered_again_while_the_user_is_quiet(fault):
    # Regression: the user says nothing for 24 s after the failed delivery. The
    # interleaver used to confirm the unspoken delivery after confirm_timeout_s (10 s)
    # and account it "delivered": the user never heard the result.
    stt, tts = FaultySTT([TEXTS[0], "hello again"], {}), FaultyTTS({1: fault})
    c = run_virtual(_call([1.0, 25.0], stt=stt, tts=tts))
    heard = [t for t in tts.voiced if "7006652" in t]
    assert heard == ["The answer is 7006652."], tts.voiced
    [requeued] = [e for e in c.kinds("delivery_interrupted") if e.get("reason")]
    assert requeued["reason"] == "speech_failed" and not requeued["heard"]
    [again] = [e for e in c.kinds("delivered") if e["delivery"] == "redelivered"]
    assert again["t"] < 25.0  # at the next gap, not when the user happens to speak
    m = compute_metrics(c.events)
    assert m.lost == 0 and m.repeated == 0 and m.delivered_outputs == 1
    assert tts.voiced[-1] == "Sure."


#
# The product's own speech services: a hung model times out, the call goes on
#


class HangingWhisper(LocalWhisperSTTService):
    """The product's Whisper service; its transcription of segment ``hang_at`` never ends.

    The hang is in the coroutine that awaits the model's thread, where the service's
    time limit applies (a real thread would freeze the virtual clock).
    """

    def __init__(self, texts: list[str], hang_at: int, **kwargs: Any):
        super().__init__(early=False, transcribe_timeout_s=5.0, **kwargs)
        self._texts = texts
        self._hang_at = hang_at
        self.calls = 0

    async def _transcribe(self, spec: Any, audio: bytes) -> str:
        i, self.calls = self.calls, self.calls + 1
        if i == self._hang_at:
            await asyncio.sleep(3600)
        return self._texts[i] if i < len(self._texts) else ""


class _StubVoice:
    """Stands in for hibari's voice: one sentence per text, a tone for it."""

    def split_sentences(self, text: str) -> list[str]:
        return [text]

    def synthesize(self, text: str, seed: int | None) -> list[np.ndarray]:
        n = int(0.15 * len(text.split()) * HIBARI_SAMPLE_RATE)
        return [0.3 * np.sin(np.arange(n, dtype=np.float32) * 0.1)]


class HangingHibari(HibariTTSService):
    """The product's hibari service; its synthesis number ``hang_at`` never ends."""

    def __init__(self, hang_at: int) -> None:
        super().__init__(voice=_StubVoice(), synthesis_timeout_s=5.0)  # type: ignore[arg-type]
        self._hang_at = hang_at
        self.calls = 0
        self.voiced: list[str] = []

    async def _synthesize_off_loop(self, sentence: str) -> list[np.ndarray]:
        i, self.calls = self.calls, self.calls + 1
        if i == self._hang_at:
            await asyncio.sleep(3600)
        self.voiced.append(sentence)
        return await super()._synthesize_off_loop(sentence)


def _needs_whisper() -> None:
    pytest.importorskip("faster_whisper")
    from pipecat_tandem.errors import ModelUnavailableError

    try:
        whisper_model_dir()
    except ModelUnavailableError as e:
        pytest.skip(str(e))


def test_a_hung_whisper_times_out_and_later_turns_are_heard():
    _needs_whisper()
    stt, tts = HangingWhisper(TEXTS, 1), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    assert stt.calls == 3
    # The hung turn gets an apology; the next one is heard and answered.
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", SORRY_STT, "Sure."]
    assert len(_fault_errors(c, "speech recognition took over 5 s")) == 1
    assert compute_metrics(c.events).lost == 0


def test_a_hung_hibari_times_out_and_the_result_is_heard_afterwards():
    pytest.importorskip("hibari")
    tts = HangingHibari(1)  # synthesis 1 is the woven result
    stt = FaultySTT([TEXTS[0], "hello again"], {})
    c = run_virtual(_call([1.0, 30.0], stt=stt, tts=tts))
    assert [t for t in tts.voiced if "7,006,652" in t] == ["The answer is 7,006,652."]
    assert tts.voiced[-1] == "Sure."
    assert len(_fault_errors(c, "speech synthesis took over 5 s")) == 1
    m = compute_metrics(c.events)
    assert m.lost == 0 and m.repeated == 0


#
# The scheduler's rule, without a loop
#


def _out_in_flight(**kw: Any) -> DeliveryScheduler:
    s = DeliveryScheduler(min_gap_s=0.5, confirm_timeout_s=10.0, **kw)
    s.add(job_id="job-1", text="42", now=0.0, task="the answer")
    assert s.poll(1.0) is not None and s.in_flight is not None
    return s


def test_a_woven_delivery_the_model_answered_without_a_word_is_confirmed():
    # The model may choose to say nothing: that is not a speech failure.
    s = _out_in_flight()
    assert s.poll(11.0) is None
    assert s.status["job-1#1"] == "delivered"


def test_a_delivery_whose_words_were_never_spoken_waits_again():
    s = _out_in_flight()
    s.speech_sent()
    assert s.poll(10.9) is None and s.in_flight is not None
    again = s.poll(11.0)
    assert again is not None and again.kind == "redelivered"
    [unspoken] = s.drain_unspoken()
    assert unspoken.job_ids == ["job-1"]
    events = s.drain_events()
    assert [e["reason"] for e in events if e["kind"] == "delivery_interrupted"] == ["speech_failed"]


def test_a_delivery_spoken_after_an_error_is_confirmed_once():
    s = _out_in_flight()
    s.speech_sent()
    s.bot_started(2.0)
    s.bot_stopped(3.0)
    assert s.status["job-1#1"] == "delivered"
    assert s.poll(20.0) is None and not s.drain_unspoken()


def test_a_tts_that_never_speaks_cannot_loop_the_result_goes_into_context():
    s = _out_in_flight(max_redeliveries=2)
    t = 1.0
    for _ in range(3):
        s.speech_sent()
        t += 10.0
        assert s.poll(t) is not None  # redelivered (the third time: as a silent note)
    assert s.status["job-1#1"] == "into_context"
    assert s.poll(t + 30.0) is None and s.pending == []


def test_a_verbatim_delivery_counts_as_sent_to_speech():
    s = _out_in_flight(verbatim=True)
    again = s.poll(11.0)
    assert again is not None and again.kind == "redelivered" and again.mode == "verbatim"


def test_a_dead_tts_is_apologized_for_once_and_the_call_still_ends():
    # Every request after the first fails, the apology included: one apology is
    # tried, none for its own failure, and the pipeline still takes its turns and ends.
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({i: "raise" for i in range(1, 50)})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    assert tts.voiced == ["I'm on it."]
    assert len(c.kinds("speech_apology")) == 1
    assert stt.calls == 3  # every turn was still heard


def test_a_streaming_tts_whose_audio_never_comes_is_apologized_for():
    # A socket service returns from run_tts at once (outside the step limit); pipecat
    # ends the silent audio context after 3 s with an error, which the guard tells.
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({0: "stalled_socket"})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts))
    # The unspoken "I'm on it." is reported while the result is out; the apology
    # waits for the result to be heard (its speech would be taken for the result's).
    assert tts.voiced == ["The answer is 7006652.", SORRY_TTS, "Sure.", "Sure."]
    assert len(c.kinds("speech_apology")) == 1
    assert compute_metrics(c.events).lost == 0


def test_a_reply_the_interaction_model_failed_is_apologized_for():
    # The model raises on the second turn (a cloud 5xx, a rate limit): the user gets
    # one sentence instead of silence, and the third turn is answered.
    weave = weaving_responder(delegate_arith)
    failures = []

    def flaky(messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        if last.get("role") == "user" and "how are you" in str(last.get("content")):
            failures.append(1)
            return FakeReply(raise_error=RuntimeError("llm exploded"))
        return weave(messages)

    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts, interaction=flaky))
    assert failures == [1]
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", SORRY_LLM, "Sure."]
    assert [e["service"] for e in c.kinds("speech_fault")] == ["llm"]
    assert compute_metrics(c.events).lost == 0
