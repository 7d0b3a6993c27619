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
import dataclasses
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
from pipecat_tandem.turns.reply_hold import (
    LEARN_UP_TO_S,
    MIN_QUIET_S,
    YIELD_S,
    CallerSound,
    ReplyHold,
)

#: Paced audio goes out in pieces this long (the caller's sound can stop it
#: between two).
CHUNK_S = 0.02


class ReplyHoldGate(FrameProcessor):
    """Holds the start of a reply around a caller who may go on; paces, pauses or drops it.

    When the bot is silent and its next reply's first audio frame arrives while the
    caller is making sound or has been quiet less than ``min_quiet_s``, that frame
    and every downstream frame after it wait here. They go out, in order, once the
    caller has been quiet for ``quiet_s`` (and ``min_quiet_s``) or after
    ``max_hold_s``. The reply's first ``yield_s`` seconds of audio then go out paced
    to real time, so the caller's sound can still pause them. An interruption (the
    caller's turn began) drops what is queued, except frames marked not
    interruptible. Audio past a reply's first ``yield_s`` is never held.

    Args:
        quiet_s: Caller quiet this long releases a held reply.
        max_hold_s: The longest a reply is held at a time.
        min_quiet_s: A reply's first audio waits until the caller has been quiet
            this long (0 turns it off).
        yield_s: How much of a reply's start pauses for a caller who goes on
            (0 turns it off).
        learn_up_to_s: How far ``min_quiet_s`` grows to the pauses of a caller who
            went on after a reply had started (0 turns learning off).
        clock: The session clock (a loop clock by default).
        event_log: Where holds are recorded (``reply_held``, ``reply_yielded``,
            ``reply_released``, ``reply_dropped``, ``reply_hold_learned``).
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        *,
        quiet_s: float = 0.25,
        max_hold_s: float = 1.0,
        min_quiet_s: float = MIN_QUIET_S,
        yield_s: float = YIELD_S,
        learn_up_to_s: float = LEARN_UP_TO_S,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock or LoopClock()
        self._log = event_log
        self._hold = ReplyHold(
            CallerSound(),
            quiet_s=quiet_s,
            max_hold_s=max_hold_s,
            min_quiet_s=min_quiet_s,
            yield_s=yield_s,
            learn_up_to_s=learn_up_to_s,
        )
        self._tap = CallerSoundTap(self._hold.sound, clock=self._clock)
        self._queue: list[Frame] = []
        self._pump: asyncio.Task[None] | None = None

    @property
    def tap(self) -> CallerSoundTap:
        """The processor that measures the caller's audio (after the transport input)."""
        return self._tap

    @property
    def holds(self) -> int:
        """How many replies waited before they started."""
        return self._hold.holds

    @property
    def yields(self) -> int:
        """How many replies paused after they started, for a caller who went on."""
        return self._hold.yields

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Hold, pace, release or drop frames around the start of a reply."""
        await super().process_frame(frame, direction)
        if isinstance(frame, CancelFrame):
            await self._stop_pump()
            self._queue.clear()
        elif isinstance(frame, EndFrame):
            await self._stop_pump()
            await self._flush()
        elif isinstance(frame, InterruptionFrame):
            await self._drop()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            if not self._queue:
                self._hold.bot_stopped()
        elif direction is FrameDirection.DOWNSTREAM and not isinstance(frame, SystemFrame):
            if self._queue:
                self._queue.append(frame)  # behind what waits, in order
                return
            if isinstance(frame, OutputAudioRawFrame) and self._hold.on_bot_audio(
                self._clock.now()
            ):
                if self._hold.holding:
                    self._emit("reply_held")
                self._queue.append(frame)
                self._pump = self._pump or self.create_task(self._send_queued())
                return
        await self.push_frame(frame, direction)

    async def _send_queued(self) -> None:
        """Send what is queued, in order, each audio frame when the hold allows it."""
        while self._queue:
            frame = self._queue[0]
            if isinstance(frame, OutputAudioRawFrame):
                wait = self._wait_for_audio()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                if self._hold.pacing:
                    frame = self._take_chunk(frame)
                else:
                    self._queue.pop(0)
                self._hold.sent(audio_seconds(frame))
            else:
                self._queue.pop(0)
            await self.push_frame(frame)
        self._pump = None

    def _wait_for_audio(self) -> float:
        held, yields = self._hold.holding, self._hold.yields
        wait = self._hold.audio_wait(self._clock.now())
        if self._hold.yields != yields:
            self._emit("reply_yielded")
        elif held and not self._hold.holding:
            self._emit("reply_released", frames=len(self._queue))
        return wait

    def _take_chunk(self, frame: OutputAudioRawFrame) -> OutputAudioRawFrame:
        """The next :data:`CHUNK_S` of the queue's first (audio) frame, taken off it."""
        step = max(2, int(frame.sample_rate * CHUNK_S)) * frame.num_channels * 2
        if len(frame.audio) <= step:
            self._queue.pop(0)
            return frame
        self._queue[0] = _with_audio(frame, frame.audio[step:])
        return _with_audio(frame, frame.audio[:step])

    async def _flush(self) -> None:
        queued, self._queue = self._queue, []
        for frame in queued:
            await self.push_frame(frame)

    async def _drop(self) -> None:
        await self._stop_pump()
        if self._queue:
            kept = [f for f in self._queue if not f.interruptible]
            self._emit("reply_dropped", frames=len(self._queue) - len(kept))
            self._queue = []
            for frame in kept:
                await self.push_frame(frame)
        learned = self._hold.learned
        self._hold.dropped()
        if self._hold.learned != learned:
            self._emit("reply_hold_learned", min_quiet_s=round(self._hold.min_quiet_s, 3))

    async def _stop_pump(self) -> None:
        if self._pump is not None:
            await self.cancel_task(self._pump)
            self._pump = None

    def _emit(self, event: str, **fields: Any) -> None:
        if self._log is not None:
            self._log.emit(event, **fields)

    async def cleanup(self) -> None:
        """Stop sending what is queued."""
        await super().cleanup()
        await self._stop_pump()


def audio_seconds(frame: OutputAudioRawFrame) -> float:
    """How long ``frame``'s audio plays."""
    return len(frame.audio) / (2 * max(1, frame.num_channels) * max(1, frame.sample_rate))


def _with_audio(frame: OutputAudioRawFrame, audio: bytes) -> OutputAudioRawFrame:
    """A copy of ``frame`` (same type and routing) holding ``audio``."""
    part = dataclasses.replace(frame, audio=audio)
    part.pts, part.metadata = frame.pts, dict(frame.metadata)
    part.transport_destination = frame.transport_destination
    part.interruptible = frame.interruptible
    return part
