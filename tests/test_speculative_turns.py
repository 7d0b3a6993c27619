"""The reply starts while the turn analyzer decides, and only a finished turn hears it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.bench.harness import worker_with_start_event
from pipecat_tandem.turns import SpeculativeTurnStopStrategy
from tests.support.fake_llm import FakeLLMService, FakeReply, last_text
from tests.support.fake_turn import GatedTurnAnalyzer

COMPLETE, INCOMPLETE = EndOfTurnState.COMPLETE, EndOfTurnState.INCOMPLETE
QUIET = bytes(640)  # 20 ms of 16 kHz silence


class Recorder(FrameProcessor):
    """Keeps what reaches the end of the pipeline (what the TTS would speak)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.replies = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
            if isinstance(frame, LLMFullResponseEndFrame):
                self.replies.set()
        await self.push_frame(frame, direction)

    def spoken(self) -> str:
        return "".join(f.text for f in self.frames if isinstance(f, LLMTextFrame))


@dataclass
class Call:
    worker: PipelineWorker
    analyzer: GatedTurnAnalyzer
    strategy: SpeculativeTurnStopStrategy
    llm: FakeLLMService
    out: Recorder
    context: LLMContext
    sent: list[Frame] = field(default_factory=list)

    async def send(self, *frames: Frame) -> None:
        for frame in frames:
            await self.worker.queue_frame(frame)

    async def speak(self, text: str | None) -> None:
        """One stretch of voice: VAD start, audio, VAD stop, then (maybe) its words."""
        await self.send(VADUserStartedSpeakingFrame(), *[self.audio()] * 3)
        await self.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), *[self.audio()] * 3)
        if text is not None:
            await self.send(TranscriptionFrame(text, "user", "now", finalized=True))

    @staticmethod
    def audio() -> InputAudioRawFrame:
        return InputAudioRawFrame(QUIET, 16000, 1)

    @staticmethod
    async def until(condition) -> None:
        """Poll ``condition`` (frames cross tasks; there is no event for each state)."""
        async with asyncio.timeout(5.0):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.005)


@asynccontextmanager
async def call(*, speculate: bool = True) -> AsyncIterator[Call]:
    analyzer = GatedTurnAnalyzer()
    strategy = SpeculativeTurnStopStrategy(turn_analyzer=analyzer, speculate=speculate)
    context = LLMContext()
    pair = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=UserTurnStrategies(stop=[strategy]), user_turn_stop_timeout=30.0
        ),
    )
    llm = FakeLLMService(lambda m: FakeReply(text=f"You said: {last_text(m, 'user')}"))
    out = Recorder()
    worker, started = worker_with_start_event(Pipeline([pair.user(), llm, out, pair.assistant()]))

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.ensure_future(runner.run())
    await asyncio.wait_for(started.wait(), 5.0)
    try:
        yield Call(worker, analyzer, strategy, llm, out, context)
    finally:
        # An analysis still waiting for its verdict must not keep the pipeline up.
        await worker.queue_frame(EndFrame())
        await asyncio.wait_for(running, 10.0)


def user_messages(context: LLMContext) -> list[str]:
    return [m["content"] for m in context.get_messages() if m.get("role") == "user"]


async def test_the_reply_starts_before_the_verdict_and_is_heard_only_after_it():
    async with call() as c:
        await c.speak("What is the capital of France?")
        await c.until(lambda: len(c.llm.contexts) == 1)  # the analyzer has not answered
        assert c.analyzer.analyzing.is_set()
        await asyncio.sleep(0.05)
        assert c.out.spoken() == ""  # held back until the turn is over
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: What is the capital of France?"
        assert len(c.llm.contexts) == 1  # the early reply was the reply: no second run
        assert c.strategy.speculations_confirmed == c.strategy.speculations_started == 1
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["What is the capital of France?"]
        assert c.analyzer.appended_while_analyzing == 0  # audio waited for the verdict


async def test_an_unfinished_turn_withdraws_the_early_reply_and_answers_all_of_it():
    async with call() as c:
        await c.speak("So I was thinking")
        await c.until(lambda: len(c.llm.contexts) == 1)
        c.analyzer.answer(INCOMPLETE)  # smart-turn: the user is not done
        await c.until(lambda: any(isinstance(f, EagerEndOfTurnCancelFrame) for f in c.out.frames))
        await c.speak("about the weekend.")
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        # Only the second speculation-free run is spoken, and it answers the whole turn.
        assert c.out.spoken() == "You said: So I was thinking about the weekend."
        assert c.strategy.speculations_started == 1  # the second words joined earlier ones
        assert c.strategy.speculations_confirmed == 0
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["So I was thinking about the weekend."]


async def test_voice_during_the_analysis_withdraws_the_reply_at_once():
    async with call() as c:
        await c.speak("Hello")
        await c.until(lambda: len(c.llm.contexts) == 1)
        await c.send(VADUserStartedSpeakingFrame())  # the user goes on, analyzer still busy
        await c.until(lambda: any(isinstance(f, EagerEndOfTurnCancelFrame) for f in c.out.frames))
        assert c.analyzer.analyzing.is_set()
        c.analyzer.answer(COMPLETE)  # a stale "complete": pipecat keeps the turn open
        await asyncio.sleep(0.1)
        assert c.out.spoken() == ""
        await c.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), c.audio())
        await c.send(TranscriptionFrame("there.", "user", "now", finalized=True))
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Hello there."


async def test_words_after_the_verdict_take_pipecats_usual_path():
    async with call() as c:
        await c.speak(None)
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await c.until(lambda: not c.analyzer.analyzing.is_set())
        await c.send(TranscriptionFrame("Late words.", "user", "now", finalized=True))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Late words."
        assert c.strategy.speculations_started == 0


async def test_without_speculation_the_analysis_still_does_not_block_the_aggregator():
    async with call(speculate=False) as c:
        await c.speak("Tell me a joke.")
        await asyncio.sleep(0.1)
        assert c.llm.contexts == []  # nothing starts before the verdict
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Tell me a joke."
        assert c.strategy.speculations_started == 0


@pytest.mark.parametrize("text", ["", "   "])
async def test_blank_words_start_nothing(text):
    async with call() as c:
        await c.speak(text)
        await c.until(lambda: c.analyzer.analyzing.is_set())
        await asyncio.sleep(0.05)
        assert c.llm.contexts == [] and c.strategy.speculations_started == 0


async def test_the_pipeline_ends_cleanly_during_an_analysis():
    async with call() as c:
        await c.speak("Are you there?")
        await c.until(lambda: len(c.llm.contexts) == 1)
        # Leaving the block sends EndFrame while the analysis is still pending.


async def test_a_second_stop_during_the_analysis_is_analyzed_in_turn():
    async with call() as c:
        await c.speak("Hello")
        await c.until(lambda: len(c.llm.contexts) == 1)
        await c.speak("there.")  # voice, a second stop and more words, all before a verdict
        await asyncio.sleep(0.05)
        assert c.strategy.speculations_started == 1  # not again on half the turn
        c.analyzer.answer(COMPLETE)  # stale: the voice came back
        await c.until(lambda: c.analyzer.analyses == 2 and c.analyzer.analyzing.is_set())
        await c.send(c.audio(), c.audio())  # held for the second analysis too
        await asyncio.sleep(0.05)
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Hello there."
        assert c.analyzer.appended_while_analyzing == 0
