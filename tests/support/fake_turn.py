"""A turn analyzer whose verdicts the test hands out one by one."""

from __future__ import annotations

import asyncio

from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from pipecat.metrics.metrics import MetricsData


class GatedTurnAnalyzer(BaseTurnAnalyzer):
    """``analyze_end_of_turn`` waits until the test calls :meth:`answer`.

    Records whether audio was appended while an analysis was in flight, which
    pipecat's analyzers do not expect.
    """

    def __init__(self) -> None:
        super().__init__()
        self._verdicts: asyncio.Queue[EndOfTurnState] = asyncio.Queue()
        self._speech = False
        self.analyzing = asyncio.Event()
        self.analyses = 0
        self.appended_while_analyzing = 0

    def answer(self, state: EndOfTurnState) -> None:
        """Let the pending (or the next) analysis return ``state``."""
        self._verdicts.put_nowait(state)

    @property
    def speech_triggered(self) -> bool:
        return self._speech

    @property
    def params(self) -> BaseTurnParams:
        return BaseTurnParams()

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        if self.analyzing.is_set():
            self.appended_while_analyzing += 1
        self._speech = self._speech or is_speech
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self) -> tuple[EndOfTurnState, MetricsData | None]:
        self.analyses += 1
        self.analyzing.set()
        try:
            state = await self._verdicts.get()
        finally:
            self.analyzing.clear()
        if state == EndOfTurnState.COMPLETE:
            self._speech = False
        return state, None

    def clear(self) -> None:
        self._speech = False
