#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""One task per processor that wakes at a policy's deadline (private helper).

The watchers (:class:`~pipecat_tandem.processors.reply_watchdog.ReplyWatchdog`,
:class:`~pipecat_tandem.processors.transcript_watch.TranscriptWatch`) keep their
rule in a pure policy class that says when something is overdue. This helper is
the one timer behind them: a single long-lived task made with the processor's
``create_task`` (pipecat's task manager, so it is cancelled with the pipeline)
that sleeps until the current deadline and is woken by :meth:`touch` whenever
the policy's state changes, instead of a task per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import SessionClock


class DeadlineTimer:
    """Calls ``on_due(now)`` when session time reaches ``deadline()``.

    Args:
        processor: The processor whose task manager runs the timer.
        clock: The session clock the deadlines are on.
        deadline: The current deadline (None: nothing to wait for).
        on_due: Called at the deadline; it must move the deadline on (settle the
            policy), or it is called again at once.
    """

    def __init__(
        self,
        processor: FrameProcessor,
        *,
        clock: SessionClock,
        deadline: Callable[[], float | None],
        on_due: Callable[[float], Awaitable[None]],
    ) -> None:
        self._processor = processor
        self._clock = clock
        self._deadline = deadline
        self._on_due = on_due
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the timer task (once; on the pipeline's ``StartFrame``)."""
        if self._task is None:
            self._task = self._processor.create_task(
                self._run(), name=f"{self._processor.name}::deadline"
            )

    async def stop(self) -> None:
        """Cancel the timer task, if running."""
        if self._task is not None:
            task, self._task = self._task, None
            await self._processor.cancel_task(task)

    def touch(self) -> None:
        """The deadline may have moved: re-read it."""
        self._changed.set()

    async def _run(self) -> None:
        while True:
            self._changed.clear()
            due = self._deadline()
            timeout = None if due is None else max(0.0, due - self._clock.now())
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
                continue
            except TimeoutError:
                pass
            now = self._clock.now()
            due = self._deadline()
            if due is not None and now >= due:
                await self._on_due(now)


class DeadlineWatcher(FrameProcessor):
    """A pass-through processor that watches frames against one policy deadline.

    Subclasses note frames in :meth:`observe` (synchronous, policy calls only)
    and act in :meth:`on_due`; this class runs the timer from the pipeline's
    ``StartFrame`` to its ``EndFrame``/``CancelFrame`` (or ``cleanup``) and passes
    every frame on.

    Args:
        clock: The session clock.
        deadline: The policy's current deadline.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        *,
        clock: SessionClock,
        deadline: Callable[[], float | None],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock
        self._timer = DeadlineTimer(self, clock=clock, deadline=deadline, on_due=self.on_due)

    def observe(self, frame: Frame, direction: FrameDirection) -> bool:
        """Note ``frame`` in the policy; True if the deadline may have moved."""
        return False

    async def on_due(self, now: float) -> None:
        """The deadline was reached at ``now``: settle the policy, act on it."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Run the timer with the pipeline; note each frame; pass it on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._timer.start()
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self._timer.stop()
        elif self.observe(frame, direction):
            # The timer sleeps until the current deadline; a change wakes it to re-read it.
            self._timer.touch()
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Stop the timer."""
        await super().cleanup()
        await self._timer.stop()
