#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Natural turn-gap detection. No I/O, no event loop.

A *natural turn gap* is a moment when the user is not speaking (their turn is
complete), the bot is not speaking, no interaction-model response is in flight,
and both sides have been quiet for at least ``min_gap_s``.
"""

from __future__ import annotations

import math


class GapDetector:
    """Tracks who is speaking and since when everyone has been quiet.

    Speaking-state events may arrive twice (pipecat sends bot-speaking frames both
    upstream and downstream) or out of order (a stop without a start); each is
    idempotent and a stop without a start is harmless.

    Args:
        min_gap_s: Shared quiet needed before a gap counts as natural.
        start: Session time the session started (counts as quiet since then).

    Example::

        gap = GapDetector(min_gap_s=0.5)
        gap.user_started(1.0)
        gap.user_stopped(2.0)
        gap.is_gap(2.4)  # False: only 0.4 s of quiet
        gap.is_gap(2.5)  # True
    """

    def __init__(self, *, min_gap_s: float = 0.5, start: float = 0.0) -> None:
        if not 0 <= min_gap_s < math.inf:
            # An infinite gap never comes: every result would wait forever.
            raise ValueError(f"min_gap_s must be a finite number >= 0, not {min_gap_s!r}")
        self.min_gap_s = float(min_gap_s)
        self.user_speaking = False
        self.bot_speaking = False
        self._responses = 0
        self._last_activity = float(start)

    @property
    def response_in_flight(self) -> bool:
        """Whether the interaction model is generating a response."""
        return self._responses > 0

    @property
    def idle(self) -> bool:
        """Nobody speaks and no response is being generated."""
        return not (self.user_speaking or self.bot_speaking or self.response_in_flight)

    def _touch(self, t: float) -> None:
        self._last_activity = max(self._last_activity, t)

    def user_started(self, t: float) -> None:
        """The user's turn started."""
        self.user_speaking = True
        self._touch(t)

    def user_stopped(self, t: float) -> None:
        """The user's turn ended."""
        self.user_speaking = False
        self._touch(t)

    def bot_started(self, t: float) -> None:
        """The bot started speaking."""
        self.bot_speaking = True
        self._touch(t)

    def bot_stopped(self, t: float) -> None:
        """The bot stopped speaking."""
        self.bot_speaking = False
        self._touch(t)

    def response_started(self, t: float) -> None:
        """The interaction model started a response."""
        self._responses = 1
        self._touch(t)

    def response_ended(self, t: float) -> None:
        """The interaction model finished (or abandoned) its response."""
        self._responses = 0
        self._touch(t)

    def quiet_since(self) -> float | None:
        """Session time since which everyone has been quiet, or None if not idle."""
        return self._last_activity if self.idle else None

    def gap_opens_at(self) -> float | None:
        """When the current quiet spell becomes a natural gap (None while not idle)."""
        since = self.quiet_since()
        return None if since is None else since + self.min_gap_s

    def is_gap(self, t: float) -> bool:
        """Whether ``t`` is inside a natural turn gap."""
        opens = self.gap_opens_at()
        return opens is not None and t >= opens
