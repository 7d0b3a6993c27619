#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Don't start a reply over a caller who has just started talking again.

People pause 0.6-0.8 s between two sentences of one thought. Smart-turn calls the
first sentence complete, the reply is ready ~0.9 s after the voice stopped, and by
then the caller is 0.2 s into the next sentence: pipecat's VAD needs 0.2 s of voice
before it starts a user turn and interrupts the bot, so the caller hears the bot
start over them (twice in 44 turns of the conversation suite, 2026-12-05).

Loudness says the caller is talking again after 20 ms, long before the VAD does.
:class:`CallerSound` follows the loudness of the caller's audio;
:class:`ReplyHold` decides, when a reply's first audio is ready, whether to hold
it: only while the caller is sounding and the bot has not started this reply. A
held reply goes out once the caller has been quiet for ``quiet_s`` (a cough, a
click, a breath) or after ``max_hold_s`` (sound the VAD never calls speech), and is
dropped by the interruption that the VAD's user turn brings when it was speech.

A pause is not the end of a thought either: with ``min_quiet_s`` a reply's first
audio also waits until the caller has been quiet that long since their last
sound. A reply ready 0.7 s into a 0.7 s pause between two sentences would
otherwise start just as the caller goes on (the two spoke-over turns of the
2026-12-05 suite had ready replies, not sounding callers). A reply that starts
after the caller has been quiet that long, the normal case, is never delayed.
:data:`THOUGHT_PAUSE_S` (0.85 s) covers people's 0.6-0.8 s pauses plus the 20 ms the
caller's sound takes to register. (0.8 s did not help in a suite whose caller's
"0.7 s" pauses were 0.9 s as heard, piper's own padding added; the caller's pauses
are now what they say.)

Pure: no I/O, no event loop; times are session seconds passed in.
"""

from __future__ import annotations

import math

import numpy as np

#: How long a caller must have been quiet before a reply's first audio goes out:
#: longer than the 0.6-0.8 s people pause between two sentences of one thought.
THOUGHT_PAUSE_S = 0.85


class CallerSound:
    """Whether the caller is making sound, from their 16-bit mono PCM frames.

    A frame sounds when its RMS is at least ``relative_level`` of the loudest
    frame heard so far (the caller's voice, after a first word), at least
    ``noise_ratio`` times the noise floor (so a steady hum or a fan is not
    "sound"), and at least ``min_rms``.

    Args:
        relative_level: Fraction of the loudest RMS so far (0.05 = -26 dB).
        noise_ratio: How far above the noise floor a sound must be (4 = 12 dB).
        min_rms: Absolute floor in int16 units (100 = -50 dBFS).
        floor_rise_per_s: How fast the noise floor may rise, as a factor per second
            (it falls at once to any quieter frame); a steady hum stops counting
            as sound after ~2.5 s.

    Example::

        sound = CallerSound()
        sound.feed(frame.audio, now=clock.now())
        if sound.sounding(clock.now()): ...
    """

    #: Frames this close after the last sound still count as sounding (gaps
    #: between words, a 20 ms frame's own length).
    HANGOVER_S = 0.06

    def __init__(
        self,
        *,
        relative_level: float = 0.05,
        noise_ratio: float = 4.0,
        min_rms: float = 100.0,
        floor_rise_per_s: float = 3.0,
    ):
        if not 0 < relative_level < 1 or noise_ratio < 1 or min_rms < 0 or floor_rise_per_s < 1:
            raise ValueError(
                "need 0 < relative_level < 1, noise_ratio >= 1, min_rms >= 0 "
                "and floor_rise_per_s >= 1"
            )
        self._relative = relative_level
        self._noise_ratio = noise_ratio
        self._min_rms = min_rms
        self._rise = floor_rise_per_s
        self._peak = 0.0
        # Starts low so a caller who talks from the first frame is heard.
        self._floor = min_rms / noise_ratio
        self._fed_at: float | None = None
        self._last_sound = -math.inf

    @property
    def last_sound(self) -> float:
        """When the caller last made sound (session seconds; -inf: never)."""
        return self._last_sound

    def sounding(self, now: float) -> bool:
        """Whether the caller is making sound at ``now``."""
        return now - self._last_sound <= self.HANGOVER_S

    def quiet_for(self, now: float) -> float:
        """Seconds since the caller's last sound (inf: never sounded)."""
        return now - self._last_sound

    def feed(self, pcm: bytes, *, now: float) -> None:
        """Account for one frame of the caller's audio received at ``now``.

        Raises:
            TypeError: ``pcm`` is not bytes-like.
        """
        usable = len(pcm) - len(pcm) % 2
        if not usable:
            return
        samples = np.frombuffer(memoryview(pcm)[:usable], dtype="<i2").astype(np.float32)
        rms = float(np.sqrt(np.mean(samples * samples)))
        elapsed = 0.0 if self._fed_at is None else max(0.0, now - self._fed_at)
        self._fed_at = now
        # Falls at once, rises slowly: a voice never becomes the floor (its pauses
        # pull it down), a steady hum does within a few seconds.
        self._floor = min(rms, max(self._floor, 1.0) * self._rise**elapsed)
        self._peak = max(self._peak, rms)
        threshold = max(self._min_rms, self._relative * self._peak, self._noise_ratio * self._floor)
        if rms >= threshold and rms > 0:
            self._last_sound = now


class ReplyHold:
    """Whether a reply's audio waits for a caller who is sounding (pure).

    Call :meth:`on_bot_audio` for each frame of bot audio before it goes out,
    :meth:`should_release` while holding, and :meth:`bot_stopped` /
    :meth:`dropped` when the bot's speech ends or the held reply is interrupted.

    Args:
        sound: The caller's loudness.
        quiet_s: Caller quiet this long releases a held reply.
        max_hold_s: The longest a reply is held whatever the caller does.
        min_quiet_s: A reply's first audio waits until the caller has been quiet
            this long since their last sound (0: only while they are sounding).
    """

    def __init__(
        self,
        sound: CallerSound,
        *,
        quiet_s: float = 0.25,
        max_hold_s: float = 1.0,
        min_quiet_s: float = 0.0,
    ):
        if quiet_s <= 0 or max_hold_s < quiet_s or not 0 <= min_quiet_s <= max_hold_s:
            raise ValueError(
                "need quiet_s > 0, max_hold_s >= quiet_s and 0 <= min_quiet_s <= max_hold_s"
            )
        self.sound = sound
        self.quiet_s = quiet_s
        self.min_quiet_s = min_quiet_s
        self.max_hold_s = max_hold_s
        self._speaking = False
        self._held_since: float | None = None
        self.holds = 0

    @property
    def holding(self) -> bool:
        """Whether a reply is being held."""
        return self._held_since is not None

    def on_bot_audio(self, now: float) -> bool:
        """A frame of bot audio is ready at ``now``: True to hold it (and all after it)."""
        if self._held_since is not None:
            return True
        if self._speaking:
            return False
        if self.sound.sounding(now) or self.sound.quiet_for(now) < self.min_quiet_s:
            self._held_since = now
            self.holds += 1
            return True
        self._speaking = True
        return False

    def should_release(self, now: float) -> bool:
        """Whether a held reply goes out now (the caller went quiet, or held too long)."""
        if self._held_since is None:
            return False
        if self.sound.quiet_for(now) >= self._needed or now - self._held_since >= self.max_hold_s:
            self._held_since = None
            self._speaking = True
            return True
        return False

    def next_check_in(self, now: float) -> float:
        """Seconds until a held reply could next be released (at least 10 ms)."""
        if self._held_since is None:
            return self.quiet_s
        quiet_left = self._needed - self.sound.quiet_for(now)
        hold_left = self.max_hold_s - (now - self._held_since)
        return max(0.01, min(quiet_left, hold_left))

    @property
    def _needed(self) -> float:
        """Caller quiet that releases a held reply."""
        return max(self.quiet_s, self.min_quiet_s)

    def dropped(self) -> None:
        """The held reply was interrupted (the caller's turn began): nothing to release."""
        self._held_since = None
        self._speaking = False

    def bot_stopped(self) -> None:
        """The bot finished speaking: the next audio starts a new reply."""
        if self._held_since is None:
            self._speaking = False
