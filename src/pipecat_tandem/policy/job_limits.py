#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Per-session caps on background jobs: how many at once, how many per minute.

A model that keeps delegating (an echo of injected text, a loop on its own
results) must not turn one call into dozens of jobs. The limiter is pure and
synchronous: the caller passes the session clock's time, so tests run it on
virtual time.
"""

from __future__ import annotations

import math
from collections import deque


class JobLimits:
    """Refuses a new job when too many run at once or too many started recently.

    Args:
        max_running: Most jobs queued or running at the same time.
        max_per_window: Most jobs started within any ``window_s`` seconds.
        window_s: Length of the sliding window (default one minute).

    Example::

        limits = JobLimits(max_running=4, max_per_window=10)
        reason = limits.refusal(now=12.0, running=2)
        if reason is None:
            limits.record(now=12.0)
    """

    def __init__(
        self, *, max_running: int = 4, max_per_window: int = 10, window_s: float = 60.0
    ) -> None:
        if not isinstance(max_running, int) or max_running < 1:
            raise ValueError(f"max_running must be an integer >= 1, not {max_running!r}")
        if not isinstance(max_per_window, int) or max_per_window < 1:
            raise ValueError(f"max_per_window must be an integer >= 1, not {max_per_window!r}")
        if not isinstance(window_s, int | float) or not math.isfinite(window_s) or window_s <= 0:
            raise ValueError(f"window_s must be a finite number > 0, not {window_s!r}")
        self.max_running = max_running
        self.max_per_window = max_per_window
        self.window_s = float(window_s)
        self._starts: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self._starts and now - self._starts[0] >= self.window_s:
            self._starts.popleft()

    def refusal(self, *, now: float, running: int) -> str | None:
        """Why a new job may not start now, in words fit to say aloud; None if it may.

        Args:
            now: The session clock's time.
            running: Jobs of the session queued or running now.
        """
        if running >= self.max_running:
            return "too many tasks at once; wait for one to finish before starting another"
        self._forget(now)
        if len(self._starts) >= self.max_per_window:
            wait = max(1, math.ceil(self._starts[0] + self.window_s - now))
            return f"too many tasks in a short time; try again in {wait} seconds"
        return None

    def record(self, *, now: float) -> None:
        """Count a job that was started at ``now``."""
        self._forget(now)
        self._starts.append(now)
