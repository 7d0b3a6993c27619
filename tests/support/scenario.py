"""Scripted conversations through the real tandem pipeline, on virtual time.

The pipeline is the product's own (``build_tandem_pipeline``: delegation processor,
pipecat's aggregators, interleaver, background agent on an in-process runner). Only
the models and the audio output are fakes: fake LLMs with fixed latency and a fake
speech output that "speaks" text at a fixed rate and emits pipecat's bot-speaking
frames both ways, as a real output transport does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.bench.harness import worker_with_start_event
from pipecat_tandem.clock import LoopClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.observe.metrics import SessionMetrics, compute_metrics
from pipecat_tandem.pipelines.tandem import TandemPipeline, build_tandem_pipeline

from .fake_llm import FakeLLMService, FakeReply, Responder


@dataclass
class Utterance:
    start: float
    end: float | None
    text: str
    interrupted: bool = False


class FakeSpeechOutput(FrameProcessor):
    """Speaks LLM responses and TTSSpeakFrames at ``seconds_per_word``, with bot-speaking frames."""

    def __init__(
        self, clock: LoopClock, *, seconds_per_word: float = 0.2, first_audio_s: float = 0.1
    ):
        super().__init__(name="fake-speech-output")
        self._clock = clock
        self._spw = seconds_per_word
        self._first = first_audio_s
        self._buffer: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._current: Utterance | None = None
        self.spoken: list[Utterance] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if direction is not FrameDirection.DOWNSTREAM:
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._buffer = []
        elif isinstance(frame, LLMTextFrame | AggregatedTextFrame):
            # (AggregatedTextFrame: what a text aggregator like FirstClauseProcessor passes on.)
            self._buffer.append(frame.text)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._speak("".join(self._buffer).strip())
            self._buffer = []
        elif isinstance(frame, TTSSpeakFrame):
            await self._speak(frame.text)
        elif isinstance(frame, InterruptionFrame):
            await self._stop(interrupted=True)

    async def _speak(self, text: str) -> None:
        if not text:
            return
        await self._stop(interrupted=True)
        self._task = self.create_task(self._say(text), "fake-speech")

    async def _say(self, text: str) -> None:
        await asyncio.sleep(self._first)
        self._current = Utterance(self._clock.now(), None, text)
        self.spoken.append(self._current)
        await self.broadcast_frame(BotStartedSpeakingFrame)
        await asyncio.sleep(self._spw * len(text.split()))
        self._current.end = self._clock.now()
        self._current = None
        await self.broadcast_frame(BotStoppedSpeakingFrame)

    async def _stop(self, *, interrupted: bool) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            await self.cancel_task(task)
            if self._current is not None:
                self._current.end = self._clock.now()
                self._current.interrupted = interrupted
                self._current = None
                await self.broadcast_frame(BotStoppedSpeakingFrame)


def say(t: float, text: str, duration: float = 1.0) -> list[tuple[float, Frame]]:
    """The user speaks ``text`` from ``t`` for ``duration`` seconds."""
    return [
        (t, ProposedUserStartedSpeakingFrame()),
        (t + duration, TranscriptionFrame(text=text, user_id="user", timestamp="")),
        (t + duration + 0.01, ProposedUserStoppedSpeakingFrame()),
    ]


def noise(t: float, duration: float = 0.4) -> list[tuple[float, Frame]]:
    """A user sound with no words in it (a cough)."""
    return [
        (t, ProposedUserStartedSpeakingFrame()),
        (t + duration, ProposedUserStoppedSpeakingFrame()),
    ]


_RESULT = re.compile(r"(?:Result|Answer|Partial result[^:]*): (.+)")


def weaving_responder(delegate_when: Callable[[str], str | None]) -> Responder:
    """A fake interaction model.

    * user message for which ``delegate_when`` returns a task → calls ``delegate``;
    * tool result → "I'm on it.";
    * developer delivery → speaks each result line ("The answer is ..."), or the offer;
    * anything else → "Sure."
    """

    def respond(messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        role, content = last.get("role"), str(last.get("content") or "")
        if role == "tool":
            return FakeReply(text="I'm on it.")
        if role == "developer" and "Background work has finished" in content:
            answers = _RESULT.findall(content)
            if "moved on from" in content:
                return FakeReply(text="I also have the answer on that, want it?")
            if "failed" in content:
                return FakeReply(text="Sorry, that failed.")
            return FakeReply(text="The answer is " + "; ".join(answers) + ".")
        if role == "user":
            task = delegate_when(content)
            if task is not None:
                return FakeReply(text="", tool_calls=[("delegate", {"task": task})])
        # Like a real model: a result still in the context and never said gets mentioned.
        said = " ".join(
            str(m.get("content") or "") for m in messages if m.get("role") == "assistant"
        )
        unsaid = [
            a
            for m in messages
            if m.get("role") == "developer"
            and "Background work has finished" in str(m.get("content"))
            for a in _RESULT.findall(str(m.get("content")))
            if a not in said
        ]
        if unsaid:
            return FakeReply(text="Sure. Also, the answer is " + "; ".join(unsaid) + ".")
        return FakeReply(text="Sure.")

    return respond


def background_responder(answer: Callable[[str], FakeReply]) -> Responder:
    """A fake background model answering from the task line of the job's last message."""

    def respond(messages: list[dict[str, Any]]) -> FakeReply:
        tasks = [
            str(m.get("content"))
            for m in messages
            if str(m.get("content") or "").startswith("Task: ")
        ]
        task = tasks[-1].split("\n", 1)[0].removeprefix("Task: ") if tasks else ""
        return answer(task)

    return respond


@dataclass
class ScenarioResult:
    tandem: TandemPipeline
    output: FakeSpeechOutput
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metrics(self) -> SessionMetrics:
        return compute_metrics(self.events)

    def spoken_texts(self) -> list[str]:
        return [u.text for u in self.output.spoken]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]


async def run_scenario(
    script: list[tuple[float, Frame]],
    *,
    interaction: Responder,
    background: Responder,
    background_delay_s: float = 2.0,
    background_per_word_s: float = 0.0,
    until: float = 30.0,
    min_gap_s: float = 0.5,
    actions: list[tuple[float, Callable[[TandemPipeline], Any]]] | None = None,
    perception: Callable[[LoopClock, EventLog], Sequence[FrameProcessor]] | None = None,
    **build_args: Any,
) -> ScenarioResult:
    """Run a scripted conversation through the tandem pipeline (call inside ``run_virtual``).

    ``perception`` makes the processors placed first (e.g. ``default_perception``)
    on the run's clock and event log, so media frames in ``script`` are timed as
    they arrive and the cues are logged.
    """
    clock = LoopClock()
    clock.now()  # fix the epoch at the start of the run
    output = FakeSpeechOutput(clock)
    if perception is not None:
        event_log = build_args.setdefault("event_log", EventLog(clock))
        build_args["perception"] = list(perception(clock, event_log))
    tandem = build_tandem_pipeline(
        interaction_llm=FakeLLMService(interaction, ttft_s=0.3),
        background=lambda: FakeLLMService(
            background, ttft_s=background_delay_s, per_word_s=background_per_word_s
        ),
        tts=output,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=ExternalUserTurnStrategies(), user_turn_stop_timeout=2.0
        ),
        min_gap_s=min_gap_s,
        clock=clock,
        **build_args,
    )
    worker, started = worker_with_start_event(tandem.pipeline)

    timeline: list[tuple[float, Any]] = sorted(
        [(t, f) for t, f in script] + [(t, a) for t, a in (actions or [])], key=lambda x: x[0]
    )

    async def drive() -> None:
        await started.wait()
        base = clock.now()
        for t, item in timeline:
            delay = base + t - clock.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if isinstance(item, Frame):
                await worker.queue_frame(item)
            else:
                result = item(tandem)
                if asyncio.iscoroutine(result):
                    await result
        await asyncio.sleep(max(0.0, base + until - clock.now()))
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), drive())
    return ScenarioResult(tandem=tandem, output=output, events=tandem.event_log.events)
