#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Time and cue awareness: the live "now" view and timed / cue-triggered interjections.

Place it right before the :class:`~pipecat_tandem.processors.DelegationProcessor`
(after the STT and the perception processors). It does two things:

* Before each user utterance reaches the user aggregator it refreshes one developer
  message in the context with a compact "now" view (session time, how long the user
  has been silent, background jobs running and for how long, recent cues), so the
  interaction model perceives time.
* It turns requests like "tell me when thirty seconds have passed", "tell me when the
  screen changes" or "count my squats" into **jobs of the same registry** as background
  work: each is a job whose result is due at a time or on a cue. When due, the result
  goes out as a ``BackgroundResultFrame`` (spoken verbatim), so the
  :class:`~pipecat_tandem.processors.ResultInterleaver`'s rules still hold: never over
  the user, ``interrupt`` or ``when_idle`` as the request asked, cancellable like any job.

A turn that registers such a request is **answered by the machinery, not by the
interaction model**: a fixed acknowledgement that restates what was registered
("Okay, I'll tell you when ten seconds have passed."), spoken verbatim, and the model
does not run on that turn, so it cannot claim what has not happened. A watch that
needs a camera on a call with no video gets "I can't see a camera right now." and
no job; "Can you see me?" is answered the same way, from whether pictures arrive
(:data:`~pipecat_tandem.policy.acknowledgements.SIGHT_ANSWERS`); a watch on the
user while the camera is dark (a muted camera's black frames) is set, and its
acknowledgement says the camera looks dark. A camera that stops
(or goes dark) while a watch on it waits is told about once ("I've lost your camera,
so I can't watch for that right now."), and the watch goes on. Skipping the model's
inference needs a second stage where the inference is requested:
:attr:`AwarenessProcessor.gate` is a processor to place between the user aggregator
and the interaction LLM::

    awareness = AwarenessProcessor(registry=..., event_log=...)
    Pipeline([stt, awareness, delegation, user_aggregator, awareness.gate, llm, ...])

Without the gate in the pipeline (it has seen no ``StartFrame``), the turn goes to the
model with the acknowledgement to say written into the user's own turn, where even a
small model reads it.

Parsing and scheduling live in :mod:`pipecat_tandem.policy.interjections` and
:mod:`pipecat_tandem.policy.now_view`, the wording and the handled-turn record in
:mod:`pipecat_tandem.policy.acknowledgements`; this processor translates frames and
keeps a timer. Whether an image is dark is
:func:`pipecat_tandem.fusion.darkness.image_is_dark`; when the camera counts as
gone or dark, :class:`pipecat_tandem.policy.camera.CameraPresence`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputImageRawFrame,
    LLMMessagesAppendFrame,
    LLMMessagesTransformFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.errors import DelegationError
from pipecat_tandem.frames import (
    BackgroundJobStateFrame,
    BackgroundResultFrame,
    CueFrame,
    DeliveryPolicy,
    JobState,
)
from pipecat_tandem.fusion.darkness import image_is_dark
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.acknowledgements import (
    CAMERA_LOST,
    CAMERA_WENT_DARK,
    NO_CAMERA,
    SIGHT_ANSWERS,
    VIDEO_CUES,
    HandledTurns,
    acknowledge,
    needs_sight,
    needs_video,
)
from pipecat_tandem.policy.camera import CameraNotice, CameraPresence, asks_if_seen
from pipecat_tandem.policy.interjections import (
    Interjection,
    InterjectionScheduler,
    InterjectionSpec,
    parse_interjection,
)
from pipecat_tandem.policy.now_view import NowView, RecentCue, is_now_message
from pipecat_tandem.processors.awareness_gate import AwarenessGate

HANDLED_KEY = "tandem_handled"

#: What the user is told once when the camera a pending watch needs goes away or dark.
_CAMERA_NOTICES: dict[CameraNotice, str] = {"lost": CAMERA_LOST, "dark": CAMERA_WENT_DARK}

#: A request's timer counts from the end of speech seen at most this long before its
#: transcript (a long STT delay, or a speech end from an earlier utterance, is not used).
_REQUEST_SPEECH_WINDOW_S = 3.0


class AwarenessProcessor(FrameProcessor):
    """Gives the interaction model a sense of time and cues. See the module docstring.

    Args:
        registry: The session's job registry (share the delegation processor's).
        event_log: The session event log (its clock is the session clock).
        now_view: Renders the "now" line; None disables it.
        scheduler: Interjection scheduler (a default one is made).
        max_cues: Recent cues kept for the "now" view.
        camera_timeout_s: A watch that needs video is refused ("I can't see a camera
            right now.") unless a camera frame or a video cue arrived this recently;
            a pending one is told about once when none has for this long (or only
            dark ones, for a watch on the user).
        speak_lead_s: A timed announcement is released this long before it is due, so
            that its voice reaches the caller at the due time (delivery, the TTS's
            first audio and the call's audio path take ~0.4-0.6 s, measured at a real
            caller: docs/bench/cues-caller-section.md); the words that make the claim
            ("... have passed") come later still.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        *,
        registry: JobRegistry,
        event_log: EventLog,
        now_view: NowView | None = None,
        scheduler: InterjectionScheduler | None = None,
        max_cues: int = 16,
        camera_timeout_s: float = 5.0,
        speak_lead_s: float = 0.4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not camera_timeout_s > 0:
            raise ValueError(f"camera_timeout_s must be positive, got {camera_timeout_s!r}")
        if not 0 <= speak_lead_s < 5:
            raise ValueError(f"speak_lead_s must be in [0, 5), got {speak_lead_s!r}")
        self._lead = speak_lead_s
        self._registry = registry
        self._log = event_log
        self._clock = event_log.clock
        self._view = now_view if now_view is not None else NowView()
        self._scheduler = scheduler or InterjectionScheduler()
        self._cues: deque[RecentCue] = deque(maxlen=max_cues)
        self._jobs: dict[str, str] = {}  # interjection spec id -> job id
        self._user_speaking = False
        self._user_quiet_since: float | None = None
        self._view_shown = False
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._camera = CameraPresence(timeout_s=camera_timeout_s)
        self._handled = HandledTurns()
        self._speech_end: float | None = None
        self._acks = 0
        self._gate = AwarenessGate(self._handled, event_log=event_log)

    @property
    def scheduler(self) -> InterjectionScheduler:
        """The interjection scheduler."""
        return self._scheduler

    @property
    def gate(self) -> AwarenessGate:
        """The stage to place between the user aggregator and the interaction LLM."""
        return self._gate

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Refresh the now view, register interjection requests, fire cue interjections."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._timer = self.create_task(self._timer_loop(), "tandem-awareness-timer")
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self._stop_timer()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
            self._user_quiet_since = self._clock.now()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            # The voice ended stop_secs before the VAD was sure of it.
            self._speech_end = self._clock.now() - max(0.0, float(frame.stop_secs or 0.0))
        elif isinstance(frame, InputImageRawFrame):
            await self._on_image(frame)
        elif isinstance(frame, CueFrame):
            if frame.kind in VIDEO_CUES or frame.kind == "repetition":
                self._camera.seen(self._clock.now())
            self._cues.append(RecentCue(frame.kind, frame.time, frame.value))
            if frame.kind == "speech_offset":
                self._speech_end = max(self._speech_end or frame.time, frame.time)
            try:
                due = self._scheduler.on_cue(frame.kind, frame.time, frame.value)
            except ValueError as e:
                await self.push_error(f"bad cue frame: {e}")
                due = []
            await self._fire(due)
        elif isinstance(frame, TranscriptionFrame) and direction is FrameDirection.DOWNSTREAM:
            if frame.text.strip():
                self._gate.words_heard()  # its turn may have ended "empty" before it came
            await self._on_utterance(frame)
        await self.push_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame | CueFrame):
            self._wake.set()  # a request may have been added or cancelled

    async def _on_utterance(self, frame: TranscriptionFrame) -> None:
        if self._view is not None:
            await self._refresh_now_view()
        spec = parse_interjection(frame.text)
        if spec is None:
            if asks_if_seen(frame.text):
                # Only the camera's record knows whether a picture arrives.
                now = self._clock.now()
                frame.metadata[HANDLED_KEY] = "sight"
                state = self._camera.state(now)
                self._log.emit("sight_asked", t=now, camera=state)
                await self._answer(frame, SIGHT_ANSWERS[state])
            return
        now = self._clock.now()
        frame.metadata[HANDLED_KEY] = "interjection"
        if spec.kind == "cancel":
            cancelled = self._scheduler.cancel(spec.label or "all")
            for spec_id in cancelled:
                await self._end_job(spec_id, JobState.CANCELLED, "user cancelled")
            # Nothing cancelled: "never mind that" may be about a background job or
            # the talk itself, which the delegation processor and the model handle.
            if cancelled:
                await self._answer(frame, self._ack(spec))
            return
        camera = self._camera.state(now)
        if needs_video(spec) and camera == "none":
            # An audio-only call: a silent watch would never fire, so say so instead.
            self._log.emit("interjection_refused", t=now, reason="no camera", task=frame.text)
            await self._answer(frame, NO_CAMERA)
            return
        try:
            job = self._registry.create(
                spec.source or frame.text,
                now=now,
                policy=spec.policy,
                # A timed job is due at its delay; cue and count jobs wait for the user.
                deadline_s=(spec.delay or 0.0) + 3600.0,
            )
        except DelegationError as e:
            self._log.emit("error", t=now, message=f"interjection refused: {e}")
            return
        try:
            added = self._scheduler.add(spec, now=self._request_time(now))
        except ValueError as e:
            self._registry.transition(job.job_id, JobState.FAILED, now=now, detail=str(e))
            self._log.emit("error", job_id=job.job_id, t=now, message=f"interjection refused: {e}")
            return
        if added is None:
            self._registry.transition(job.job_id, JobState.CANCELLED, now=now, detail="no-op")
            return
        spec_id = added
        self._jobs[spec_id] = job.job_id
        self._registry.transition(job.job_id, JobState.RUNNING, now=now)
        self._log.emit(
            "delegated", job_id=job.job_id, t=now, task=job.task, policy=job.policy.value,
            interjection=spec.kind, due_in=spec.delay,
        )  # fmt: skip
        await self.push_frame(
            BackgroundJobStateFrame(job_id=job.job_id, state=JobState.RUNNING, task=job.task)
        )
        # Stays in the context for later turns ("is my timer still on?"), whoever
        # answers this one.
        await self.push_frame(
            LLMMessagesAppendFrame(
                messages=[
                    {
                        "role": "developer",
                        "content": f"Job {job.job_id} ({spec.kind}) registered for the user's "
                        f"request {frame.text!r}: it is spoken automatically when due. Never "
                        "say it yourself and do not delegate it.",
                    }
                ],
                run_llm=False,
            )
        )
        if camera == "dark" and needs_sight(spec):
            self._camera.said_dark()
            self._log.emit("camera_notice", job_id=job.job_id, t=now, notice="dark", with_ack=True)
        await self._answer(frame, self._ack(spec, camera))

    async def _on_image(self, frame: InputImageRawFrame) -> None:
        try:
            dark = image_is_dark(frame.image, int(frame.size[0]), int(frame.size[1]), frame.format)
        except (TypeError, ValueError, IndexError):
            dark = None  # a malformed frame still says a camera is there (the ingest reports it)
        idle = self._next_camera_check() is None
        self._camera.image(self._clock.now(), dark=dark)
        if idle and self._next_camera_check() is not None:
            self._wake.set()  # a camera back for a waiting watch: watch for its loss again

    def _request_time(self, now: float) -> float:
        """When the user finished saying the request that is transcribed ``now``.

        "In ten seconds" counts from the end of the user's voice, not from the
        transcript, which arrives a few hundred milliseconds later; a stale or
        future speech end (another utterance) is not used.
        """
        end = self._speech_end
        if end is None or not now - _REQUEST_SPEECH_WINDOW_S <= end <= now:
            return now
        return end

    def _ack(self, spec: InterjectionSpec, camera: str = "live") -> str:
        text = acknowledge(spec, variant=self._acks, camera=camera)
        self._acks += 1
        return text

    def _watches(self) -> tuple[list[str], bool]:
        """The pending watches that need the camera, and whether one needs to see the user."""
        pending = self._scheduler.pending
        video = [sid for sid, spec in pending.items() if needs_video(spec) and sid in self._jobs]
        return video, any(needs_sight(pending[sid]) for sid in video)

    async def _camera_notice(self) -> None:
        """Tell the user once that the camera a watch waits on went away or dark."""
        video, seeing = self._watches()
        now = self._clock.now()
        notice = self._camera.due_notice(now, watching=bool(video), seeing=seeing)
        if notice is None:
            return
        job_id = self._jobs[video[0]]
        job = self._registry.get(job_id)
        self._log.emit("camera_notice", job_id=job_id, t=now, notice=notice, watches=len(video))
        await self.push_frame(
            BackgroundResultFrame(
                job_id=job_id, text=_CAMERA_NOTICES[notice], is_final=False, task=job.task,
                policy=DeliveryPolicy.WHEN_IDLE, verbatim=True,
            )
        )  # fmt: skip

    def _next_camera_check(self) -> float | None:
        video, seeing = self._watches()
        return self._camera.next_notice_at(watching=bool(video), seeing=seeing)

    async def _answer(self, frame: TranscriptionFrame, reply: str) -> None:
        self._log.emit("acknowledged", t=self._clock.now(), text=reply, gated=self._gate.live)
        if self._gate.live:
            self._handled.add(frame.text, reply)
            return
        # No gate in the pipeline: the model runs on this turn; tell it inside the
        # user's own words, where even a small model reads it, what to say.
        frame.text = (
            f"{frame.text} [This is already handled and will be said automatically at the "
            f'right moment. Reply with exactly: "{reply}"]'
        )

    async def _refresh_now_view(self) -> None:
        now = self._clock.now()
        jobs = [(j.job_id, j.task, now - j.created_at) for j in self._registry.active()]
        silent = None if self._user_quiet_since is None else now - self._user_quiet_since
        text = self._view.render(
            now=now,
            user_silent_for=silent,
            user_speaking=self._user_speaking,
            jobs=jobs,
            cues=list(self._cues),
        )
        if not text and not self._view_shown:
            return  # nothing to tell, nothing to take back: leave the context alone
        added = [{"role": "developer", "content": text}] if text else []
        self._view_shown = bool(text)

        def replace(messages: list[Any]) -> list[Any]:
            return [m for m in messages if not is_now_message(m)] + added

        await self.push_frame(LLMMessagesTransformFrame(transform=replace, run_llm=False))

    async def _fire(self, due: list[Interjection]) -> None:
        for item in due:
            job_id = self._jobs.get(item.spec_id)
            if job_id is None:
                continue
            job = self._registry.get(job_id)
            if not job.is_active:
                # Cancelled elsewhere (e.g. "never mind"): stop the request too.
                self._scheduler.cancel(item.spec_id)
                self._jobs.pop(item.spec_id, None)
                continue
            final = item.spec_id not in self._scheduler.pending
            self._log.emit("progress", job_id=job_id, text=f"due: {item.text}", due_at=item.time)
            if final:
                self._registry.transition(job_id, JobState.DONE, now=self._clock.now())
                self._jobs.pop(item.spec_id, None)
                await self.push_frame(
                    BackgroundJobStateFrame(job_id=job_id, state=JobState.DONE, task=job.task)
                )
            await self.push_frame(
                BackgroundResultFrame(
                    job_id=job_id, text=item.text, is_final=final, task=job.task,
                    policy=item.policy, verbatim=True,
                )
            )  # fmt: skip

    async def _end_job(self, spec_id: str, state: JobState, detail: str) -> None:
        job_id = self._jobs.pop(spec_id, None)
        if job_id is None:
            return
        if self._registry.transition(job_id, state, now=self._clock.now(), detail=detail):
            self._log.emit("job_state", job_id=job_id, state=state.value, detail=detail)
            await self.push_frame(
                BackgroundJobStateFrame(job_id=job_id, state=state, detail=detail)
            )

    async def _timer_loop(self) -> None:
        while True:
            now = self._clock.now()
            await self._fire(self._scheduler.poll(now + self._lead))
            for spec_id, job_id in list(self._jobs.items()):
                if not self._registry.get(job_id).is_active:  # cancelled as a job
                    self._scheduler.cancel(spec_id)
                    self._jobs.pop(spec_id, None)
            await self._camera_notice()
            due = self._scheduler.next_due()
            wake = None if due is None else due - self._lead
            check = self._next_camera_check()
            if check is not None:
                wake = check if wake is None else min(wake, check)
            self._wake.clear()
            # At least a millisecond: a due time a rounding error ahead of the clock
            # would otherwise be waited for with a timeout too small to move time.
            timeout = None if wake is None else max(1e-3, wake - self._clock.now())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _stop_timer(self) -> None:
        if self._timer is not None:
            await self.cancel_task(self._timer)
            self._timer = None

    async def cleanup(self) -> None:
        """Stop the timer."""
        await super().cleanup()
        await self._stop_timer()
