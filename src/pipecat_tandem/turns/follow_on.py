"""Words that go on with a request just handed to the background: one turn, not two.

"What's the weather in San Francisco? Use Fahrenheit." is one thought said with a
short pause in it. The segmented STT transcribes the first sentence early, the
router hands it to the background at once and the machinery acknowledges it; the
second sentence then arrives as a turn of its own. Answered on its own, the small
interaction model heard "You stare in height." (tiny.en) and said "I'm sorry, but I
can't assist with that." (pipecat's ``async_tool_deferred_delivery_audio`` eval,
three runs of three), so the caller got two replies to one thought, the second a
refusal, and the job never heard the detail.

:class:`FollowOn` decides from the voice's timing alone whether an utterance goes
on with the one just delegated: the caller did not pause longer than people pause
between two sentences of one thought (0.6-0.8 s; the conversation suite's callers
pause at most 0.8 s, and a caller who waited for the acknowledgement paused 1.7 s
or more). Its words then go to the job as a follow-up. Without voice activity
(a typed turn, a transport without VAD) nothing is ever a continuation.
"""

from __future__ import annotations

#: The longest pause inside one thought (the issue's 0.6-0.8 s, with margin).
MAX_PAUSE_S = 1.0
#: How long after a delegation later words can still be part of it.
MAX_SPAN_S = 10.0


class FollowOn:
    """Whether an utterance goes on with the request just delegated (pure, no I/O).

    Feed it the voice's real start and end times (VAD event time minus the VAD's
    own start/stop delay), each delegation, and each further utterance.

    Args:
        max_pause_s: A longer pause since the delegated words ends the thought.
        max_span_s: Words later than this after the delegation are a new turn.

    Raises:
        ValueError: A bound is not positive.

    Example::

        follow = FollowOn()
        follow.speech_started(0.0)
        follow.delegated("job-1", 2.1)          # "What's the weather ...?" (early STT)
        follow.speech_stopped(3.4)              # "... Use Fahrenheit." (no pause heard)
        follow.utterance(3.7)                   # "job-1"
    """

    def __init__(self, max_pause_s: float = MAX_PAUSE_S, max_span_s: float = MAX_SPAN_S) -> None:
        if max_pause_s <= 0 or max_span_s <= 0:
            raise ValueError("max_pause_s and max_span_s must be > 0")
        self._max_pause = max_pause_s
        self._max_span = max_span_s
        self._job: str | None = None
        self._delegated_at = 0.0
        self._longest_pause = 0.0
        self._speaking = False
        self._quiet_since: float | None = None
        self._voice_seen = False

    def speech_started(self, t: float) -> None:
        """The voice started at ``t`` (seconds, the session's clock)."""
        if self._job is not None and self._quiet_since is not None:
            self._longest_pause = max(self._longest_pause, t - self._quiet_since)
        self._speaking = True
        self._quiet_since = None
        self._voice_seen = True

    def speech_stopped(self, t: float) -> None:
        """The voice went quiet at ``t``."""
        self._speaking = False
        self._quiet_since = t

    def delegated(self, job_id: str, t: float) -> None:
        """The utterance transcribed at ``t`` went to the background as ``job_id``."""
        self._job = job_id
        self._delegated_at = t
        self._longest_pause = 0.0

    def utterance(self, t: float) -> str | None:
        """Another utterance was transcribed at ``t``: the job it goes on with, or None.

        A continuation keeps the window open (a third sentence may follow); anything
        else closes it.
        """
        job = self._job
        if (
            job is None
            or not self._voice_seen
            or self._longest_pause > self._max_pause
            or t - self._delegated_at > self._max_span
        ):
            self._job = None
            return None
        return job

    def close(self) -> None:
        """Forget the delegation (it ended, or the user moved on by other means)."""
        self._job = None
