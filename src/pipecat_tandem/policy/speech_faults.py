#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""When the user is told that speech recognition, synthesis or the reply failed.

A failed transcription or a failed interaction model leaves the user waiting for a
reply that never comes; a failed synthesis leaves the bot silent mid-answer. Either
way the user should hear one short sentence, once, and then the call goes on. The
rules:

* one apology per fault, never more than one within ``quiet_s`` (a dead service
  fails on every request, the apology included: it must not loop);
* never over the user, and never while a background delivery is out and not yet
  confirmed (the apology's speech would be taken for it, and a result the user
  never heard would be settled as delivered);
* an apology that could not be said within ``expire_s`` is dropped: late, it
  would answer a moment the user has moved on from.

Pure and synchronous: the caller passes the session clock's time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SpeechKind = Literal["stt", "tts", "llm", "llm_hung"]
#: Every kind, for checking a source's declared ``speech_kind``.
SPEECH_KINDS: frozenset[str] = frozenset(("stt", "tts", "llm", "llm_hung"))


@dataclass(frozen=True)
class SpeechApologies:
    """What the user hears after a fault.

    Parameters:
        stt: After a turn that could not be transcribed.
        tts: After a reply that could not be spoken.
        llm: After a turn the interaction model failed to answer.
        llm_hung: After a turn the interaction model never started to answer
            (it was given up on after its deadline).
    """

    stt: str = "Sorry, I didn't catch that."
    tts: str = "Sorry, my voice cut out there."
    llm: str = "Sorry, could you say that again?"
    llm_hung: str = "Sorry, I lost my thread — could you say that again?"


class SpeechFaultNotices:
    """Decides whether and when a speech-service fault is apologized for.

    Args:
        apologies: The sentences said.
        quiet_s: Least time between two apologies.
        expire_s: Longest an apology waits for the user and the deliveries to allow it.

    Example::

        notices = SpeechFaultNotices()
        notices.failed("stt", now=3.0)
        text = notices.due(now=3.1, busy=False)  # "Sorry, I didn't catch that."
    """

    def __init__(
        self,
        *,
        apologies: SpeechApologies | None = None,
        quiet_s: float = 30.0,
        expire_s: float = 8.0,
    ) -> None:
        for name, value in (("quiet_s", quiet_s), ("expire_s", expire_s)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        self.apologies = apologies or SpeechApologies()
        self.quiet_s = float(quiet_s)
        self.expire_s = float(expire_s)
        self._pending: tuple[SpeechKind, float] | None = None
        self._last_said: float | None = None
        #: Faults seen, by kind.
        self.faults: dict[SpeechKind, int] = {"stt": 0, "tts": 0, "llm": 0, "llm_hung": 0}
        #: Apologies said, and faults that got none (repeats, expired).
        self.said = 0
        self.unsaid = 0

    @property
    def pending(self) -> SpeechKind | None:
        """The kind of fault waiting to be apologized for, if any."""
        return self._pending[0] if self._pending else None

    def failed(self, kind: SpeechKind, now: float) -> None:
        """A speech service reported a fault at ``now``."""
        self.faults[kind] += 1
        recent = self._last_said is not None and now - self._last_said < self.quiet_s
        if recent or self._pending is not None:
            self.unsaid += 1  # one sentence covers a burst; a dead service is not looped on
            return
        self._pending = (kind, now)

    def due(self, now: float, *, busy: bool) -> str | None:
        """The apology to say at ``now``, once; None while ``busy`` or when there is none.

        Args:
            now: Session time.
            busy: The user is speaking or a delivery is out and not yet confirmed.
        """
        if self._pending is None:
            return None
        kind, since = self._pending
        if now - since > self.expire_s:
            self._pending = None
            self.unsaid += 1
            return None
        if busy:
            return None
        self._pending = None
        self._last_said = now
        self.said += 1
        text: str = getattr(self.apologies, kind)
        return text
