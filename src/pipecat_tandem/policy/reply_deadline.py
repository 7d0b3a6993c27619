#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""When a reply the interaction model owes is overdue.

pipecat puts no time limit on an LLM request: a provider that accepts the
request and never streams a token (a stalled socket, a wedged local runtime)
holds the service's frame queue for good, so the turn gets no answer and every
later turn queues behind it. The call goes silent until the user happens to
barge in.

:class:`ReplyDeadline` tracks the requests that went into the model and says
when the one being answered has waited longer than ``timeout_s`` for its first
output (a text token, a tool call, or the end of an empty reply). Requests are
answered in order: while a reply streams, the next request's wait starts only
when that reply ends, so a long answer never makes the request behind it look
hung.

Pure and synchronous: the caller passes the session clock's time and owns the
timer.
"""

from __future__ import annotations

import math

__all__ = ["ReplyDeadline"]


class ReplyDeadline:
    """Tracks the interaction model's outstanding requests and their first-output deadline.

    Args:
        timeout_s: Longest wait from a request reaching the model (or the reply
            before it ending) to the first output of its reply.

    Raises:
        TypeError: ``timeout_s`` is not a number.
        ValueError: ``timeout_s`` is not finite and > 0.

    Example::

        deadline = ReplyDeadline(timeout_s=10.0)
        deadline.requested(now=1.0)
        deadline.expire(now=11.0)  # True: the reply is overdue, once
    """

    def __init__(self, *, timeout_s: float = 10.0) -> None:
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float):
            raise TypeError(f"timeout_s must be a number of seconds, got {timeout_s!r}")
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be finite and > 0, got {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self._pending = 0  # requests sent and not yet ended
        self._since: float | None = None  # when the reply being awaited started to wait
        #: Requests seen, and how many of them ran out of time.
        self.requests = 0
        self.expired = 0

    @property
    def waiting(self) -> bool:
        """Whether a reply's first output is being waited for."""
        return self._since is not None

    @property
    def pending(self) -> int:
        """Requests sent to the model whose reply has not ended."""
        return self._pending

    def deadline(self) -> float | None:
        """Session time at which the awaited reply is overdue, or None if none is awaited."""
        return None if self._since is None else self._since + self.timeout_s

    def requested(self, now: float) -> None:
        """A context went into the model at ``now``."""
        self.requests += 1
        self._pending += 1
        if self._pending == 1:
            self._since = now
        # Otherwise it queues behind a reply in progress: its wait starts when that
        # reply ends (or already runs, if that reply has not produced anything yet).

    def output(self) -> None:
        """The reply being awaited produced its first output (text, a tool call)."""
        self._since = None

    def ended(self, now: float) -> None:
        """A reply ended (also one that failed): the next queued request starts waiting."""
        self._pending = max(0, self._pending - 1)
        self._since = now if self._pending else None

    def interrupted(self) -> None:
        """The model's work was interrupted: pending requests were flushed with it."""
        self._pending = 0
        self._since = None

    def expire(self, now: float) -> bool:
        """Whether the awaited reply is overdue at ``now``; True once per hung reply.

        An overdue reply is given up (with every request queued behind the hung
        one: the caller interrupts the model, which flushes them).
        """
        due = self.deadline()
        if due is None or now < due:
            return False
        self.expired += 1
        self.interrupted()
        return True
