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

A pause is not the end of a thought either. People pause 0.6-0.8 s between two
sentences of one thought, and a turn's reply is ready ~0.9 s after the voice
stopped, so a reply can start just as the caller goes on (the two spoke-over turns
of the 2026-12-05 suite had ready replies, not sounding callers). Two rules:

* a reply's first audio waits until the caller has been quiet ``min_quiet_s``
  (:data:`MIN_QUIET_S`, the shortest such pause) since their last sound;
* its first ``yield_s`` (:data:`YIELD_S`) seconds go out paced to real time, and
  the caller's sound pauses them: a caller who goes on after a longer pause hears
  at most ~0.1 s of the reply, which then yields, the way people do when they
  start at the same time. Waiting out the longest pause instead (0.85 s) made every
  reply ~0.1 s later (chit-chat p50 1.04 s at the caller) and still spoke over a
  caller twice: the caller's sound is measured from its last loud frame, so the
  soft end of a sentence already counts as quiet.

A reply that starts after the caller has been quiet that long, the normal case, is
never delayed.

People differ, and a monologue has many such pauses: in the 2026-12-06 suite a
reply started in three pauses of a caller telling about their week, each yielding
within 0.25 s, 0.8 s of bot audio in all. So the hold learns the caller's pauses:
when a reply that yielded is then dropped (the caller did go on: the VAD's user
turn came), the pause they made is one of theirs, and ``min_quiet_s`` grows to it
plus a margin, up to ``learn_up_to_s``. A cough that pauses a reply releases it
again and teaches nothing; a caller who never goes on mid-thought never waits more.

Pure: no I/O, no event loop; times are session seconds passed in.
"""

from __future__ import annotations

import math

import numpy as np

#: How long a caller must have been quiet before a reply's first audio goes out:
#: the shortest of the 0.6-0.8 s pauses people make between two sentences.
MIN_QUIET_S = 0.6

#: How much of a reply's start pauses for a caller who goes on (its first words).
YIELD_S = 1.0

#: The longest pause the hold learns to wait out for a caller who goes on after
#: pauses (beyond it, a pause is the end of a turn and the yield handles the rest).
LEARN_UP_TO_S = 1.0

_IDLE, _HELD, _STARTING, _SPEAKING = "idle", "held", "starting", "speaking"


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
        self._pause = math.inf

    @property
    def last_pause(self) -> float:
        """How long the caller was quiet before their latest sound began (inf: never)."""
        return self._pause

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
            if now - self._last_sound > self.HANGOVER_S:
                self._pause = now - self._last_sound
            self._last_sound = now


class ReplyHold:
    """When a reply's audio may go out, around a caller who may go on (pure).

    A reply moves through four states. *Idle*: no reply. *Held*: its first audio
    waits (the caller is sounding, or quiet less than ``min_quiet_s``). *Starting*:
    its first ``yield_s`` seconds of audio go out paced to real time (never more than
    ``lead_s`` ahead of the clock), so that a caller who goes on after all is heard
    over at most ``lead_s`` of it: their sound pauses the reply (held again) and the
    VAD's user turn, 0.2 s later, drops it. *Speaking*: the rest goes out as it
    comes. Without pacing, a sentence's audio is in the transport's queue at once and
    plays out over the caller until the VAD interrupts it.

    Call :meth:`on_bot_audio` for a frame of bot audio arriving when nothing is
    queued before it, :meth:`audio_wait` before sending each queued audio frame and
    :meth:`sent` after, :meth:`bot_stopped` / :meth:`dropped` when the bot's speech
    ends or the reply is interrupted.

    Args:
        sound: The caller's loudness.
        quiet_s: Caller quiet this long releases a held reply.
        max_hold_s: The longest a reply is held at a time whatever the caller does.
        min_quiet_s: A reply's first audio waits until the caller has been quiet
            this long since their last sound (0: only while they are sounding).
        yield_s: How much of a reply's start is paced and pauses for the caller
            (0: none; the reply goes out as it comes once released).
        lead_s: How far paced audio may run ahead of the clock (the transport's
            own buffer: less risks gaps, more is heard over a caller who goes on).
        learn_up_to_s: How far ``min_quiet_s`` may grow to the pauses of a caller
            who went on after a reply had started (0: it never grows).
        learn_margin_s: Added to a learned pause (its soft end counts as quiet).
    """

    def __init__(
        self,
        sound: CallerSound,
        *,
        quiet_s: float = 0.25,
        max_hold_s: float = 1.0,
        min_quiet_s: float = 0.0,
        yield_s: float = 0.0,
        lead_s: float = 0.12,
        learn_up_to_s: float = 0.0,
        learn_margin_s: float = 0.05,
    ):
        if quiet_s <= 0 or max_hold_s < quiet_s or not 0 <= min_quiet_s <= max_hold_s:
            raise ValueError(
                "need quiet_s > 0, max_hold_s >= quiet_s and 0 <= min_quiet_s <= max_hold_s"
            )
        if yield_s < 0 or lead_s <= 0:
            raise ValueError("need yield_s >= 0 and lead_s > 0")
        if not 0 <= learn_up_to_s <= max_hold_s or learn_margin_s < 0:
            raise ValueError("need 0 <= learn_up_to_s <= max_hold_s and learn_margin_s >= 0")
        self.sound = sound
        self.quiet_s = quiet_s
        self.min_quiet_s = min_quiet_s
        self.max_hold_s = max_hold_s
        self.yield_s = yield_s
        self.lead_s = lead_s
        self.learn_up_to_s = learn_up_to_s
        self.learn_margin_s = learn_margin_s
        self._state = _IDLE
        self._yield_pause: float | None = None  # the caller's pause that paused a reply
        self._held_since = 0.0
        self._window_left = 0.0  # seconds of the reply's start still to pace
        self._paced_from = 0.0  # when pacing (re)started
        self._paced_s = 0.0  # audio sent since then
        self.holds = 0  # replies whose start waited
        self.yields = 0  # replies paused after they started
        self.learned = 0  # times min_quiet_s grew to the caller's pauses

    @property
    def holding(self) -> bool:
        """Whether a reply is being held (before its start, or paused)."""
        return self._state == _HELD

    @property
    def pacing(self) -> bool:
        """Whether a reply's start is going out paced to real time."""
        return self._state == _STARTING

    def on_bot_audio(self, now: float) -> bool:
        """Bot audio is ready at ``now`` with nothing queued: True to queue it."""
        if self._state != _IDLE:
            return self._state != _SPEAKING
        self._window_left = self.yield_s
        if self.sound.sounding(now) or self.sound.quiet_for(now) < self.min_quiet_s:
            self._state, self._held_since = _HELD, now
            self.holds += 1
            return True
        self._start(now)
        return self._state == _STARTING

    def audio_wait(self, now: float) -> float:
        """Seconds to wait before the next queued audio frame goes out (0: now)."""
        if self._state == _HELD:
            if not self.should_release(now):
                return self.next_check_in(now)
        if self._state == _STARTING:
            if self.sound.sounding(now):
                self._state, self._held_since = _HELD, now
                self.yields += 1
                self._yield_pause = self.sound.last_pause
                return self.next_check_in(now)
            ahead = self._paced_s - (now - self._paced_from)
            if ahead > self.lead_s:
                return max(0.01, ahead - self.lead_s)
        return 0.0

    def sent(self, seconds: float) -> None:
        """``seconds`` of the reply's audio went out."""
        if self._state == _STARTING:
            self._paced_s += seconds
            self._window_left -= seconds
            if self._window_left <= 1e-9:
                self._state = _SPEAKING

    def should_release(self, now: float) -> bool:
        """Whether a held reply goes out now (the caller went quiet, or held too long)."""
        if self._state != _HELD:
            return False
        if self.sound.quiet_for(now) >= self._needed or now - self._held_since >= self.max_hold_s:
            self._yield_pause = None  # the caller stopped again: a cough, not a thought
            self._start(now)
            return True
        return False

    def next_check_in(self, now: float) -> float:
        """Seconds until a held reply could next be released (at least 10 ms)."""
        if self._state != _HELD:
            return self.quiet_s
        quiet_left = self._needed - self.sound.quiet_for(now)
        hold_left = self.max_hold_s - (now - self._held_since)
        return max(0.01, min(quiet_left, hold_left))

    @property
    def _needed(self) -> float:
        """Caller quiet that releases a held reply."""
        return max(self.quiet_s, self.min_quiet_s)

    def _start(self, now: float) -> None:
        self._state = _STARTING if self._window_left > 0 else _SPEAKING
        self._paced_from, self._paced_s = now, 0.0

    def dropped(self) -> None:
        """The reply was interrupted (the caller's turn began): nothing to send.

        A reply that had started and yielded to the caller teaches their pause.
        """
        pause, self._yield_pause = self._yield_pause, None
        if self._state == _HELD and pause is not None and math.isfinite(pause):
            wanted = min(self.learn_up_to_s, pause + self.learn_margin_s)
            if wanted > self.min_quiet_s:
                self.min_quiet_s = wanted
                self.learned += 1
        self._state = _IDLE

    def bot_stopped(self) -> None:
        """The bot finished speaking with nothing queued: the next audio starts a reply."""
        if self._state != _HELD:
            self._state = _IDLE
            self._yield_pause = None
