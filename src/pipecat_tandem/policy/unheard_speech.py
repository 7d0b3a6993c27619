#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Speech the VAD heard whose transcript never came: a dead STT, not a cough.

A streaming STT (a socket service: audio out, transcripts back on another task)
that stops answering raises nothing: its ``run_stt`` returns at once, so the
per-step time limit does not apply. The user aggregator then ends the turn with
no words, exactly as it ends a cough, and leaves it unanswered: the user spoke
and the call went silent.

:class:`UnheardSpeech` tells the two apart by what a cough cannot be: speech long
enough to hold words (``min_speech_s`` of voice activity in the turn) and no
transcript at all, final or interim, within ``timeout_s`` of the voice ending.
A short burst (a cough, a click, "mm") stays quiet, as does a turn the STT
answered, even late. Each such turn is reported once.

A turn that started while the bot was speaking is left to pipecat's empty-turn
recovery when that is on (``quiet_when_interrupting``): the model already asks
the user to repeat, and a second sentence would say it twice.

Pure and synchronous: the caller passes the session clock's time.
"""

from __future__ import annotations

import math

__all__ = ["UnheardSpeech"]


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return float(value)


class UnheardSpeech:
    """Tracks voice activity against transcripts; says when a turn went unheard.

    Args:
        timeout_s: Longest wait, after the voice ends, for any transcript.
        min_speech_s: Least voice activity in a turn for it to hold words (a
            cough or a click is shorter; so is VAD's own stop padding).
        quiet_when_interrupting: Leave turns that began over the bot to the
            aggregator's empty-turn recovery.

    Raises:
        TypeError: A duration is not a number.
        ValueError: A duration is not finite and >= 0 (``timeout_s`` must be > 0).

    Example::

        unheard = UnheardSpeech(timeout_s=4.0)
        unheard.speech_started(1.0)
        unheard.speech_stopped(2.5)
        unheard.due(6.5)  # True: 1.5 s of voice, no transcript in 4 s
    """

    def __init__(
        self,
        *,
        timeout_s: float = 4.0,
        min_speech_s: float = 0.8,
        quiet_when_interrupting: bool = True,
    ) -> None:
        self.timeout_s = _seconds("timeout_s", timeout_s)
        if self.timeout_s == 0:
            raise ValueError("timeout_s must be > 0")
        self.min_speech_s = _seconds("min_speech_s", min_speech_s)
        self.quiet_when_interrupting = quiet_when_interrupting
        self._open = False  # a turn with no transcript yet
        self._speech = 0.0  # voice activity in it, seconds
        self._span_start: float | None = None  # the voice span in progress
        self._last_stop: float | None = None
        self._over_bot = False
        #: Turns reported unheard, and short turns with no words left quiet.
        self.unheard = 0
        self.quiet = 0

    def speech_started(self, now: float, *, bot_speaking: bool = False) -> None:
        """The VAD heard voice start at ``now`` (repeats while speaking are ignored)."""
        if self._span_start is not None:
            return
        if not self._open:
            self._open = True
            self._speech = 0.0
            self._over_bot = bot_speaking
        self._span_start = now

    def speech_stopped(self, now: float) -> None:
        """The VAD heard voice stop at ``now``."""
        if self._span_start is None:
            return
        self._speech += max(0.0, now - self._span_start)
        self._span_start = None
        self._last_stop = now

    def transcript(self) -> None:
        """The STT wrote words (final or interim): the turn was heard."""
        self._open = False
        # Voice still going belongs to the next turn (the STT is alive for it too).
        if self._span_start is not None:
            self._open = True
            self._speech = 0.0

    def deadline(self) -> float | None:
        """When the open turn counts as unheard, or None if it cannot."""
        if not self._open or self._span_start is not None or self._last_stop is None:
            return None
        return self._last_stop + self.timeout_s

    def due(self, now: float) -> bool:
        """Whether the open turn went unheard at ``now``: True once per turn."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self._open = False  # settled either way: said once, or left quiet
        if self._speech < self.min_speech_s:
            self.quiet += 1  # a cough: nothing to say
            return False
        if self._over_bot and self.quiet_when_interrupting:
            return False  # pipecat's empty-turn recovery answers this one
        self.unheard += 1
        return True
