#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A virtual-time asyncio event loop for deterministic benchmark runs.

A copy of the test suite's loop (the product cannot import ``tests``).

``loop.time()`` reads a virtual clock. Whenever the loop would sleep waiting for its
next timer and no I/O or executor work is pending, the clock jumps straight to that
timer, so a scripted 30-second conversation runs in milliseconds and every timing
decision sees exact, repeatable times. Work handed to threads (``asyncio.to_thread``)
is waited for in real time, with the clock frozen, so it cannot make deadlines expire.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _VirtualSelector:
    def __init__(self, loop: VirtualTimeLoop, real: selectors.BaseSelector) -> None:
        self._loop = loop
        self._real = real

    def select(self, timeout: float | None = None) -> list[Any]:
        events = self._real.select(0)
        if events:
            return events
        if self._loop.executor_busy:
            return self._real.select(0.002 if timeout is None else min(timeout, 0.002))
        if timeout is None:
            return self._real.select(None)
        if timeout > 0:
            self._loop.advance(timeout)
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time jumps to the next timer when idle."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual = 1000.0
        self._executor_jobs = 0
        self._selector = _VirtualSelector(self, self._selector)  # type: ignore[has-type,arg-type]

    def time(self) -> float:
        """The virtual clock."""
        return self._virtual

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (at least one float step, so it always moves)."""
        self._virtual = max(self._virtual + seconds, math.nextafter(self._virtual, math.inf))

    def call_at(  # type: ignore[override]
        self, when: float, callback: Any, *args: Any, context: Any = None
    ) -> Any:
        """Schedule as asyncio does; a timer asyncio would fire early brings the clock to it.

        asyncio fires a timer due within its clock resolution (1 ns) *now*. With a real
        clock that is harmless, as the clock moves on by itself; here a loop that
        waits for a deadline a few float steps ahead (``deadline - now`` rounding to a
        sliver) would fire at the same instant forever. So the clock catches up.
        """
        now = self.time()
        if now < when <= now + self._clock_resolution:  # type: ignore[attr-defined]
            self._virtual = when
        return super().call_at(when, callback, *args, context=context)

    @property
    def executor_busy(self) -> bool:
        """Whether work handed to threads is still running."""
        return self._executor_jobs > 0

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Any, *args: Any
    ) -> asyncio.Future[Any]:
        """Run ``func`` in a thread; the clock stays frozen until it finishes."""
        self._executor_jobs += 1
        future = super().run_in_executor(executor, func, *args)

        def _done(_: Any) -> None:
            self._executor_jobs -= 1

        future.add_done_callback(_done)
        return future


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
