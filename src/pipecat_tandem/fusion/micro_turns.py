#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Micro-turn windowing: cut timed audio and images into aligned fixed windows.

:class:`MicroTurnAssembler` is the pure core of the ingest stage. Time is *session
time* in seconds; window ``k`` covers ``[k * window, (k + 1) * window)`` (so windows of
every session are aligned to the clock's epoch). Audio is 16 kHz mono ``int16`` and is
addressed by absolute sample index ``round(t * sample_rate)``, so a window always holds
exactly ``window * sample_rate`` samples.

Placement:

* Audio with an explicit ``start`` is put exactly there. Without one, a stream's chunk
  continues the previous chunk of the same stream (transports deliver contiguous audio)
  unless that would put it more than ``jitter`` seconds *behind* its arrival (samples
  were lost: the hole stays silent and flagged) or more than ``max_skew`` *ahead* (the
  stream restarted); then it is re-anchored to end at its arrival time.
* Images are placed at their time. At most ``max_fps`` images are kept per second:
  time is cut into ``1 / max_fps`` slots and the latest image of each slot wins (the
  view as it is when the window closes: a scene cut in the middle of a slot is in
  this window, not the next one).
* A window is emitted by :meth:`MicroTurnAssembler.poll` once ``now`` is ``max_delay``
  past its end, or (``early``) as soon as ``now`` is past its end and its audio is all
  there: when images are timed by their arrival, nothing can come for it any more, and
  a cue in it (the view changed) reaches the user ``max_delay`` sooner. Anything that
  arrives for an emitted window is dropped and counted (``late``); anything more than
  ``max_ahead`` seconds past ``now`` is dropped and counted (``future``). Missing
  audio is zero-filled and flagged (``audio_gap``).
* Windows keep coming, silent and flagged, while ``poll`` is called without input (the
  stream never has "turns"); a backlog longer than ``max_backlog`` windows (e.g. after
  the process was suspended) is skipped and counted instead of emitted in a burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = ["IngestStats", "MicroTurn", "MicroTurnAssembler"]

T = TypeVar("T")


@dataclass
class MicroTurn(Generic[T]):
    """One emitted window.

    Parameters:
        index: Window number ``k`` (``start == k * duration``).
        start: Session time of the window start, in seconds.
        duration: Window length in seconds.
        audio: ``int16`` mono samples, always ``duration * sample_rate`` of them.
        audio_gap: Whether any sample was missing and zero-filled.
        missing_samples: How many samples were zero-filled.
        images: ``(session_time, payload)`` of the kept images, in time order.
    """

    index: int
    start: float
    duration: float
    audio: npt.NDArray[np.int16]
    audio_gap: bool
    missing_samples: int
    images: list[tuple[float, T]] = field(default_factory=list)


@dataclass
class IngestStats:
    """Counters of what the assembler did with its input (nothing is lost silently)."""

    audio_chunks: int = 0
    audio_samples_late: int = 0
    audio_samples_future: int = 0
    audio_resyncs: int = 0
    images: int = 0
    images_late: int = 0
    images_future: int = 0
    images_rate_capped: int = 0
    windows_emitted: int = 0
    windows_with_gap: int = 0
    windows_skipped: int = 0


class _Window(Generic[T]):
    __slots__ = ("audio", "filled", "images")

    def __init__(self, n: int) -> None:
        self.audio = np.zeros(n, dtype=np.int16)
        self.filled = np.zeros(n, dtype=bool)
        self.images: dict[int, tuple[float, T]] = {}  # rate slot -> (time, payload)


class MicroTurnAssembler(Generic[T]):
    """Align timed audio chunks and images into micro-turns (see the module docstring).

    Example::

        asm = MicroTurnAssembler(window=0.2)
        asm.add_audio(pcm16k, arrival=clock.now())
        asm.add_image(rgb_bytes, time=clock.now())
        for turn in asm.poll(clock.now()):
            ...
    """

    def __init__(
        self,
        *,
        window: float = 0.2,
        sample_rate: int = 16000,
        max_fps: float | None = 5.0,
        max_delay: float = 0.1,
        jitter: float = 0.08,
        max_skew: float = 0.5,
        max_ahead: float = 2.0,
        max_backlog: int = 50,
        early: bool = True,
    ) -> None:
        """Create an assembler.

        Args:
            window: Micro-turn length in seconds (its samples must be a whole number).
            sample_rate: Audio rate of the chunks given to :meth:`add_audio`.
            max_fps: Images kept per second (``None`` keeps all).
            max_delay: How long after its end a window waits for late input.
            jitter: How far behind its arrival a contiguous chunk may fall before the
                stream is re-anchored (must not exceed ``max_delay``).
            max_skew: How far ahead of its arrival contiguous audio may run.
            max_ahead: Input timed further than this past ``now`` is dropped.
            max_backlog: Most windows one :meth:`poll` emits; older ones are skipped.
            early: Emit a window once its end has passed and its audio is complete,
                without waiting ``max_delay`` (turn it off when images carry their
                own capture times, which can arrive after their window's audio).

        Raises:
            ValueError: On an inconsistent configuration.
        """
        n = window * sample_rate
        if window <= 0 or sample_rate <= 0 or abs(n - round(n)) > 1e-6:
            raise ValueError("window * sample_rate must be a positive whole number of samples")
        if max_fps is not None and max_fps <= 0:
            raise ValueError("max_fps must be positive or None")
        if max_delay < 0 or not 0 <= jitter <= max_delay:
            raise ValueError("need max_delay >= 0 and 0 <= jitter <= max_delay")
        if max_skew < 0 or max_ahead <= 0 or max_backlog < 1:
            raise ValueError("max_skew >= 0, max_ahead > 0 and max_backlog >= 1 required")
        self.window = float(window)
        self.sample_rate = int(sample_rate)
        self.n = int(round(n))
        self.max_fps = max_fps
        self.max_delay = float(max_delay)
        self.jitter = float(jitter)
        self.max_skew = float(max_skew)
        self.max_ahead = float(max_ahead)
        self.max_backlog = int(max_backlog)
        self.early = bool(early)
        self.stats = IngestStats()
        self._windows: dict[int, _Window[T]] = {}
        self._next_emit: int | None = None  # first window not yet emitted
        self._emitted_any = False
        self._expected: dict[str, int] = {}  # stream -> next contiguous sample index

    @property
    def next_index(self) -> int | None:
        """Index of the next window to be emitted (``None`` before any input)."""
        return self._next_emit

    def _window(self, k: int) -> _Window[T]:
        w = self._windows.get(k)
        if w is None:
            w = self._windows[k] = _Window(self.n)
        return w

    def _open_from(self, k: int) -> None:
        # Before the first emission the timeline may still start earlier.
        if self._next_emit is None or (not self._emitted_any and k < self._next_emit):
            self._next_emit = k

    def add_audio(
        self,
        pcm: npt.ArrayLike,
        *,
        arrival: float,
        start: float | None = None,
        stream: str = "",
    ) -> int:
        """Place a chunk of 16 kHz mono audio.

        Args:
            pcm: 1-D ``int16`` samples at ``sample_rate``.
            arrival: Session time the chunk arrived (its end, for contiguous streams).
            start: Explicit session time of the first sample (out-of-order sources).
            stream: Name of the source stream (contiguity is tracked per stream).

        Returns:
            How many samples were placed (the rest were late or too far ahead).

        Raises:
            ValueError: If ``pcm`` is not a 1-D ``int16`` array or a time is not finite.
        """
        x = np.asarray(pcm)
        if x.ndim != 1 or x.dtype != np.int16:
            raise ValueError(f"audio must be 1-D int16, got {x.dtype} with shape {x.shape}")
        if not math.isfinite(arrival) or (start is not None and not math.isfinite(start)):
            raise ValueError("audio times must be finite numbers")
        if x.size == 0:
            return 0
        self.stats.audio_chunks += 1
        if start is not None:
            s0 = int(round(start * self.sample_rate))
        else:
            anchor = int(round(arrival * self.sample_rate)) - x.size
            expected = self._expected.get(stream)
            lag = self.jitter * self.sample_rate
            lead = self.max_skew * self.sample_rate
            if expected is None or expected < anchor - lag or expected > anchor + lead:
                if expected is not None:
                    self.stats.audio_resyncs += 1
                s0 = max(anchor, 0)
            else:
                s0 = expected
            self._expected[stream] = s0 + x.size
        return self._place_audio(x, s0, arrival)

    def _place_audio(self, x: npt.NDArray[np.int16], s0: int, now: float) -> int:
        if s0 < 0:  # samples before the session epoch cannot be placed
            self.stats.audio_samples_late += min(-s0, x.size)
            x, s0 = x[-s0:], 0
            if x.size == 0:
                return 0
        limit = int((now + self.max_ahead) * self.sample_rate)
        s1 = s0 + x.size
        if s1 > limit:
            cut = max(0, limit - s0)
            self.stats.audio_samples_future += x.size - cut
            x, s1 = x[:cut], s0 + cut
            if x.size == 0:
                return 0
        self._open_from(s0 // self.n)
        assert self._next_emit is not None
        first_open = self._next_emit * self.n
        if s0 < first_open:
            late = min(first_open - s0, x.size)
            self.stats.audio_samples_late += late
            x, s0 = x[late:], s0 + late
        placed = x.size
        pos = s0
        while pos < s1:
            k = pos // self.n
            off = pos - k * self.n
            take = min(self.n - off, s1 - pos)
            w = self._window(k)
            w.audio[off : off + take] = x[pos - s0 : pos - s0 + take]
            w.filled[off : off + take] = True
            pos += take
        return placed

    def add_image(self, payload: T, *, time: float, now: float | None = None) -> str:
        """Place an image taken (or received) at session time ``time``.

        Args:
            payload: Anything; it is handed back in :attr:`MicroTurn.images`.
            time: Session time of the image.
            now: Current session time (defaults to ``time``), for the ``max_ahead`` check.

        Returns:
            ``"placed"``, ``"late"``, ``"future"`` or ``"rate_capped"``.

        Raises:
            ValueError: If a time is not finite.
        """
        if not math.isfinite(time) or (now is not None and not math.isfinite(now)):
            raise ValueError("image times must be finite numbers")
        self.stats.images += 1
        now = time if now is None else now
        if time > now + self.max_ahead:
            self.stats.images_future += 1
            return "future"
        time = max(time, 0.0)
        k = int(round(time * self.sample_rate)) // self.n
        self._open_from(k)
        assert self._next_emit is not None
        if k < self._next_emit:
            self.stats.images_late += 1
            return "late"
        w = self._window(k)
        slot = int(math.floor(time * self.max_fps)) if self.max_fps is not None else len(w.images)
        prev = w.images.get(slot)
        if prev is not None and prev[0] > time:  # an older image, out of order
            self.stats.images_rate_capped += 1
            return "rate_capped"
        if prev is not None:  # a newer image of the same slot replaces it
            self.stats.images_rate_capped += 1
        if self.max_fps is not None and self._slot_taken_elsewhere(k, slot):
            self.stats.images_rate_capped += 1
            return "rate_capped"
        w.images[slot] = (time, payload)
        return "placed"

    def _slot_taken_elsewhere(self, k: int, slot: int) -> bool:
        # A rate slot can straddle two windows when 1 / max_fps > window.
        for j in (k - 1, k + 1):
            other = self._windows.get(j)
            if other is not None and slot in other.images:
                return True
        return False

    def poll(self, now: float) -> list[MicroTurn[T]]:
        """Emit every window whose end is at least ``max_delay`` before ``now``."""
        if self._next_emit is None or not math.isfinite(now):
            return []
        # The epsilon keeps 0.3 - 0.1 from flooring to the sample before 0.2 s.
        due_end = int(math.floor((now - self.max_delay) * self.sample_rate + 1e-6)) // self.n
        if self.early:
            # Complete windows that have ended go now, in order (the first one that is
            # not complete holds the later ones back).
            ended = int(math.floor(now * self.sample_rate + 1e-6)) // self.n
            k = max(due_end, self._next_emit)
            while k < ended:
                w = self._windows.get(k)
                if w is None or not w.filled.all():
                    break
                k += 1
            due_end = max(due_end, k)
        return self._emit_until(due_end)

    def flush(self) -> list[MicroTurn[T]]:
        """Emit every window up to the last one holding input (at end of stream)."""
        if self._next_emit is None or not self._windows:
            return []
        return self._emit_until(max(self._windows) + 1)

    def _emit_until(self, stop: int) -> list[MicroTurn[T]]:
        assert self._next_emit is not None
        if stop - self._next_emit > self.max_backlog:
            skip_to = stop - self.max_backlog
            self.stats.windows_skipped += skip_to - self._next_emit
            for k in [k for k in self._windows if k < skip_to]:
                del self._windows[k]
            self._next_emit = skip_to
        out: list[MicroTurn[T]] = []
        for k in range(self._next_emit, stop):
            w = self._windows.pop(k, None) or _Window[T](self.n)
            missing = int(self.n - np.count_nonzero(w.filled))
            turn = MicroTurn(
                index=k,
                start=k * self.window,
                duration=self.window,
                audio=w.audio,
                audio_gap=missing > 0,
                missing_samples=missing,
                images=sorted(w.images.values(), key=lambda item: item[0]),
            )
            out.append(turn)
            self.stats.windows_emitted += 1
            self.stats.windows_with_gap += int(missing > 0)
        if stop > self._next_emit:
            self._next_emit = stop
            self._emitted_any = True
        return out
