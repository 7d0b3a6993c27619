#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The session clock: one monotonic time base per session.

Every timestamp the plugin writes (frames, event log, metrics) is *session time*:
seconds since the clock's epoch. The clock is injectable so tests run on virtual
time: :class:`ManualClock` is advanced by hand (policy tests without an event
loop) and :class:`LoopClock` follows the running asyncio loop's ``time()``, which a
virtual-time loop in the tests can jump forward.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class SessionClock(Protocol):
    """Anything with ``now()`` returning seconds since the session started."""

    def now(self) -> float:
        """Seconds since the session epoch (monotonic, never decreasing)."""
        ...


class MonotonicClock:
    """Wall-clock session time from ``time.monotonic()``.

    Example::

        clock = LoopClock()
        clock.now()  # 0.000012
    """

    def __init__(self) -> None:
        """Start the session epoch now."""
        self._epoch = time.monotonic()

    def now(self) -> float:
        """Seconds since construction."""
        return time.monotonic() - self._epoch


class LoopClock:
    """Session time from the running asyncio loop's ``time()``.

    The epoch is taken at the first call made inside a running loop, so the same
    clock follows a virtual-time loop in tests and the real loop in production.
    """

    def __init__(self) -> None:
        """Create a clock whose epoch is fixed on first use."""
        self._epoch: float | None = None

    def now(self) -> float:
        """Seconds since the first call."""
        try:
            t = asyncio.get_running_loop().time()
        except RuntimeError:
            if self._epoch is None:
                return 0.0  # not started yet: the epoch is fixed inside the loop
            t = time.monotonic()
        if self._epoch is None:
            self._epoch = t
        return max(0.0, t - self._epoch)


class ManualClock:
    """A clock moved by hand, for tests of the policy classes.

    Example::

        clock = ManualClock()
        clock.advance(0.2)
        clock.now()  # 0.2
    """

    def __init__(self, start: float = 0.0) -> None:
        """Create a clock reading ``start``."""
        self._t = float(start)

    def now(self) -> float:
        """The current virtual time."""
        return self._t

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a session clock never goes backwards")
        self._t += seconds
        return self._t

    def set(self, t: float) -> None:
        """Jump to ``t`` (not earlier than now)."""
        if t < self._t:
            raise ValueError("a session clock never goes backwards")
        self._t = float(t)
