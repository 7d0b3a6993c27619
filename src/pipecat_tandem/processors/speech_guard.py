#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""SpeechGuard: a failed or hung STT/TTS (or a failed reply) ends in one short apology.

Two parts, for any pipecat speech service (a cloud one given by spec as much as the
embedded ones):

* :func:`limit_speech_time` bounds each step of the service's ``run_stt`` /
  ``run_tts``. pipecat puts no time limit on a model: a request that never returns
  held the STT's segment queue (every later turn unheard) or the TTS's turn (the
  bot silent) for the rest of the call. A step that takes longer than the limit
  ends the request with an ``ErrorFrame``, as the embedded Whisper and hibari do.
* :class:`SpeechGuard`, a processor placed before the STT, sees the ``ErrorFrame`` s
  the STT, the interaction model and the TTS push upstream (and those of watchers
  that declare a ``speech_kind``, such as the reply watchdog's for a hung model)
  and says one sentence for them
  (:class:`~pipecat_tandem.policy.speech_faults.SpeechFaultNotices` decides when).

Streaming services that send audio or text on a socket and receive results on
another task return from ``run_*`` at once; their hangs are outside this limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import Any, cast

from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.speech_faults import SPEECH_KINDS, SpeechFaultNotices, SpeechKind
from pipecat_tandem.processors.result_interleaver import reply_frames

#: Marks a service whose requests :func:`limit_speech_time` already bounds.
_LIMITED = "_tandem_speech_time_limit"


def limit_speech_time(service: FrameProcessor, timeout_s: float) -> bool:
    """Bound each step of a pipecat STT/TTS service's requests to ``timeout_s``.

    The instance's ``run_stt``/``run_tts`` is wrapped (the class is untouched), so
    the limit applies to any vendor's service. The limit is per step, the wait for
    the request's next frame, so a long reply streamed in chunks is not cut.

    Args:
        service: The service; anything else is left alone.
        timeout_s: Longest wait for one step, in seconds.

    Returns:
        Whether the service is now limited (False for a processor that is not a
        pipecat STT/TTS service, or one limited before).
    """
    if not timeout_s > 0:  # also refuses NaN
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if isinstance(service, STTService):
        method, what, lost = "run_stt", "speech recognition", "this turn was not heard"
    elif isinstance(service, TTSService):
        method, what, lost = "run_tts", "speech synthesis", "the rest of this reply is not spoken"
    else:
        return False
    if getattr(service, _LIMITED, None) is not None:
        return False
    run = getattr(service, method)

    async def limited(*args: Any) -> AsyncGenerator[Frame | None, None]:
        steps = run(*args)
        try:
            while True:
                try:
                    async with asyncio.timeout(timeout_s):
                        frame = await anext(steps)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    yield ErrorFrame(f"{what} took over {timeout_s:g} s; {lost}")
                    return
                yield frame
        finally:
            await steps.aclose()

    setattr(service, method, limited)
    setattr(service, _LIMITED, timeout_s)
    return True


class SpeechGuard(FrameProcessor):
    """Says one short sentence when the STT, the TTS or the model fails; the call goes on.

    Place it before the STT: the services push their errors upstream, so it sees
    them all (background jobs run in pipelines of their own; their failures are
    the interleaver's to tell); the apology goes downstream as an LLM response of its own
    (:func:`~pipecat_tandem.processors.result_interleaver.reply_frames`), not a
    ``TTSSpeakFrame``: that is speech only, so a text client (RTVI ``bot-llm-*``
    messages, pipecat's eval harness in text mode) never learned that its turn had
    failed, and with a dead TTS nobody did. Every other frame passes untouched.

    Example::

        guard = SpeechGuard(stt=stt, tts=tts, busy=lambda: interleaver.busy)
        pipeline = Pipeline([transport.input(), guard, stt, ..., tts, transport.output()])
    """

    def __init__(
        self,
        *,
        stt: FrameProcessor | None = None,
        tts: FrameProcessor | None = None,
        notices: SpeechFaultNotices | None = None,
        busy: Callable[[], bool] | None = None,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the guard.

        Args:
            stt: The pipeline's STT (also recognised when it is not a pipecat ``STTService``).
            tts: The pipeline's TTS (likewise).
            notices: The apology rules (defaults when not given).
            busy: Whether a background delivery is out and not yet confirmed; the
                apology waits until it is not (its speech would be taken for it).
            clock: The session clock.
            event_log: Where each fault and apology is recorded.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(**kwargs)
        self._stt = stt
        self._tts = tts
        self.notices = notices or SpeechFaultNotices()
        self._busy = busy or (lambda: False)
        self._clock = clock or LoopClock()
        self._log = event_log
        self._user_speaking = False

    def _kind(self, error: ErrorFrame) -> SpeechKind | None:
        source = error.processor
        if source is None:
            return None
        # A watcher (the reply watchdog, the transcript watch) names the fault it reports.
        declared = getattr(source, "speech_kind", None)
        if isinstance(declared, str) and declared in SPEECH_KINDS:
            return cast(SpeechKind, declared)
        if source is self._stt or isinstance(source, STTService):
            return "stt"
        if source is self._tts or isinstance(source, TTSService):
            return "tts"
        if isinstance(source, LLMService):
            return "llm"  # the turn it was answering gets no reply
        return None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note speech faults and the user's speaking; pass every frame on."""
        await super().process_frame(frame, direction)
        now = self._clock.now()
        if isinstance(frame, ErrorFrame) and direction is FrameDirection.UPSTREAM:
            kind = self._kind(frame)
            if kind is not None:
                self.notices.failed(kind, now)
                if self._log is not None:
                    self._log.emit("speech_fault", t=now, service=kind, error=frame.error[:200])
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
        await self.push_frame(frame, direction)
        if self.notices.pending is None:
            return
        try:
            busy = self._user_speaking or self._busy()
        except Exception as e:  # a broken probe must not stop the guard or the frames
            logger.warning(f"{self}: busy check failed: {e}")
            busy = False
        text = self.notices.due(now, busy=busy)
        if text is not None:
            if self._log is not None:
                self._log.emit("speech_apology", t=now, text=text)
            for reply in reply_frames(text):
                await self.push_frame(reply)
