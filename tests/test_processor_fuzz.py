"""Fuzzing frames into every processor the project ships (issue 13).

Each processor in ``pipecat_tandem.processors`` gets a random, bounded sequence of
frames: malformed (wrong types, empty, oversized, NaN/inf), out of order (stops
before starts, ends before starts), duplicated, results and states of jobs that do
not exist. A frame of ours must refuse bad fields at construction
(``TypeError``/``ValueError``); a frame that is built goes through the processor in
a real pipecat pipeline on virtual time. Then a valid *probe* frame must still get
its normal answer: the processor handled the junk (passed it on, or turned it into
an ``ErrorFrame``) and kept working. The pipeline must also end (no hung task).

Deterministic: ``derandomize=True`` and a small ``max_examples``; no deadline (the
machine is shared), but every run is bounded by ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.bench.harness import worker_with_start_event
from pipecat_tandem.clock import LoopClock
from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    CueFrame,
    FusedMicroTurnFrame,
    MicroTurnFrame,
)
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.pipelines.tandem import make_runner
from pipecat_tandem.processors.awareness_processor import AwarenessProcessor
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.encoder_free_fusion_processor import EncoderFreeFusionProcessor
from pipecat_tandem.processors.first_clause_processor import FirstClauseProcessor
from pipecat_tandem.processors.micro_turn_ingest_processor import MicroTurnIngestProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver
from pipecat_tandem.processors.speech_guard import SpeechGuard
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.fake_services import FakeSTTService
from tests.support.virtual_time import run_virtual

FUZZ = settings(
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#
# Strategies: frame builders (a builder may raise: that is a refusal at construction)
#

Builder = Callable[[], Frame]

_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00\x1b[31m", "x" * 100_000, "job-1", "job-999", "😀" * 50]),
)
_anything = st.one_of(
    _texts,
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.binary(max_size=8),
)
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([0, -1, 1e308, -0.0]),
)
_rates = st.sampled_from([16000, 48000, 8000, 44100, 1, 7, 0, -16000])
_channels = st.sampled_from([1, 2, 0, 3])
_audio = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"\x01", b"\x00" * 640, b"\x7f\xff" * 32_000]),
)


def _builder(cls: Any, **fields: Any) -> Builder:
    return lambda: cls(**fields)


@st.composite
def ours(draw: st.DrawFn) -> Builder:
    """A frame of this project, with fields that may be of any type or value."""
    kind = draw(st.sampled_from(["result", "error", "progress", "state", "delivery", "cue"]))
    job_id = draw(st.one_of(st.sampled_from(["job-1", "job-2", "ghost"]), _anything))
    if kind == "result":
        return _builder(
            BackgroundResultFrame,
            job_id=job_id,
            text=draw(st.one_of(_texts, _anything)),
            is_final=draw(st.one_of(st.booleans(), _anything)),
            task=draw(_texts),
            stale=draw(st.booleans()),
            policy=draw(st.sampled_from(["when_idle", "interrupt", "silent", "now", ""])),
            verbatim=draw(st.booleans()),
        )
    if kind == "error":
        return _builder(
            BackgroundErrorFrame,
            job_id=job_id,
            error=draw(st.one_of(_texts, _anything)),
            policy=draw(st.sampled_from(["when_idle", "interrupt", "bogus"])),
        )
    if kind == "progress":
        return _builder(BackgroundProgressFrame, job_id=job_id, text=draw(_anything))
    if kind == "state":
        return _builder(
            BackgroundJobStateFrame,
            job_id=job_id,
            state=draw(
                st.sampled_from(
                    ["queued", "running", "done", "failed", "cancelled", "stale", "exploded", 3]
                )
            ),  # fmt: skip
            detail=draw(st.one_of(_texts, st.sampled_from(["stale: moved on"]))),
        )
    if kind == "delivery":
        return _builder(
            BackgroundDeliveryFrame,
            job_ids=draw(st.one_of(st.lists(_texts, max_size=3), _anything)),
            kind=draw(_texts),
            text=draw(_anything),
        )
    return _builder(
        CueFrame,
        kind=draw(
            st.one_of(
                st.sampled_from(["visual_change", "motion", "repetition", "speech_onset"]), _texts
            )
        ),  # fmt: skip
        time=draw(_numbers),
        value=draw(_numbers),
        detail=draw(st.one_of(st.just({}), st.just({"count": "x"}), _anything)),
    )


@st.composite
def media(draw: st.DrawFn) -> Builder:
    """Audio, camera and micro-turn frames that may be malformed."""
    kind = draw(st.sampled_from(["audio", "image", "micro", "fused"]))
    if kind == "audio":
        return _builder(
            InputAudioRawFrame,
            audio=draw(_audio),
            sample_rate=draw(_rates),
            num_channels=draw(_channels),
        )
    if kind == "image":
        w, h = draw(st.sampled_from([(4, 4), (0, 0), (320, 240), (1, 100_000), (-3, 5)]))
        n = draw(st.sampled_from([0, 48, 4 * 4 * 3, 320 * 240 * 3]))
        return _builder(
            InputImageRawFrame,
            image=b"\x80" * n,
            size=(w, h),
            format=draw(st.sampled_from(["RGB", "RGBA", "JPEG", "", "bogus"])),
        )
    if kind == "micro":
        return _builder(
            MicroTurnFrame,
            index=draw(st.one_of(st.integers(-5, 10**9), _anything)),
            start=draw(_numbers),
            duration=draw(_numbers),
            audio=draw(_audio),
            sample_rate=draw(_rates),
            images=draw(
                st.sampled_from([[], [(0.0, 4, 4, b"\x00" * 48)], [(0.0, 4, 4, b"")], ["junk"]])
            ),
            audio_gap=draw(st.booleans()),
        )
    return _builder(
        FusedMicroTurnFrame,
        index=draw(st.integers(-5, 10)),
        start=draw(_numbers),
        dmel=draw(st.sampled_from([None, np.zeros((0, 80), np.uint8), "junk"])),
        hop_times=draw(st.sampled_from([None, np.zeros(0)])),
    )


@st.composite
def flow(draw: st.DrawFn) -> Builder:
    """Speaking, response and text frames, in any order and repeated."""
    kind = draw(st.sampled_from([
        UserStartedSpeakingFrame, UserStoppedSpeakingFrame, BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame, VADUserStoppedSpeakingFrame, LLMFullResponseStartFrame,
        LLMFullResponseEndFrame, InterruptionFrame, "text", "transcript", "speak", "context",
    ]))  # fmt: skip
    if kind == "text":
        return _builder(LLMTextFrame, text=draw(_texts))
    if kind == "transcript":
        return _builder(
            TranscriptionFrame, text=draw(_texts), user_id=draw(_texts), timestamp=draw(_texts)
        )
    if kind == "speak":
        return _builder(TTSSpeakFrame, text=draw(_texts))
    if kind == "context":
        return lambda: LLMContextFrame(context=LLMContext())
    return _builder(kind)


OURS = (
    BackgroundResultFrame,
    BackgroundErrorFrame,
    BackgroundProgressFrame,
    BackgroundJobStateFrame,
    BackgroundDeliveryFrame,
    CueFrame,
)


def build(builders: list[Builder]) -> list[Frame]:
    """The frames that could be built; ours must refuse bad fields with a clear error."""
    frames: list[Frame] = []
    for b in builders:
        try:
            frames.append(b())
        except (TypeError, ValueError) as e:
            assert str(e), "a refusal must say what is wrong"
        except Exception as e:  # pipecat's own frames may fail in their own ways
            cls = getattr(b, "__closure__", None)
            assert not any(
                isinstance(c.cell_contents, type) and issubclass(c.cell_contents, OURS)
                for c in cls or ()
            ), f"our frame raised {type(e).__name__}: {e}"
    return frames


#
# Harness: [head, processor, tail] on virtual time
#


class _Recorder(FrameProcessor):
    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        await self.push_frame(frame, direction)


@dataclass
class Run:
    down: list[Frame] = field(default_factory=list)
    up: list[Frame] = field(default_factory=list)
    probe_down: list[Frame] = field(default_factory=list)

    @property
    def errors(self) -> list[ErrorFrame]:
        return [f for f in self.up if isinstance(f, ErrorFrame)]


async def _drive(
    processor: FrameProcessor,
    junk: list[Frame],
    probe: list[Frame],
    *,
    settle_s: float = 0.5,
    probe_s: float = 3.0,
    after_probe: Callable[[], Any] | None = None,
) -> Run:
    head, tail = _Recorder("head"), _Recorder("tail")
    worker, started = worker_with_start_event(Pipeline([head, processor, tail]))
    run = Run()

    async def drive() -> None:
        await started.wait()
        for f in junk:
            await worker.queue_frame(f)
        await asyncio.sleep(settle_s)
        mark = len(tail.frames)
        for f in probe:
            await worker.queue_frame(f)
        if after_probe is not None:
            result = after_probe()
            if asyncio.iscoroutine(result):
                await result
        await asyncio.sleep(probe_s)
        run.probe_down = tail.frames[mark:]
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), drive()), 120)
    run.down, run.up = tail.frames, head.frames
    return run


def _junk(builders: list[Builder]) -> list[Frame]:
    return build(builders)


junk_lists = st.lists(st.one_of(ours(), media(), flow()), max_size=12)

#
# One property per processor
#


@FUZZ
@given(junk_lists)
def test_result_interleaver_delivers_a_valid_result_after_junk(builders):
    frames = _junk(builders)
    clock = LoopClock()
    interleaver = ResultInterleaver(min_gap_s=0.5, clock=clock, confirm_timeout_s=2.0)
    # Whatever the junk left open: the user and the bot stop, the response ends.
    probe: list[Frame] = [
        UserStoppedSpeakingFrame(),
        BotStoppedSpeakingFrame(),
        LLMFullResponseEndFrame(),
        BackgroundResultFrame(job_id="probe-job", text="forty-two"),
    ]
    run = run_virtual(_drive(interleaver, frames, probe, probe_s=20.0))
    delivered = [
        f
        for f in run.probe_down
        if isinstance(f, LLMMessagesAppendFrame) and "forty-two" in str(f.messages)
    ]
    assert delivered, "the probe result was never delivered"
    assert interleaver.scheduler.status["probe-job#1"] in ("in_flight", "delivered", "merged")


@FUZZ
@given(junk_lists)
def test_delegation_processor_still_delegates_after_junk(builders):
    frames = _junk(builders)
    clock = LoopClock()
    log = EventLog(clock)
    runner = make_runner(lambda: FakeLLMService(lambda m: FakeReply(text="The answer is 4.")))
    delegation = DelegationProcessor(
        runner=runner, llm=FakeLLMService(), context=LLMContext(), clock=clock, event_log=log
    )
    job_ids: list[str] = []

    async def delegate() -> None:
        job_ids.append(await delegation.delegate("what is 2 plus 2"))

    probe: list[Frame] = [TranscriptionFrame(text="hello there", user_id="u", timestamp="")]
    run = run_virtual(_drive(delegation, frames, probe, after_probe=delegate))
    assert any(
        isinstance(f, TranscriptionFrame) and f.text == "hello there" for f in run.probe_down
    )
    assert job_ids and job_ids[0].startswith("job-")
    results = [f for f in run.probe_down if isinstance(f, BackgroundResultFrame)]
    assert any(f.job_id == job_ids[0] and "4" in f.text for f in results)


@FUZZ
@given(junk_lists)
def test_awareness_processor_and_gate_pass_frames_after_junk(builders):
    frames = _junk(builders)
    awareness = AwarenessProcessor(registry=JobRegistry(), event_log=EventLog(LoopClock()))
    stage = Pipeline([awareness, awareness.gate])
    probe: list[Frame] = [
        UserStoppedSpeakingFrame(),
        TranscriptionFrame(text="what a nice day", user_id="u", timestamp=""),
        TextFrame(text="probe-text"),
    ]
    run = run_virtual(_drive(stage, frames, probe))
    texts = [getattr(f, "text", None) for f in run.probe_down]
    assert "what a nice day" in texts and "probe-text" in texts


@FUZZ
@given(junk_lists)
def test_first_clause_processor_speaks_a_reply_after_junk(builders):
    frames = _junk(builders)
    probe: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame(text="Sure thing, here it is."),
        LLMFullResponseEndFrame(),
    ]
    run = run_virtual(_drive(FirstClauseProcessor(), frames, probe))
    said = "".join(f.text for f in run.probe_down if type(f) is not LLMTextFrame and
                   isinstance(f, TextFrame))  # fmt: skip
    assert "Sure thing" in said and "here it is" in said


def _speech(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * math.pi * 220 * t) * 32767).astype(np.int16).tobytes()


@FUZZ
@given(junk_lists)
def test_micro_turn_ingest_cuts_valid_audio_after_junk(builders):
    frames = _junk(builders)
    ingest = MicroTurnIngestProcessor(clock=LoopClock())
    pcm = _speech(0.6)
    chunk = 640  # 20 ms at 16 kHz
    probe: list[Frame] = [
        InputAudioRawFrame(audio=pcm[i : i + chunk], sample_rate=16000, num_channels=1)
        for i in range(0, len(pcm), chunk)
    ]
    run = run_virtual(_drive(ingest, frames, probe))
    turns = [f for f in run.probe_down if isinstance(f, MicroTurnFrame)]
    assert turns, "no micro-turn from valid audio"
    assert all(len(t.audio) % 2 == 0 and t.sample_rate == 16000 for t in turns)


@FUZZ
@given(junk_lists)
def test_fusion_fuses_a_valid_micro_turn_after_junk(builders):
    frames = _junk(builders)
    fusion = EncoderFreeFusionProcessor(event_log=EventLog(LoopClock()))
    image = (np.arange(240 * 320 * 3) % 251).astype(np.uint8).tobytes()
    probe: list[Frame] = [
        MicroTurnFrame(
            index=777,
            start=1.0,
            duration=0.2,
            audio=_speech(0.2),
            images=[(1.05, 320, 240, image)],
        )
    ]
    run = run_virtual(_drive(fusion, frames, probe))
    fused = [f for f in run.probe_down if isinstance(f, FusedMicroTurnFrame) and f.index == 777]
    assert fused, "the valid micro-turn was not fused"
    assert fused[0].dmel.shape[1] > 0 and len(fused[0].patches) == 1


class _FailsOnCue(FrameProcessor):
    """Reports an error upstream as ``source`` when a ``TextFrame('FAIL')`` passes."""

    def __init__(self, source: FrameProcessor) -> None:
        super().__init__(name="fails-on-cue")
        self._source = source

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "FAIL":
            await self.push_error_frame(ErrorFrame("stt model broke", processor=self._source))
            return
        await self.push_frame(frame, direction)


@FUZZ
@given(junk_lists)
def test_speech_guard_apologizes_for_a_stt_fault_after_junk(builders):
    frames = _junk(builders)
    stt = FakeSTTService()
    guard = SpeechGuard(stt=stt, event_log=EventLog(LoopClock()))
    probe: list[Frame] = [UserStoppedSpeakingFrame(), TextFrame("FAIL")]
    run = run_virtual(_drive(Pipeline([guard, _FailsOnCue(stt)]), frames, probe))
    # A response of its own, so a text client sees it too (not a speech-only TTSSpeakFrame).
    said = [f.text for f in run.probe_down if isinstance(f, LLMTextFrame)]
    assert said == ["Sorry, I didn't catch that."]
    assert not any(isinstance(f, TTSSpeakFrame) for f in run.probe_down)
    assert [e.error for e in run.errors] == ["stt model broke"]  # passed on upstream


#
# Specific orders a random list rarely hits
#


def test_results_for_unknown_and_duplicate_jobs_are_accounted_once():
    clock = LoopClock()
    interleaver = ResultInterleaver(min_gap_s=0.5, clock=clock, confirm_timeout_s=2.0)
    junk: list[Frame] = [
        BackgroundJobStateFrame(job_id="ghost", state="cancelled"),  # type: ignore[arg-type]
        BackgroundResultFrame(job_id="ghost", text="late"),  # after its cancel: dropped
        BackgroundErrorFrame(job_id="never-started", error="boom"),
        BackgroundResultFrame(job_id="dup", text="once"),
        BackgroundResultFrame(job_id="dup", text="once"),
        BotStoppedSpeakingFrame(),  # stop before start
        UserStoppedSpeakingFrame(),
        LLMFullResponseEndFrame(),
    ]
    run = run_virtual(_drive(interleaver, junk, [], probe_s=20.0))
    spoken = " ".join(str(f.messages) for f in run.down if isinstance(f, LLMMessagesAppendFrame))
    assert "Result: late" not in spoken and spoken.count("Result: once") == 1
    status = interleaver.scheduler.status
    assert "ghost#1" not in status
    assert status["dup#1"] in ("delivered", "merged")  # merged with the failure notice
    assert not run.errors


def test_a_result_after_the_end_frame_is_accounted_not_left_pending():
    # A result that arrives after the EndFrame (a job finishing as the call ends)
    # must not restart the interleaver's timer or raise, and must be accounted.
    clock = LoopClock()
    log = EventLog(clock)
    interleaver = ResultInterleaver(min_gap_s=0.5, clock=clock, event_log=log)

    async def late() -> None:
        await interleaver.process_frame(
            BackgroundResultFrame(job_id="late", text="too late"), FrameDirection.DOWNSTREAM
        )

    run_virtual(_drive(interleaver, [], [], probe_s=0.1))
    run_virtual(late())
    assert interleaver.scheduler.status.get("late#1") in (None, "dropped_session_end")
    assert compute_metrics(log.events).lost == 0
