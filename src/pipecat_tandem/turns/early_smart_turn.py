#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""pipecat's smart-turn v3, started before the VAD has decided the user stopped.

Smart-turn runs when the VAD reports the end of speech (after 0.2 s of quiet)
and takes ~0.25 s on one core of the 2-core machine we measure on, so the turn
cannot end before ~0.45 s after the voice. :class:`EarlySmartTurnAnalyzer` runs
the same model on the same audio once the voice has been quiet for 0.1 s
(:class:`~pipecat_tandem.turns.speech_end.SpeechEndTracker`); when the VAD's
stop follows with no voice in between and that early run said "complete", the
answer is already there. An early "incomplete", or voice after the early run,
means the model runs again the usual way, so the decision is never worse than
pipecat's, only sooner.

The early run sees 0.1 s of quiet where the usual one sees the VAD's 0.2 s; the
model, trained on audio that ends at the VAD's stop, then says "incomplete" more
often (seen on a real call). The early input is therefore padded with the quiet
it is still waiting for, so both runs judge the same-looking audio.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import onnxruntime as ort
from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.metrics.metrics import MetricsData

from pipecat_tandem.turns.speech_end import SpeechEndTracker

_Result = tuple[EndOfTurnState, MetricsData | None]


class EarlySmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """``LocalSmartTurnAnalyzerV3`` that predicts as soon as the voice goes quiet.

    Example::

        turn = EarlySmartTurnAnalyzer(cpu_count=1)
        build_tandem_pipeline(..., turn_analyzer=turn)
    """

    def __init__(
        self,
        *,
        quiet_s: float = 0.1,
        pad_s: float = 0.12,
        session: ort.InferenceSession | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the analyzer.

        Args:
            quiet_s: Quiet after the voice before the early prediction starts.
            pad_s: Silence appended to the early input (the VAD's ``stop_secs``
                minus ``quiet_s``, plus its detection delay).
            session: A loaded smart-turn onnxruntime session to share (see
                :meth:`fresh`) instead of loading the model again.
            **kwargs: Passed to ``LocalSmartTurnAnalyzerV3`` (``cpu_count``...).

        Raises:
            ValueError: A negative ``pad_s``.
        """
        if pad_s < 0:
            raise ValueError("pad_s must be >= 0")
        if session is None:
            super().__init__(**kwargs)
        else:
            # LocalSmartTurnAnalyzerV3.__init__ only loads the session on top of
            # BaseSmartTurn's: skip the load, keep the rest.
            kwargs.pop("cpu_count", None)
            kwargs.pop("smart_turn_model_path", None)
            BaseSmartTurn.__init__(self, **kwargs)
            self._log_data = False
            self._session = session
        self._quiet_s = quiet_s
        self._pad_s = pad_s
        self._tracker: SpeechEndTracker | None = None
        self._early: tuple[int, Future[_Result]] | None = None
        # Early runs get a thread of their own: the usual run at the VAD's stop
        # must never queue behind an early one that voice has made useless.
        self._early_executor: ThreadPoolExecutor | None = None
        #: Turns whose early prediction was used (for tests and metrics).
        self.early_decisions = 0

    def fresh(self) -> EarlySmartTurnAnalyzer:
        """A new analyzer (own turn state) over this one's loaded model, for another call.

        onnxruntime sessions are safe to run from several threads, and a
        session per call cost memory and threads a long-lived server never
        got back.
        """
        return EarlySmartTurnAnalyzer(
            quiet_s=self._quiet_s, pad_s=self._pad_s, session=self._session, params=self._params
        )

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        """Append audio; once the voice has gone quiet, start predicting early."""
        was_triggered = self._speech_triggered
        state = super().append_audio(buffer, is_speech)
        if self._tracker is None:
            self._tracker = SpeechEndTracker(self.sample_rate, quiet_s=self._quiet_s)
        if not was_triggered and self._speech_triggered:
            self._tracker.reset()  # a new turn
            self._early = None
        if not self._speech_triggered:
            return state
        self._tracker.feed(buffer)
        last = self._early
        if self._tracker.should_start(
            last[0] if last else None, last is not None and not last[1].done()
        ):
            pad = np.zeros(int(self._pad_s * self.sample_rate), dtype=np.int16)
            snapshot = [*self._audio_buffer, (time.monotonic(), pad)]
            if self._early_executor is None:
                self._early_executor = ThreadPoolExecutor(1, thread_name_prefix="smart-turn-early")
            future = self._early_executor.submit(self._process_speech_segment, snapshot)
            self._early = (self._tracker.voiced_end, future)
        return state

    async def analyze_end_of_turn(self) -> _Result:
        """Use the early prediction if no voice came after it and it said "complete"."""
        early, self._early = self._early, None
        if early is not None and self._tracker is not None:
            voiced_end, future = early
            if voiced_end == self._tracker.voiced_end:
                state, metrics = await asyncio.wrap_future(future)
                logger.debug(f"End of Turn early result: {state}")
                if state == EndOfTurnState.COMPLETE:
                    self.early_decisions += 1
                    self._clear(state)
                    return state, metrics
        return await super().analyze_end_of_turn()

    def clear(self) -> None:
        """Reset the analyzer (an early prediction in flight is left unused)."""
        self._early = None
        super().clear()

    async def cleanup(self) -> None:
        """Release the model threads, the early one included."""
        try:
            await super().cleanup()
        finally:
            if self._early_executor is not None:
                self._early_executor.shutdown(wait=False)
                self._early_executor = None
