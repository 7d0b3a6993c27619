#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""End-of-turn by a turn analyzer, with the reply started while it is still deciding.

pipecat's :class:`TurnAnalyzerUserTurnStopStrategy` awaits the turn analyzer
(smart-turn) when the VAD reports the end of speech, and the user aggregator
processes nothing else until it answers. On a 2-core CPU smart-turn takes
~0.3 s, during which the transcript is usually ready but waits in the queue,
and the audio frames that piled up behind it are worked through before the
turn can end: the LLM starts 0.05-0.25 s after it could have.

:class:`SpeculativeTurnStopStrategy` runs the same analysis in a task of its
own. Frames that arrive meanwhile are held and handed to pipecat's logic, in
order, once the analyzer has answered, so the turn is decided as pipecat
decides it, with one difference: voice that comes back while the analyzer runs
keeps the turn open (pipecat would end it, then let that voice interrupt the
reply). One thing happens early: when the turn's first transcript
arrives during the analysis, the reply is started speculatively through
pipecat's own speculation machinery (the aggregator runs the LLM on a
provisional context and the LLM service's ``SpeculationGate`` holds the reply
back). The turn's end then releases it (:meth:`trigger_user_turn_finalized`
with ``confirms_speculation``); "incomplete", more words, or the user speaking
again withdraw it (``EagerEndOfTurnCancelFrame``), and the LLM stops.

The early reply pays only if a core is free for it: on the 2-core machine we
measure on, it shares the CPU with smart-turn and gained nothing measurable
(``docs/bench/local.md``), so the presets leave it off.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    StartFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation

from pipecat_tandem.turns.fresh_transcript_turn_stop_strategy import (
    FreshTranscriptTurnStopStrategy,
)

#: Frames never held back: the pipeline's own lifecycle.
_LIFECYCLE = (StartFrame, EndFrame, CancelFrame)


class SpeculativeTurnStopStrategy(FreshTranscriptTurnStopStrategy):
    """A turn-analyzer stop strategy that starts the reply before the analyzer answers.

    Args:
        turn_analyzer: The end-of-turn model (e.g. smart-turn v3).
        speculate: Start the reply on the transcript while the analyzer runs
            (off: only the non-blocking analysis).
        **kwargs: Passed to ``FreshTranscriptTurnStopStrategy``.

    Example::

        strategies = UserTurnStrategies(
            stop=[SpeculativeTurnStopStrategy(turn_analyzer=EarlySmartTurnAnalyzer())]
        )
        LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer(), user_turn_strategies=strategies)
    """

    def __init__(self, *, turn_analyzer: Any, speculate: bool = True, **kwargs: Any) -> None:
        super().__init__(turn_analyzer=turn_analyzer, **kwargs)
        self._speculate = speculate
        self._analysis: asyncio.Task[None] | None = None
        self._held: list[Frame] = []
        self._transcripts = 0
        self._speculation: UserTurnSpeculation | None = None
        self._voice_came_back = False
        self._generation = 0  # which analysis owns the held frames
        #: Replies started early / released by the turn's end (for tests and metrics).
        self.speculations_started = 0
        self.speculations_confirmed = 0

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        """Hold frames while the analyzer runs; otherwise decide as pipecat does."""
        if self._analysis is None or isinstance(frame, _LIFECYCLE):
            return await self._process(frame)
        self._held.append(frame)
        if isinstance(frame, TranscriptionFrame) and frame.finalized and frame.text.strip():
            await self._maybe_speculate(frame)
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            # At once, not when the frame's turn comes: pipecat will not end a
            # turn while the user speaks, and a held reply must not outlive that.
            self._voice_came_back = True
            await self._withdraw("the user speaks again")
        return ProcessFrameResult.CONTINUE

    async def _process(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, TranscriptionFrame) and frame.text.strip():
            self._transcripts += 1
        if isinstance(frame, EndFrame | CancelFrame):
            await self._stop_analysis()
        result = await super().process_frame(frame)
        return result if result is not None else ProcessFrameResult.CONTINUE

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        """Analyze in a task; frames arriving meanwhile wait for its answer."""
        await self._cancel_fallback()
        self._note_voice_end(frame)
        self._vad_user_speaking = False
        self._stop_secs = frame.stop_secs
        self._vad_stopped = True
        self._voice_came_back = False
        self._generation += 1
        self._analysis = self.task_manager.create_task(
            self._analyze(frame, self._generation), f"{self}::speculative_analysis"
        )

    async def _analyze(self, frame: VADUserStoppedSpeakingFrame, generation: int) -> None:
        """Run pipecat's handling of the VAD's stop, off the aggregator's path."""
        try:
            # The STT's safety net counts from when the user really stopped.
            stt_deadline = frame.timestamp - frame.stop_secs + self._stt_timeout
            state, prediction = await self._turn_analyzer.analyze_end_of_turn()
            await self._handle_prediction_result(prediction)
            # Voice during the analysis: the user went on, whatever the model
            # made of the audio before it. pipecat would end the turn and let the
            # new voice interrupt the reply; here the turn simply goes on.
            self._turn_complete = state == EndOfTurnState.COMPLETE and not self._voice_came_back
            if not self._turn_complete:
                await self._withdraw("the turn goes on")
            # The last stretch's words get their time from now (see the base class).
            await self._expect_words()
            self._timeout_task = self.task_manager.create_task(
                self._timeout_handler(max(0.0, stt_deadline - time.time())),
                f"{self}::_timeout_handler",
            )
            await self._maybe_trigger_user_turn_stopped()
        finally:
            # Hand the held frames to pipecat's logic in order; frames arriving
            # during that are appended and handled in the same loop. A held VAD
            # stop starts the next analysis, which then owns the rest.
            while self._held and self._generation == generation:
                await self._process(self._held.pop(0))
            if self._generation == generation:
                self._analysis = None

    def _voice_is_back(self) -> bool:
        # Its VAD start may still be held behind the analysis.
        return self._voice_came_back or super()._voice_is_back()

    async def _maybe_speculate(self, frame: TranscriptionFrame) -> None:
        if not self._speculate or self._speculation is not None or self._voice_came_back:
            return
        if self._transcripts or any(
            isinstance(f, TranscriptionFrame) and f.text.strip() for f in self._held[:-1]
        ):
            return  # only the turn's first words: later ones join text we cannot see
        # One transcript is the whole turn so far: the aggregator writes it as is.
        text = frame.text
        self._speculation = UserTurnSpeculation(text=text)
        self.speculations_started += 1
        logger.debug(f"{self}: starting the reply while the turn analyzer decides: [{text}]")
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def trigger_user_turn_stopped(
        self, *, enable_user_speaking_frames: bool | None = None
    ) -> None:
        """End the turn, releasing the early reply if it answers exactly these words."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None and self._transcripts == 1:
            if self._text == speculation.text:
                self.speculations_confirmed += 1
                await self.trigger_user_turn_finalized(
                    enable_user_speaking_frames=enable_user_speaking_frames,
                    confirms_speculation=True,
                )
                return
        if speculation is not None:
            logger.debug(f"{self}: the turn's words changed, answering them afresh")
            await self.trigger_user_turn_speculation_cancelled()
        await super().trigger_user_turn_stopped(
            enable_user_speaking_frames=enable_user_speaking_frames
        )

    async def _discard_pending_end_of_turn(self) -> None:
        """The user spoke again (or the turn ended): an early reply no longer applies."""
        await self._withdraw("the user turn went on")
        await super()._discard_pending_end_of_turn()

    async def _reset(self) -> None:
        await super()._reset()
        self._transcripts = 0

    async def _withdraw(self, why: str) -> None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            logger.debug(f"{self}: withdrawing the early reply: {why}")
            await self.trigger_user_turn_speculation_cancelled()

    async def _stop_analysis(self) -> None:
        task, self._analysis = self._analysis, None
        self._held.clear()
        if task is not None:
            await self.task_manager.cancel_task(task)

    async def cleanup(self) -> None:
        """Stop an analysis in flight, then clean up as pipecat does."""
        await self._stop_analysis()
        await super().cleanup()
