#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Notices, from loudness alone, that an utterance has probably ended.

pipecat's VAD reports the end of speech only after ``stop_secs`` (0.2 s) of
quiet, and a segmented STT starts transcribing only then. :class:`SpeechEndTracker`
follows the loudness of the utterance in progress and says when its voice has
been quiet for a shorter time (0.1 s by default), so transcription can start
speculatively while the VAD is still waiting. If the voice comes back, the
speculation is simply not used.

"Voiced" is a frame no more than 26 dB below the loudest frame of the utterance
so far, which follows a quiet or a loud talker alike.
"""

from __future__ import annotations

import numpy as np
from pipecat.frames.frames import VADUserStoppedSpeakingFrame


def voice_ended_at(frame: VADUserStoppedSpeakingFrame) -> float:
    """When the voice went quiet (``time.time()``): the VAD reports it ``stop_secs`` later."""
    return frame.timestamp - (frame.stop_secs or 0.0)


def window_rms(samples: np.ndarray, window: int) -> np.ndarray:
    """RMS of each whole ``window`` of samples (a trailing partial window is left out)."""
    n = samples.size // window
    framed = samples[: n * window].astype(np.float64).reshape(n, window)
    return np.sqrt((framed**2).mean(axis=1))


def first_sound(
    samples: np.ndarray, sample_rate: int, *, level: float, relative: bool = False
) -> int | None:
    """The sample index of the first sound, or ``None`` when there is none.

    A sound is any 10 ms whose RMS reaches ``level``: in the samples' own units,
    or with ``relative``, as a fraction of the loudest 10 ms (silence has none).
    """
    window = max(1, sample_rate // 100)
    rms = window_rms(samples, window)
    if relative:
        loudest = float(rms.max(initial=0.0))
        if loudest <= 0.0:
            return None
        level *= loudest
    loud = np.nonzero(rms >= level)[0]
    return int(loud[0]) * window if loud.size else None


def sound_onset(
    samples: np.ndarray,
    sample_rate: int,
    *,
    level: float,
    keep_s: float,
    relative: bool = False,
) -> int:
    """Where to cut the quiet before the first sound, keeping ``keep_s`` of it.

    A sound is as in :func:`first_sound`.
    Returns a sample index: 0 when there is no sound, or less quiet than ``keep_s``.
    """
    start = first_sound(samples, sample_rate, level=level, relative=relative)
    return 0 if start is None else max(0, start - int(keep_s * sample_rate))


def next_segment_start(
    samples: np.ndarray,
    sample_rate: int,
    *,
    min_pause_s: float = 0.1,
    relative_level: float = 0.05,
) -> int:
    """Where the audio of a segment the VAD has just ended starts to belong to the next one.

    The VAD ends a segment after ``stop_secs`` of what it takes for quiet. When the
    user goes on after a short pause ("Hi there. How are you today?", ~0.15 s
    apart), it decides so while the next word's first frames, still too soft or
    too short for it, are coming in: a segmented STT that cuts there gives them to
    the ended segment and starts the next one mid-word ("ow are you today?"),
    which Whisper takes for no speech. The cut belongs in the segment's last
    pause: what follows it is carried over to the next segment.

    A pause is ``min_pause_s`` or more of 10 ms windows below ``relative_level``
    of the loudest one, after the segment's first sound (the quiet kept before the
    speech is not one). The cut is its middle, so a soft onset at its end goes
    with the next segment and a trailing pause is shared (quiet costs nothing).

    Args:
        samples: The segment's mono samples (any numeric dtype).
        sample_rate: Samples per second.
        min_pause_s: The shortest quiet that separates two stretches of speech.
        relative_level: A window is sound at this fraction of the loudest (0.05 = -26 dB).

    Returns:
        A sample index: ``samples.size`` when nothing is to be carried over (no
        sound, or no pause after it).

    Raises:
        ValueError: Bad ``sample_rate``, ``min_pause_s`` or ``relative_level``.
    """
    if sample_rate <= 0 or not min_pause_s > 0 or not 0 < relative_level < 1:
        raise ValueError("need sample_rate > 0, min_pause_s > 0 and 0 < relative_level < 1")
    window = max(1, sample_rate // 100)
    rms = window_rms(samples, window)
    peak = float(rms.max(initial=0.0))
    loud = np.flatnonzero(rms >= relative_level * peak) if peak > 0 else np.array([], int)
    if loud.size == 0:
        return int(samples.size)
    # Quiet runs after the first sound: between two sounds, and the trailing one.
    starts = np.append(loud[:-1] + 1, loud[-1] + 1)
    ends = np.append(loud[1:], rms.size)
    pauses = np.flatnonzero(ends - starts >= min_pause_s * sample_rate / window)
    if pauses.size == 0:
        return int(samples.size)
    last = pauses[-1]
    return int((starts[last] + ends[last]) // 2 * window)


class SpeechEndTracker:
    """Loudness bookkeeping for one utterance of 16-bit mono PCM (no I/O).

    Args:
        sample_rate: Samples per second of the PCM fed in.
        quiet_s: Quiet after the last voiced frame that counts as "probably ended".
        relative_level: A frame is voiced at this fraction of the loudest RMS so
            far (0.05 = -26 dB).

    Example::

        tracker = SpeechEndTracker(16000)
        tracker.feed(frame.audio)
        if tracker.probably_ended:
            start_transcribing(buffer_up_to=tracker.voiced_end)
    """

    def __init__(self, sample_rate: int, *, quiet_s: float = 0.1, relative_level: float = 0.05):
        if sample_rate <= 0 or quiet_s <= 0 or not 0 < relative_level < 1:
            raise ValueError("need sample_rate > 0, quiet_s > 0 and 0 < relative_level < 1")
        self._quiet_bytes = int(quiet_s * sample_rate) * 2
        self._relative_level = relative_level
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._peak = 0.0
        self._total = 0
        self._voiced_end = 0

    @property
    def voiced_end(self) -> int:
        """Bytes of the utterance up to the end of its last voiced frame (0 = none yet)."""
        return self._voiced_end

    @property
    def probably_ended(self) -> bool:
        """Whether there was voice and it has been quiet for ``quiet_s`` since."""
        return self._voiced_end > 0 and self._total - self._voiced_end >= self._quiet_bytes

    def should_start(self, last_start: int | None, last_running: bool) -> bool:
        """Whether to start an early run now.

        Args:
            last_start: ``voiced_end`` when the previous early run started (None: none yet).
            last_running: Whether that run is still going (one at a time).
        """
        return self.probably_ended and not last_running and last_start != self._voiced_end

    def feed(self, pcm: bytes) -> None:
        """Account for the next frame of the utterance (odd trailing bytes are ignored).

        Raises:
            TypeError: ``pcm`` is not bytes-like.
        """
        usable = len(pcm) - len(pcm) % 2
        if usable:
            samples = np.frombuffer(memoryview(pcm)[:usable], dtype="<i2").astype(np.float32)
            rms = float(np.sqrt(np.mean(samples * samples)))
            self._peak = max(self._peak, rms)
            self._total += usable
            if rms > 0 and rms >= self._relative_level * self._peak:
                self._voiced_end = self._total
