#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""NowView: the compact live "now" text the interaction model sees every turn.

The interaction model is time-aware only if it is told the time. Each turn it gets a
short line such as::

    [now 03:12.4] user silent 4.2s; jobs: j1 "weather in Paris" 12s, j2 "book..." 3s;
    cues: visual_change 2.0s ago, repetition=3 0.4s ago

Kept under ``max_chars`` (default 400): task texts are shortened, then the oldest cues
and the excess jobs are summarized as "+N more".

A local model pays for every token of the view at each turn (its prompt cache holds
the history, not a line that changes every turn): ``only_when_informative`` leaves the
view out while no job runs and no cue is recent.

The user's own speech cues (``speech_onset``/``speech_offset``) are not shown: the
transcript and "user silent" already say it, and in a call they fire at every turn, so
they made the view "informative" on every turn and cost the 0.5B ~50 prompt tokens
(~0.3 s) of each reply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["NOW_PREFIX", "NowView", "RecentCue", "SPEECH_CUES", "is_now_message"]

#: Every rendered view starts with this.
NOW_PREFIX = "[now "

#: Cue kinds the view leaves out by default: the user's turns, which the model sees.
SPEECH_CUES = frozenset({"speech_onset", "speech_offset"})


def is_now_message(message: Any) -> bool:
    """Whether a context message is a now view (the awareness processor's)."""
    return (
        isinstance(message, dict)
        and message.get("role") in ("developer", "user", "system")
        and str(message.get("content", "")).startswith(NOW_PREFIX)
    )


@dataclass(frozen=True)
class RecentCue:
    """A cue as the now-view shows it.

    Parameters:
        kind: Cue kind (``visual_change``, ``repetition``...).
        time: Session time of the cue, in seconds.
        value: The cue's value (shown for kinds where a number means something).
    """

    kind: str
    time: float
    value: float = 0.0


# Kinds whose value is worth showing, with its unit.
_VALUED = {"repetition": "", "periodic_motion": "s period"}


def _clock(t: float) -> str:
    minutes, seconds = divmod(max(t, 0.0), 60.0)
    return f"{int(minutes):02d}:{seconds:04.1f}"


def _secs(s: float) -> str:
    s = max(s, 0.0)
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def _short(text: str, limit: int) -> str:
    text = " ".join(str(text).split()).replace('"', "'")
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


class NowView:
    """Render the "now" line (see the module docstring).

    Example::

        view = NowView()
        view.render(now=192.4, user_silent_for=4.2, jobs=[("j1", "weather", 12.0)])
    """

    def __init__(
        self,
        *,
        max_chars: int = 400,
        max_jobs: int = 3,
        max_cues: int = 4,
        cue_horizon: float = 30.0,
        task_chars: int = 40,
        only_when_informative: bool = False,
        hidden_cues: Iterable[str] = SPEECH_CUES,
    ) -> None:
        """Create a renderer.

        Args:
            max_chars: Hard upper bound of the rendered text.
            max_jobs: Jobs listed by name; more are summarized.
            max_cues: Most recent cues listed.
            cue_horizon: Cues older than this many seconds are left out.
            task_chars: Task texts are shortened to this many characters.
            only_when_informative: Render "" while no job runs and no cue is
                within ``cue_horizon`` (the clock alone is left out).
            hidden_cues: Cue kinds never shown (default: the user's speech cues).

        Raises:
            ValueError: On non-positive limits.
        """
        if max_chars < 60 or max_jobs < 0 or max_cues < 0 or task_chars < 8:
            raise ValueError("need max_chars >= 60, task_chars >= 8, non-negative counts")
        self.max_chars, self.max_jobs, self.max_cues = max_chars, max_jobs, max_cues
        self.cue_horizon, self.task_chars = cue_horizon, task_chars
        self.only_when_informative = only_when_informative
        if isinstance(hidden_cues, str):
            raise ValueError("hidden_cues must be a collection of cue kinds, not one string")
        self.hidden_cues = frozenset(hidden_cues)

    def render(
        self,
        *,
        now: float,
        user_silent_for: float | None = None,
        user_speaking: bool = False,
        jobs: Iterable[tuple[str, str, float]] = (),
        cues: Iterable[RecentCue | tuple[str, float, float]] = (),
    ) -> str:
        """Render the line.

        Args:
            now: Session time in seconds.
            user_silent_for: Seconds since the user last spoke (``None``: not yet).
            user_speaking: Whether the user is speaking right now.
            jobs: Running background jobs as ``(job_id, task, seconds_running)``.
            cues: Recent cues (``RecentCue`` or ``(kind, time, value)``), any order.

        Returns:
            The text, at most ``max_chars`` characters ("" when
            ``only_when_informative`` and there is nothing to tell).

        Raises:
            ValueError: If ``now`` is not a finite number.
        """
        if not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError(f"now must be a finite number of seconds, got {now!r}")
        head = f"{NOW_PREFIX}{_clock(now)}]"
        if user_speaking:
            head += " user speaking"
        elif user_silent_for is not None and math.isfinite(user_silent_for):
            head += f" user silent {_secs(user_silent_for)}"
        job_list = [j for j in jobs if len(j) == 3]
        cue_list = sorted(
            (c if isinstance(c, RecentCue) else RecentCue(*c) for c in cues),
            key=lambda c: c.time,
            reverse=True,
        )
        cue_list = [
            c
            for c in cue_list
            if 0 <= now - c.time <= self.cue_horizon and c.kind not in self.hidden_cues
        ]
        if self.only_when_informative and not job_list and not cue_list:
            return ""
        for task_chars, n_cues in ((self.task_chars, self.max_cues), (16, 2), (8, 1), (8, 0)):
            text = head + self._jobs(job_list, task_chars) + self._cues(cue_list[:n_cues], now)
            if len(text) <= self.max_chars:
                return text
        return text[: self.max_chars - 1] + "…"

    def _jobs(self, jobs: Sequence[tuple[str, str, float]], task_chars: int) -> str:
        if not jobs:
            return "; no background jobs"
        shown = [
            f'{_short(str(jid), 12)} "{_short(task, task_chars)}" {_secs(float(secs))}'
            for jid, task, secs in jobs[: self.max_jobs]
        ]
        more = f" +{len(jobs) - self.max_jobs} more" if len(jobs) > self.max_jobs else ""
        return "; jobs: " + ", ".join(shown) + more

    def _cues(self, cues: Sequence[RecentCue], now: float) -> str:
        if not cues:
            return ""
        parts = []
        for c in cues:
            name = _short(c.kind, 20)
            if c.kind in _VALUED:
                name += f"={c.value:g}{_VALUED[c.kind]}"
            parts.append(f"{name} {_secs(now - c.time)} ago")
        return "; cues: " + ", ".join(parts)
