#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The result interleaver: weaves background outputs into the call at natural turn gaps.

Place it after the interaction LLM and before the TTS, so it sees the model's
``LLMFullResponseStartFrame``/``EndFrame`` downstream, the bot-speaking frames
coming upstream from the output transport, and the user-speaking frames the user
aggregator broadcasts. Each delivery goes downstream as an uninterruptible
``LLMMessagesAppendFrame(run_llm=True)`` (the interaction model weaves it in; the
assistant aggregator adds it to the context and runs the model) or, in verbatim
mode, as an LLM response of its own (``LLMFullResponseStartFrame``, one
``LLMTextFrame``, ``LLMFullResponseEndFrame``; see :func:`reply_frames`). All decisions are made by
:class:`~pipecat_tandem.policy.delivery.DeliveryScheduler`; this processor only
translates frames and keeps one timer.

A delivery whose words went to the TTS but which the bot never started speaking
(the TTS raised, reported an error or hung) goes back to waiting after
``confirm_timeout_s`` and is delivered again at the next gap (see
``DeliveryScheduler.speech_sent``).

The timer survives a delivery that fails (a wording template that raises, a frame
that cannot be pushed, an event log that cannot be written): the failure is logged
once with its job ids, its outputs are settled as ``delivery_failed`` and the next
results are delivered as usual.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMMessagesTransformFrame,
    LLMTextFrame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundResultFrame,
    DeliveryPolicy,
    JobState,
)
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.delivery import Delivery, DeliveryFailed, DeliveryScheduler
from pipecat_tandem.policy.wording import DeliveryWording

#: The shortest wait of the delivery timer (see ``ResultInterleaver._timer_loop``).
MIN_WAIT_S = 0.001


def reply_frames(text: str) -> list[Frame]:
    """The frames of a verbatim delivery: one whole LLM response carrying ``text``.

    Not a ``TTSSpeakFrame``: that is speech only, so a text client (RTVI ``bot-llm-*``
    messages, pipecat's eval harness in text mode) never saw a delivered result. As a
    response the words reach clients exactly like the interaction model's replies, the
    TTS speaks them once, and the assistant aggregator records what was said.

    Args:
        text: The words to say.

    Returns:
        Start, text and end frames, in the order to push them.
    """
    return [LLMFullResponseStartFrame(), LLMTextFrame(text=text), LLMFullResponseEndFrame()]


class ResultInterleaver(FrameProcessor):
    """Holds background outputs and releases them only at natural turn gaps.

    Args:
        min_gap_s: Shared quiet (user and bot) before a ``when_idle`` delivery.
        verbatim: Say results verbatim (an LLM response of their own, see
            :func:`reply_frames`) instead of letting the interaction model weave them in.
        stale_mode: ``offer`` (briefly offer results the user moved away from) or ``drop``.
        max_redeliveries: How often an announcement cut off by the user after its first
            word is delivered again (a cut-off before it is free); once they are used up,
            it goes into the context silently instead (accounted ``into_context``).
        confirm_timeout_s: How long a woven delivery may stay unspoken before it counts
            as delivered (the model may choose to say nothing).
        wording: Templates for delivered text.
        clock: The session clock (share one per session).
        event_log: Where speech spans and delivery decisions are recorded.
        context: The live conversation context; lets a cut-off delivery be taken back out
            of it at once (otherwise only through an ``LLMMessagesTransformFrame``).
        **kwargs: Passed to ``FrameProcessor``.

    Example::

        interleaver = ResultInterleaver(min_gap_s=0.5)
        pipeline = Pipeline([..., llm, interleaver, tts, transport.output(), assistant_agg])
    """

    def __init__(
        self,
        min_gap_s: float = 0.5,
        *,
        verbatim: bool = False,
        stale_mode: str = "offer",
        max_redeliveries: int = 2,
        confirm_timeout_s: float = 10.0,
        wording: DeliveryWording | None = None,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        context: LLMContext | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._context = context
        self._clock: SessionClock = clock or (event_log.clock if event_log else LoopClock())
        self._log = event_log or EventLog(self._clock)
        self.scheduler = DeliveryScheduler(
            min_gap_s=min_gap_s,
            verbatim=verbatim,
            stale_mode=stale_mode,
            max_redeliveries=max_redeliveries,
            confirm_timeout_s=confirm_timeout_s,
            wording=wording or DeliveryWording(),
        )
        self._wake = asyncio.Event()
        self._timer_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def event_log(self) -> EventLog:
        """The event log this processor writes to."""
        return self._log

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Track speaking state and background outputs; pass every frame on."""
        await super().process_frame(frame, direction)
        now = self._clock.now()
        s = self.scheduler
        consumed = False
        relevant = True  # whether the frame can change a delivery decision
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._timer_task = self.create_task(self._timer_loop(), "tandem-interleaver-timer")
            return
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._close(now)
        elif isinstance(frame, UserStartedSpeakingFrame):
            if not s.gap.user_speaking:
                self._log.emit("user_started", t=now)
            cut = s.user_started(now)
            if cut is not None and cut.mode == "weave":
                await self._retract(cut.text)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            if s.gap.user_speaking:
                self._log.emit("user_stopped", t=now)
            s.user_stopped(now)
        elif isinstance(frame, BotStartedSpeakingFrame):
            if not s.gap.bot_speaking:
                self._log.emit("bot_started", t=now)
            s.bot_started(now)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            if s.gap.bot_speaking:
                self._log.emit("bot_stopped", t=now)
            s.bot_stopped(now)
        elif (
            isinstance(frame, LLMFullResponseStartFrame) and direction is FrameDirection.DOWNSTREAM
        ):
            s.response_started(now)
        elif isinstance(frame, LLMFullResponseEndFrame) and direction is FrameDirection.DOWNSTREAM:
            s.response_ended(now)
        elif isinstance(frame, InterruptionFrame):
            # The response in progress (if any) is abandoned.
            s.response_ended(now)
        elif isinstance(frame, LLMTextFrame) and direction is FrameDirection.DOWNSTREAM:
            # Words of the model's reply (to a delivery in flight, if one is out).
            if frame.text.strip():
                s.speech_sent()
            relevant = False
        elif isinstance(frame, ErrorFrame) and direction is FrameDirection.UPSTREAM:
            # An error from below (the TTS, the output): if a delivery is out and not yet
            # spoken, it is delivered again unless the bot speaks it after all.
            s.speech_sent()
        elif isinstance(frame, BackgroundResultFrame):
            self._add(
                frame.job_id,
                frame.text,
                now,
                "result",
                frame.is_final,
                frame.task,
                frame.policy,
                frame.stale,
                frame.verbatim,
            )
            consumed = True
        elif isinstance(frame, BackgroundErrorFrame):
            self._add(
                frame.job_id, frame.error, now, "failure", True, frame.task, frame.policy, False
            )
            consumed = True
        elif isinstance(frame, BackgroundJobStateFrame):
            if frame.state is JobState.CANCELLED:
                s.drop_job(frame.job_id, now, reason=frame.detail or "cancelled")
            elif frame.state is JobState.STALE or frame.detail.startswith("stale"):
                s.mark_stale(frame.job_id, now)
        else:
            relevant = False
        if consumed and self._closed:
            # An output that arrives after the session ended (a job finishing as the
            # call ends) can never be delivered: account for it, don't leave it pending.
            s.close(now)
        if not consumed:
            await self.push_frame(frame, direction)
        if relevant:
            # Audio and video frames (most of the traffic) don't wake the timer.
            self._flush_accounting()
            self._wake.set()

    def _add(
        self,
        job_id: str,
        text: str,
        now: float,
        kind: str,
        is_final: bool,
        task: str,
        policy: DeliveryPolicy,
        stale: bool,
        verbatim: bool = False,
    ) -> None:
        item = self.scheduler.add(
            job_id=job_id, text=text, now=now, kind=kind, is_final=is_final, task=task,
            policy=policy, stale=stale, verbatim=verbatim,
        )  # fmt: skip
        if item is not None:
            self._log.emit(
                "result_ready",
                job_id=job_id,
                t=now,
                output_id=item.output_id,
                output_kind=kind,
                is_final=item.is_final,
                stale=stale,
                policy=policy.value,
            )

    async def _timer_loop(self) -> None:
        last_error = ""
        while True:
            try:
                await self._deliver_due()
                last_error = ""
            except Exception as e:
                # Not one delivery's fault (those are settled in _deliver_due): keep the
                # timer alive anyway, or every later result would wait forever. A fault
                # that repeats each tick (a broken event log) is logged once.
                if repr(e) != last_error:
                    logger.opt(exception=e).error(f"{self}: delivery timer step failed: {e}")
                last_error = repr(e)
                await asyncio.sleep(0.05)
            now = self._clock.now()
            wake = self.scheduler.next_wakeup(now)
            self._wake.clear()
            if wake is not None and wake <= now:
                # Something is due right now (e.g. an interrupt result) but poll said no:
                # avoid spinning; re-check on the next frame or in a tick.
                wake = now + 0.02
            # Never wait less than a millisecond: a wake-up a float rounding away (the gap
            # opens at 24.04 s, the clock reads 24.04 s minus a sliver) gives a timeout so
            # small that adding it to the loop's time changes nothing; on a virtual-time
            # loop the timer then fired at the same instant forever, and the session hung.
            timeout = None if wake is None else max(wake - now, MIN_WAIT_S)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _deliver_due(self) -> None:
        if self._closed:
            return
        while True:
            try:
                delivery = self.scheduler.poll(self._clock.now())
            except DeliveryFailed as e:
                self._failed(e.job_ids, e.output_ids, e.reason, e)
                continue
            for unspoken in self.scheduler.drain_unspoken():
                logger.warning(
                    f"{self}: the delivery of {', '.join(unspoken.job_ids)} was never spoken "
                    "(the speech service failed); it will be delivered again"
                )
                if unspoken.mode == "weave":
                    await self._retract(unspoken.text)
                self._flush_accounting()  # its requeue is logged before its redelivery
            if delivery is None:
                break
            try:
                await self._emit(delivery)
            except Exception as e:
                output_ids = [i.output_id for i in delivery.items]
                self._failed(delivery.job_ids, output_ids, f"{type(e).__name__}: {e}", e)
        self._flush_accounting()

    def _failed(
        self, job_ids: list[str], output_ids: list[str], reason: str, error: BaseException
    ) -> None:
        """Settle a delivery that raised, so the timer goes on with the next results."""
        logger.opt(exception=error).error(
            f"{self}: delivering background job(s) {', '.join(job_ids)} failed: {reason}"
        )
        now = self._clock.now()
        for job_id in job_ids:
            self.scheduler.fail(job_id, reason, now, output_ids=output_ids)
        try:
            self._flush_accounting()
        except Exception as e:
            # The event log may be what failed; the accounting stays in the scheduler.
            logger.warning(f"{self}: could not record the failed delivery: {e}")

    async def _emit(self, delivery: Delivery) -> None:
        if delivery.interrupt_bot:
            await self.broadcast_interruption()
        frames: list[Frame]
        if delivery.mode == "verbatim":
            frames = reply_frames(delivery.text)
        else:
            frame = LLMMessagesAppendFrame(
                messages=[{"role": "developer", "content": delivery.text}],
                run_llm=delivery.mode == "weave",
            )
            # A queued delivery must survive an interruption; pipecat drops interruptible
            # frames from queues when the user barges in.
            frame.interruptible = False
            frames = [frame]
        self._log.emit(
            "delivered",
            t=delivery.at,
            job_ids=delivery.job_ids,
            mode=delivery.mode,
            delivery=delivery.kind,
            policy=delivery.items[0].policy.value,
            user_speaking=delivery.user_speaking,
            bot_speaking=delivery.bot_speaking,
            items=[
                {
                    "output_id": i.output_id,
                    "job_id": i.job_id,
                    "stale": i.stale,
                    "treatment": "context" if i.into_context
                    else "failure" if i.kind == "failure" else "offer" if i.stale
                    else "result" if i.is_final else "partial",
                }
                for i in delivery.items
            ],
        )  # fmt: skip
        for out in frames:
            await self.push_frame(out)
        await self.push_frame(
            BackgroundDeliveryFrame(
                job_ids=delivery.job_ids, kind=delivery.kind, text=delivery.text
            ),
            FrameDirection.UPSTREAM,
        )

    async def _retract(self, text: str) -> None:
        """Take a cut-off woven delivery back out of the context.

        It comes back as a redelivery or, with its redeliveries used up, as a silent
        note that no longer tells the model to announce it now.
        """

        def without(messages: list[Any]) -> list[Any]:
            return [
                m
                for m in messages
                if not (
                    isinstance(m, dict)
                    and m.get("role") == "developer"
                    and m.get("content") == text
                )
            ]

        if self._context is not None:
            # At once, before the user's turn can run the model on a context holding it.
            self._context.set_messages(without(self._context.get_messages()))
        # And through the pipeline, in case the delivery itself is still on its way to the
        # assistant aggregator (the transform then lands after it, in order).
        frame = LLMMessagesTransformFrame(transform=without, run_llm=False)
        frame.interruptible = False
        await self.push_frame(frame)

    def _flush_accounting(self) -> None:
        for event in self.scheduler.drain_events():
            kind = event.pop("kind")
            job_id = event.pop("job_id")
            self._log.emit(kind, job_id=job_id, **event)

    async def _close(self, now: float) -> None:
        if self._closed:
            return
        self._closed = True
        self.scheduler.close(now)
        self._flush_accounting()
        if self._timer_task is not None:
            await self.cancel_task(self._timer_task)
            self._timer_task = None

    async def cleanup(self) -> None:
        """Stop the timer task."""
        await super().cleanup()
        if self._timer_task is not None:
            await self.cancel_task(self._timer_task)
            self._timer_task = None
