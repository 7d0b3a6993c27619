"""What arrived from the bot, frame by frame, with the time each frame arrived.

Pure bookkeeping (no I/O): the peer appends decoded frames; the grading reads
speech segments and their audio back. Times are ``time.monotonic()`` on the peer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: RMS (int16) above which a 20 ms frame counts as the bot speaking. The bot's
#: silence is digital zeros and Opus's comfort noise stays far below this.
LOUD_RMS = 300.0

#: A quieter stretch shorter than this does not split one utterance in two
#: (the pauses between the bot's sentences).
MERGE_GAP_S = 0.6


@dataclass(frozen=True)
class Segment:
    """One stretch of bot speech: first and last loud frame, and where its samples are."""

    start: float
    end: float
    first: int
    last: int

    @property
    def duration(self) -> float:
        """Seconds from the first to the end of the last loud frame."""
        return self.end - self.start


class BotRecording:
    """The bot's audio as the caller received it."""

    def __init__(self, sample_rate: int = 48000) -> None:
        self.sample_rate = sample_rate
        self._times: list[float] = []
        self._rms: list[float] = []
        self._frames: list[np.ndarray] = []

    def add(self, arrived: float, samples: np.ndarray) -> None:
        """One decoded mono int16 frame that arrived at ``arrived``."""
        if samples.ndim != 1:
            raise ValueError(f"a recorded frame is mono 1-D, got shape {samples.shape}")
        if self._times and arrived < self._times[-1]:
            arrived = self._times[-1]  # the clock is monotonic; decoding order is arrival order
        x = samples.astype(np.float32)
        self._times.append(arrived)
        self._rms.append(float(np.sqrt(np.mean(x * x))) if len(x) else 0.0)
        self._frames.append(samples.astype(np.int16))

    @property
    def frames(self) -> int:
        """How many frames arrived."""
        return len(self._times)

    def last_loud(self) -> float | None:
        """When the last frame of bot speech arrived, if any did."""
        for t, rms in zip(reversed(self._times), reversed(self._rms), strict=True):
            if rms > LOUD_RMS:
                return t
        return None

    def first_loud_after(self, t: float) -> float | None:
        """Arrival of the first loud frame at or after ``t``."""
        for when, rms in zip(self._times, self._rms, strict=True):
            if when >= t and rms > LOUD_RMS:
                return when
        return None

    def loud_between(self, t0: float, t1: float) -> float:
        """Seconds of bot speech that arrived between ``t0`` and ``t1``."""
        pairs = zip(self._times, self._rms, strict=True)
        return 0.02 * sum(1 for when, rms in pairs if t0 <= when < t1 and rms > LOUD_RMS)

    def segments(self) -> list[Segment]:
        """Stretches of bot speech, merged across pauses shorter than :data:`MERGE_GAP_S`."""
        out: list[Segment] = []
        start = end = -1.0
        first = last = -1
        for i, (when, rms) in enumerate(zip(self._times, self._rms, strict=True)):
            if rms <= LOUD_RMS:
                continue
            if first >= 0 and when - end <= MERGE_GAP_S:
                end, last = when, i
                continue
            if first >= 0:
                out.append(Segment(start, end + 0.02, first, last))
            start = end = when
            first = last = i
        if first >= 0:
            out.append(Segment(start, end + 0.02, first, last))
        return out

    def audio(self, segment: Segment, pad_frames: int = 10) -> tuple[np.ndarray, float]:
        """A segment's samples (with a little context) and the arrival time of the first."""
        lo = max(0, segment.first - pad_frames)
        hi = min(len(self._frames), segment.last + pad_frames + 1)
        return np.concatenate(self._frames[lo:hi]), self._times[lo]
