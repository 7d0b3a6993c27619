"""A virtual-time asyncio event loop for deterministic timing tests.

``loop.time()`` reads a virtual clock. Whenever the loop would sleep waiting for its
next timer and no I/O or executor work is pending, the clock jumps straight to that
timer, so a scripted 30-second conversation runs in milliseconds and every timing
decision sees exact, repeatable times. Work handed to threads (``asyncio.to_thread``)
is waited for in real time, with the clock frozen, so it cannot make deadlines expire.
"""

from __future__ import annotations

import asyncio
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
            # Never advance by less than a microsecond: at t≈1000 s a float step of ~1e-13
            # may not change the clock at all, and the loop would spin on that timer forever.
            self._loop.advance(max(timeout, 1e-6))
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose time jumps to the next timer when idle."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual = 1000.0
        self._executor_jobs = 0
        self._selector = _VirtualSelector(self, self._selector)  # type: ignore[has-type]

    def time(self) -> float:
        return self._virtual

    def advance(self, seconds: float) -> None:
        self._virtual += seconds

    @property
    def executor_busy(self) -> bool:
        return self._executor_jobs > 0

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
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
