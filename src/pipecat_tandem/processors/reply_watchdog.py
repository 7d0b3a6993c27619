#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""ReplyWatchdog: a hung interaction model ends in one short sentence, not silence.

pipecat puts no deadline on an LLM request. A provider that takes the request and
never streams a token keeps the service busy on it forever: the turn is not
answered, every later context queues behind it, and the interleaver, which waits
for the model's response to end, holds every background result. The user hears
nothing until they barge in.

The watchdog is two thin processors around the interaction model,
:class:`ReplyWatchdog` right before it and its :attr:`ReplyWatchdog.tail` right
after it; :class:`~pipecat_tandem.policy.reply_deadline.ReplyDeadline` decides.
When the reply's first output is overdue it

1. pushes an ``InterruptionFrame`` downstream into the model: pipecat cancels the
   request in progress (and flushes the ones queued behind it), so the next turn
   is answered;
2. pushes an ``ErrorFrame`` upstream, which the
   :class:`~pipecat_tandem.processors.speech_guard.SpeechGuard` turns into one
   short apology (its rules: once, never over the user or a delivery in flight).
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    Frame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    LLMThoughtTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.reply_deadline import ReplyDeadline
from pipecat_tandem.processors._deadline_timer import DeadlineWatcher

__all__ = ["ReplyWatchdog"]


class ReplyWatchdog(DeadlineWatcher):
    """Gives up on an interaction-model reply whose first token does not come in time.

    Place it right before the interaction model and :attr:`tail` right after it
    (the model's output only flows downstream from it, and contexts the assistant
    aggregator sends back to the model pass the tail upstream).

    Example::

        watchdog = ReplyWatchdog(timeout_s=10.0)
        pipeline = Pipeline([..., user_aggregator, watchdog, llm, watchdog.tail, tts, ...])

    Attributes:
        speech_kind: How the ``SpeechGuard`` apologizes for this watchdog's errors.
    """

    speech_kind = "llm_hung"

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the watchdog.

        Args:
            timeout_s: Longest wait for the first output of a reply, in seconds.
            clock: The session clock.
            event_log: Where each hung reply is recorded (``reply_timeout``).
            **kwargs: Passed to ``FrameProcessor``.

        Raises:
            TypeError: ``timeout_s`` is not a number.
            ValueError: ``timeout_s`` is not finite and > 0.
        """
        self.deadline = ReplyDeadline(timeout_s=timeout_s)
        super().__init__(clock=clock or LoopClock(), deadline=self.deadline.deadline, **kwargs)
        self._log = event_log
        self.tail = _ReplyWatchdogTail(self, name=f"{self.name}::tail")

    def requested(self) -> None:
        """A context is going into the model."""
        self.deadline.requested(self._clock.now())
        self._timer.touch()

    def output(self) -> None:
        """The model produced output for the awaited reply."""
        self.deadline.output()
        self._timer.touch()

    def ended(self) -> None:
        """A reply ended."""
        self.deadline.ended(self._clock.now())
        self._timer.touch()

    def observe(self, frame: Frame, direction: FrameDirection) -> bool:
        """Note contexts going into the model, and interruptions."""
        if direction is not FrameDirection.DOWNSTREAM:
            return False
        if isinstance(frame, LLMContextFrame):
            self.deadline.requested(self._clock.now())
        elif isinstance(frame, InterruptionFrame):
            # The user barged in: the model drops its work, nothing is owed any more.
            self.deadline.interrupted()
        else:
            return False
        return True

    async def on_due(self, now: float) -> None:
        """Interrupt the hung request and report it upstream."""
        if not self.deadline.expire(now):
            return
        timeout_s = self.deadline.timeout_s
        if self._log is not None:
            self._log.emit("reply_timeout", t=now, timeout_s=timeout_s)
        # First free the model (the apology must not queue behind the hung request),
        # then report it upstream, where the speech guard says the sentence.
        await self.push_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
        await self.push_error(f"the interaction model gave no reply in {timeout_s:g} s")


class _ReplyWatchdogTail(FrameProcessor):
    """The watchdog's eye after the model: its output, and contexts sent back to it."""

    def __init__(self, watchdog: ReplyWatchdog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watchdog = watchdog

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Report the model's output and re-runs to the watchdog; pass every frame on."""
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMTextFrame | LLMThoughtTextFrame | FunctionCallsStartedFrame):
                self._watchdog.output()
            elif isinstance(frame, LLMFullResponseEndFrame):
                self._watchdog.ended()
        elif isinstance(frame, LLMContextFrame):
            # The assistant aggregator runs the model again (after a tool result).
            self._watchdog.requested()
        await self.push_frame(frame, direction)
