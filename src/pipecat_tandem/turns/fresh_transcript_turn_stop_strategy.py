#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""End-of-turn that waits for the words spoken after the user's last pause.

pipecat's :class:`TurnAnalyzerUserTurnStopStrategy` ends a turn when the turn
analyzer says "complete" and it holds *some* transcript of the turn. The
transcript it holds may be of the speech *before* the user's last pause: in a
long turn ("... And today I finished the report. Anyway, what should I do this
weekend?") the last sentence is still being transcribed when the analyzer
answers, the turn ends on the earlier words, the LLM starts on a context
without the question, and the late transcript then opens a new turn that is
answered again, seconds later (2.5 s more at the caller in the conversation
suite's monologue).

:class:`FreshTranscriptTurnStopStrategy` forgets the transcript it holds when
the user speaks again, so the turn ends on the transcript of the last stretch
of voice. A stretch that yields no words (a cough after the question) must not
hold the turn open: once the STT's p99 time has passed *since the turn
analyzer answered* (not since the pause itself, which a loaded machine may
have queued for longer than that), the earlier words end the turn.

The wait starts at the analyzer's answer, not when the pause reached the
strategy: under load the analyzer (smart-turn, ~0.25 s on an idle core) took
over a second, the wait ran out meanwhile, and its "complete" ended the turn
at once on the words *before* the pause; the last stretch's words came a few
ms later and opened a new turn that interrupted the reply. In the 100-call
soak at load 6-9 that happened in 41 calls of 100 ("Hello there." ended the
turn, "What is the capital of Italy?" opened another), and 12 of the 14
unanswered calls were among them: the reopened turn's reply came too late.

A transcript can also arrive *after* the user spoke again although it was
made before: the VAD's frames are system frames and overtake the data
frames queued in each processor between the STT and the aggregator. Such a
transcript holds the earlier stretch's words; taken for the last stretch's,
it ended the turn at the analyzer's "complete" before the last words came.
A transcript made before the VAD's last start is therefore counted as the
earlier words (its text still reaches the context: the aggregator keeps it).
The embedded STT (:class:`~pipecat_tandem.models.local_stt.LocalWhisperSTTService`)
stamps a transcript with the time its words were *said*, so a slow transcription
(a loaded machine, several calls on one core) counts as the earlier words too:
stamped when Whisper finished, "Actually." came after the user had started "Never
mind." and ended the turn on its own. An STT that stamps the time it finished is
covered only for the overtaking above.

A turn with no words at all (a cough, a click) is ended by the strategy too,
``no_words_s`` after the voice stopped. pipecat leaves that to the user
aggregator's stop timeout, a watchdog that ends a turn after that long without a
VAD or transcript event while the user is quiet; but the watchdog can fire on the
VAD's stop itself: when the stop is handled in the event loop's lag after the
watchdog's timer ran out (``asyncio.wait_for`` then reports a timeout although its
event was set), the turn ends before its words, which come a moment later and open
a turn of their own that interrupts the bot. A 2 s watchdog did that to two of 44
turns of a loaded conversation-suite run, each answered ~1 s late ("What is 15% of
$80?", "What day of the week is Christmas this year?": the VAD's stop came 2.02 s
after its start). With the empty turn ended here, the pipeline's watchdog is a
5 s safety net (pipecat's default), and the coincidence is 2.5 times rarer.

The words also move the turn's end where the voice alone misleads
(:mod:`~pipecat_tandem.turns.transcript_end`): words that cannot end a sentence
("Meanwhile.", "... the history of the") hold a "complete" until the voice has
been quiet a little longer, and a question the recognizer punctuated as one ends
the turn soon after the voice stops although the analyzer said "incomplete".
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

from pipecat_tandem.turns.speech_end import voice_ended_at
from pipecat_tandem.turns.transcript_end import TurnEndByWords

#: How long to wait for a stretch's words when the STT states no p99 latency.
DEFAULT_LATE_TRANSCRIPT_S = 1.0
#: A turn with no words at all ends this long after the voice stopped (the stop
#: timeout the pipeline gave pipecat's watchdog before the strategy did it).
DEFAULT_NO_WORDS_S = 2.0


class FreshTranscriptTurnStopStrategy(TurnAnalyzerUserTurnStopStrategy):
    """A turn-analyzer stop strategy that ends a turn on its last words.

    Args:
        turn_analyzer: The end-of-turn model (e.g. smart-turn v3).
        late_transcript_s: How long after the pause a stretch of voice with no
            transcript yet may still get one; ``None`` uses the STT's p99
            latency (``STTMetadataFrame``), else :data:`DEFAULT_LATE_TRANSCRIPT_S`.
        words: How the turn's last words move its end (``None``: the analyzer
            alone decides, as in pipecat).
        no_words_s: A turn with no words at all ends this long after the voice
            stopped, whatever the analyzer said (``None``: left to the user
            aggregator's stop timeout, as in pipecat).
        **kwargs: Passed to ``TurnAnalyzerUserTurnStopStrategy``.

    Raises:
        ValueError: ``late_transcript_s`` or ``no_words_s`` is negative or not a
            number.

    Example::

        strategies = UserTurnStrategies(
            stop=[FreshTranscriptTurnStopStrategy(turn_analyzer=LocalSmartTurnAnalyzerV3())]
        )
    """

    def __init__(
        self,
        *,
        turn_analyzer: Any,
        late_transcript_s: float | None = None,
        words: TurnEndByWords | None = TurnEndByWords(),  # noqa: B008 - frozen, shared
        no_words_s: float | None = DEFAULT_NO_WORDS_S,
        **kwargs: Any,
    ) -> None:
        for name, value in (("late_transcript_s", late_transcript_s), ("no_words_s", no_words_s)):
            if value is not None and not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        super().__init__(turn_analyzer=turn_analyzer, **kwargs)
        self._late_transcript_s = late_transcript_s
        self._no_words_s = no_words_s
        self._said_before = ""  # the turn's words before the user's last pause
        self._stretch_started: float | None = None  # time.time() of the VAD's last start
        self._fallback: asyncio.Task[None] | None = None
        self._words = words
        self._voice_ended: float | None = None  # time.time() the voice went quiet
        self._words_wait: asyncio.Task[None] | None = None
        self._words_waited = False  # this pause's wait by the words is over
        #: Turns whose end the words moved: held open / ended on a question (for metrics).
        self.held_open_by_words = 0
        self.ended_by_words = 0

    def _wait_for_words_s(self) -> float:
        if self._late_transcript_s is not None:
            return self._late_transcript_s
        return self._stt_timeout or DEFAULT_LATE_TRANSCRIPT_S

    async def _handle_vad_user_started_speaking(self, frame: VADUserStartedSpeakingFrame) -> None:
        await super()._handle_vad_user_started_speaking(frame)
        # The words so far no longer end the turn: the ones being spoken now will.
        if self._text:
            self._said_before = self._text
        self._text = ""
        self._stretch_started = frame.timestamp
        await self._cancel_fallback()

    async def _handle_transcription(self, frame: TranscriptionFrame) -> None:
        made = _made_at(frame.timestamp)
        if made is not None and self._stretch_started is not None and made < self._stretch_started:
            # Overtaken by the VAD's start: these are the words before the pause.
            logger.debug(
                f"{self}: words made {self._stretch_started - made:.2f} s before the user "
                f"spoke again count as the earlier ones: [{frame.text}]"
            )
            if frame.text.strip():
                self._said_before = frame.text
            return
        await super()._handle_transcription(frame)

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        await self._cancel_fallback()
        self._note_voice_end(frame)
        await super()._handle_vad_user_stopped_speaking(frame)  # waits for the analyzer
        await self._expect_words()

    def _note_voice_end(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._voice_ended = voice_ended_at(frame)

    def _voice_is_back(self) -> bool:
        """The user is speaking again (a subclass may know it before the VAD's frame)."""
        return self._vad_user_speaking

    async def _maybe_trigger_user_turn_stopped(self) -> None:
        """End the turn as pipecat does, once the words have had their say."""
        if self._words_wait is not None:
            return  # the words' wait decides when it is over
        wait = self._wait_by_words()
        if wait is not None and wait > 0:
            self._words_wait = self.task_manager.create_task(
                self._end_after(wait), f"{self}::end_by_words"
            )
            return
        if wait == 0 and not self._turn_complete:
            self._end_on_the_words()
        await super()._maybe_trigger_user_turn_stopped()

    def _wait_by_words(self) -> float | None:
        """Seconds the words still hold the turn (0: end it), ``None`` if they say nothing."""
        if (
            self._words is None
            or self._words_waited
            or not self._vad_stopped
            or self._voice_is_back()
            or self._voice_ended is None
            or not self._text
        ):
            return None
        return self._words.wait_s(
            self._text,
            voice_says_complete=self._turn_complete,
            quiet_s=time.time() - self._voice_ended,
        )

    async def _end_after(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        self._words_wait = None
        self._words_waited = True
        if self._turn_complete:
            self.held_open_by_words += 1
            logger.debug(f"{self}: held the turn {delay:.2f} s on open words: [{self._text}]")
        else:
            self._end_on_the_words()
        await self._maybe_trigger_user_turn_stopped()

    def _end_on_the_words(self) -> None:
        self._turn_complete = True
        self.ended_by_words += 1
        logger.debug(f"{self}: the turn ends on a finished question: [{self._text}]")

    async def _discard_pending_end_of_turn(self) -> None:
        """Voice came back (or the turn ended): the words' wait no longer applies."""
        self._words_waited = False
        task, self._words_wait = self._words_wait, None
        await self._cancel(task)
        await super()._discard_pending_end_of_turn()

    async def _expect_words(self) -> None:
        """The analyzer has answered: give this stretch's words time to arrive, then fall back."""
        await self._cancel_fallback()
        if self._text:
            return
        if self._said_before:
            delay = self._wait_for_words_s()
        elif self._no_words_s is not None and self._voice_ended is not None:
            delay = max(0.0, self._no_words_s - (time.time() - self._voice_ended))
        else:
            return
        self._fallback = self.task_manager.create_task(
            self._fall_back(delay), f"{self}::fresh_transcript"
        )

    async def _fall_back(self, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            return
        self._fallback = None
        if self._text or self._vad_user_speaking:
            return
        if self._said_before:
            # No words came for the last stretch (a cough, a breath): the turn's
            # earlier words are what it said.
            self._text = self._said_before
            await self._maybe_trigger_user_turn_stopped()
        else:
            # No words in the whole turn: it ends empty, as pipecat's watchdog
            # would end it, but at a time of its own (see the module's docstring).
            logger.debug(f"{self}: a turn with no words ends {delay:.2f} s after the analysis")
            await self.trigger_user_turn_stopped()

    async def _reset(self) -> None:
        await super()._reset()
        self._said_before = ""
        self._stretch_started = None
        await self._cancel_fallback()

    async def _cancel_fallback(self) -> None:
        task, self._fallback = self._fallback, None
        await self._cancel(task)

    async def _cancel(self, task: asyncio.Task[None] | None) -> None:
        # A task ending the turn reaches its own cancellation through the reset.
        if task is not None and task is not asyncio.current_task():
            await self.task_manager.cancel_task(task)

    async def cleanup(self) -> None:
        """Stop a pending fallback and wait, then clean up as pipecat does."""
        await self._cancel_fallback()
        task, self._words_wait = self._words_wait, None
        await self._cancel(task)
        await super().cleanup()


def _made_at(timestamp: str) -> float | None:
    """A transcript's ISO 8601 creation time (pipecat's ``time_now_iso8601``) as ``time.time()``."""
    try:
        made = datetime.fromisoformat(timestamp)
    except (TypeError, ValueError):
        return None  # a service's own format: taken as fresh, as before
    return made.timestamp() if made.tzinfo is not None else None
