"""A user aggregator, an LLM and a recorder around a turn-stop strategy under test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.frames.frames import (
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
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
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
    strategy: TurnAnalyzerUserTurnStopStrategy
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
async def call(
    *, speculate: bool = True, strategy_cls: Callable[..., Any] | None = None
) -> AsyncIterator[Call]:
    """A running call; ``strategy_cls`` (given the analyzer) replaces the speculative one."""
    analyzer = GatedTurnAnalyzer()
    strategy = (
        strategy_cls(turn_analyzer=analyzer)
        if strategy_cls is not None
        else SpeculativeTurnStopStrategy(turn_analyzer=analyzer, speculate=speculate)
    )
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
