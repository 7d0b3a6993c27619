#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Holds a reply's first audio while the caller is talking again.

The decision is :class:`~pipecat_tandem.turns.reply_hold.ReplyHold` (why: see
:mod:`pipecat_tandem.turns.reply_hold`); this processor only holds and releases
frames. Place it right before the transport output, and its :attr:`tap` right
after the transport input::

    gate = ReplyHoldGate()
    Pipeline([transport.input(), gate.tap, stt, ..., tts, gate, transport.output(), ...])
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    SystemFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.processors.caller_sound_tap import CallerSoundTap
from pipecat_tandem.turns.reply_hold import THOUGHT_PAUSE_S, CallerSound, ReplyHold


class ReplyHoldGate(FrameProcessor):
    """Holds the start of a reply while the caller is sounding; releases or drops it.

    When the bot is silent and its next reply's first audio frame arrives while the
    caller is making sound or has been quiet less than ``min_quiet_s``, that frame
    and every downstream frame after it wait here. They go out, in order, once the
    caller has been quiet for ``quiet_s`` (and ``min_quiet_s``) or after
    ``max_hold_s``; an interruption (the caller's turn began) drops them, except
    frames marked not interruptible. Audio of a reply already playing is
    never held.

    Args:
        quiet_s: Caller quiet this long releases a held reply.
        max_hold_s: The longest a reply is held.
        min_quiet_s: A reply's first audio waits until the caller has been quiet
            this long (:data:`~pipecat_tandem.turns.reply_hold.THOUGHT_PAUSE_S`:
            longer than a pause between two sentences; 0 turns it off).
        clock: The session clock (a loop clock by default).
        event_log: Where holds are recorded (``reply_held``, ``reply_released``).
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        *,
        quiet_s: float = 0.25,
        max_hold_s: float = 1.0,
        min_quiet_s: float = THOUGHT_PAUSE_S,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock or LoopClock()
        self._log = event_log
        self._hold = ReplyHold(
            CallerSound(), quiet_s=quiet_s, max_hold_s=max_hold_s, min_quiet_s=min_quiet_s
        )
        self._tap = CallerSoundTap(self._hold.sound, clock=self._clock)
        self._queue: list[Frame] = []
        self._release: asyncio.Task[None] | None = None

    @property
    def tap(self) -> CallerSoundTap:
        """The processor that measures the caller's audio (after the transport input)."""
        return self._tap

    @property
    def holds(self) -> int:
        """How many replies were held so far."""
        return self._hold.holds

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Hold, release or drop frames around the start of a reply."""
        await super().process_frame(frame, direction)
        if isinstance(frame, CancelFrame):
            await self._stop_release()
            self._queue.clear()
        elif isinstance(frame, EndFrame):
            await self._stop_release()
            await self._flush()
        elif isinstance(frame, InterruptionFrame):
            await self._drop()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._hold.bot_stopped()
        elif direction is FrameDirection.DOWNSTREAM and not isinstance(frame, SystemFrame):
            if isinstance(frame, OutputAudioRawFrame):
                held_before = self._hold.holding
                if self._hold.on_bot_audio(self._clock.now()):
                    self._queue.append(frame)
                    if not held_before:
                        self._emit("reply_held")
                        self._release = self.create_task(self._release_when_clear())
                    return
            elif self._hold.holding:
                self._queue.append(frame)
                return
        await self.push_frame(frame, direction)

    async def _release_when_clear(self) -> None:
        while True:
            now = self._clock.now()
            if self._hold.should_release(now):
                break
            await asyncio.sleep(self._hold.next_check_in(now))
        self._release = None
        self._emit("reply_released", frames=len(self._queue))
        await self._flush()

    async def _flush(self) -> None:
        queued, self._queue = self._queue, []
        for frame in queued:
            await self.push_frame(frame)

    async def _drop(self) -> None:
        if not self._hold.holding and not self._queue:
            self._hold.dropped()
            return
        await self._stop_release()
        kept = [f for f in self._queue if not f.interruptible]
        self._emit("reply_dropped", frames=len(self._queue) - len(kept))
        self._queue = []
        self._hold.dropped()
        for frame in kept:
            await self.push_frame(frame)

    async def _stop_release(self) -> None:
        if self._release is not None:
            await self.cancel_task(self._release)
            self._release = None

    def _emit(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.emit(event, **fields)

    async def cleanup(self) -> None:
        """Stop a pending release."""
        await super().cleanup()
        await self._stop_release()
