#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""TranscriptWatch: a streaming STT that stops answering is told, not taken for a cough.

Placed right after the STT, it sees the VAD's speaking frames (the user
aggregator broadcasts them upstream past it; a transport's VAD sends them
downstream), the bot's speaking state, and every transcript the STT writes.
:class:`~pipecat_tandem.policy.unheard_speech.UnheardSpeech` decides when a turn
with words in it went unheard; the watch then pushes an ``ErrorFrame`` upstream,
which the :class:`~pipecat_tandem.processors.speech_guard.SpeechGuard` turns into
"Sorry, I didn't catch that." (once, never over the user).

Segmented STTs (Whisper and the like) do not need it: their requests are bounded
per step (``speech_timeout_s``), and a cough they transcribe as nothing would
look like a dead service here.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection

from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.unheard_speech import UnheardSpeech
from pipecat_tandem.processors._deadline_timer import DeadlineWatcher

__all__ = ["TranscriptWatch"]


class TranscriptWatch(DeadlineWatcher):
    """Reports a turn whose speech got no transcript in time (a dead streaming STT).

    Example::

        watch = TranscriptWatch(unheard=UnheardSpeech(timeout_s=4.0))
        pipeline = Pipeline([transport.input(), guard, stt, watch, user_aggregator, ...])

    Attributes:
        speech_kind: How the ``SpeechGuard`` apologizes for this watch's errors.
    """

    speech_kind = "stt"

    def __init__(
        self,
        *,
        unheard: UnheardSpeech | None = None,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the watch.

        Args:
            unheard: The rule (defaults when not given).
            clock: The session clock.
            event_log: Where each unheard turn is recorded (``speech_unheard``).
            **kwargs: Passed to ``FrameProcessor``.
        """
        self.unheard = unheard or UnheardSpeech()
        super().__init__(clock=clock or LoopClock(), deadline=self.unheard.deadline, **kwargs)
        self._log = event_log
        self._bot_speaking = False

    def observe(self, frame: Frame, direction: FrameDirection) -> bool:
        """Note voice, the bot's speech and transcripts."""
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self.unheard.speech_started(self._clock.now(), bot_speaking=self._bot_speaking)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.unheard.speech_stopped(self._clock.now())
        elif isinstance(frame, TranscriptionFrame | InterimTranscriptionFrame):
            if direction is not FrameDirection.DOWNSTREAM or not frame.text.strip():
                return False
            self.unheard.transcript()
        elif isinstance(frame, BotStartedSpeakingFrame | BotStoppedSpeakingFrame):
            self._bot_speaking = isinstance(frame, BotStartedSpeakingFrame)
            return False
        else:
            return False
        return True

    async def on_due(self, now: float) -> None:
        """Report an unheard turn upstream (the speech guard tells the user)."""
        if not self.unheard.due(now):
            return
        timeout_s = self.unheard.timeout_s
        if self._log is not None:
            self._log.emit("speech_unheard", t=now, timeout_s=timeout_s)
        await self.push_error(f"speech was heard but no transcript came in {timeout_s:g} s")
