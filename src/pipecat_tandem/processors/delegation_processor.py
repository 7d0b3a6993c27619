#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The delegation processor: forks the live situation to background jobs.

Place it between the STT and the user aggregator: it sees the final
transcriptions (for the packet's transcript, cancellations, topic changes and the
optional router), the camera frames and the cues on their way in. It gives the
interaction model three non-blocking tools — ``delegate``, ``cancel_job`` and
``follow_up_job`` — and the same as a Python API (:meth:`DelegationProcessor.delegate`,
:meth:`~DelegationProcessor.cancel`, :meth:`~DelegationProcessor.follow_up`).
Job events from the runner come back as plugin frames pushed downstream, where the
:class:`~pipecat_tandem.processors.ResultInterleaver` picks them up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputImageRawFrame,
    LLMMessagesAppendFrame,
    StartFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService

from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.background.packet import CameraSnapshot, JobSummary, PacketBuilder
from pipecat_tandem.background.runner import BackgroundRunner, JobEvent
from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.errors import DelegationError, JobStateError, UnknownJobError
from pipecat_tandem.frames import (
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    CueFrame,
    DeliveryPolicy,
    JobState,
)
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.acknowledgements import (
    acknowledge_follow_up,
    acknowledge_job,
    acknowledge_job_cancel,
)
from pipecat_tandem.policy.injection import EchoGuard
from pipecat_tandem.policy.job_limits import JobLimits
from pipecat_tandem.policy.routing import resolve_follow_up
from pipecat_tandem.policy.topic import TopicTracker, cancel_only
from pipecat_tandem.policy.turn_notes import delegated_job_note
from pipecat_tandem.turns.follow_on import FollowOn

DELEGATE_DESCRIPTION = (
    "Hand a task to a slower, more capable background assistant that sees the whole "
    "conversation and has tools (calculator, dates, unit conversion, documents, camera). "
    "Use it for any arithmetic, planning, look-ups or anything needing care. It returns at "
    "once with a job id; tell the user briefly you're on it and keep talking. The result "
    "is brought back into the conversation later; never invent it."
)


class RouteDecisionLike(Protocol):
    """What a router answers (see :mod:`pipecat_tandem.policy.routing`)."""

    needs_background: bool
    task: str


class RouterLike(Protocol):
    """Decides from an utterance whether the background should take it."""

    def route(self, utterance: str) -> RouteDecisionLike:
        """Route one finalized user utterance."""
        ...


class TurnAnswerer(Protocol):
    """A stage that can answer a user turn in place of the interaction model."""

    def handle(self, text: str, reply: str) -> bool:
        """Answer utterance ``text`` with ``reply``; False if it cannot now."""
        ...


class DelegationProcessor(FrameProcessor):
    """Gives the interaction model background jobs. See the module docstring.

    Args:
        runner: Where jobs run (e.g. ``InProcessRunner(BackgroundAgent(...))``).
        llm: The interaction model; the job tools are registered on it.
        context: The live ``LLMContext`` (copied into each packet for API delegations).
        registry: Job limits and lifecycle (a default one is made).
        router: Optional fallback router for models that call tools unreliably: an
            utterance it routes to the background is delegated before the model runs,
            and the model is told so.
        topic: Cancellation / topic-change tracker.
        default_deadline_s: Deadline of jobs that don't ask for one.
        dedupe_window_s: A second delegation of the same task within this window
            returns the first job instead of starting another.
        clock: The session clock.
        event_log: The session event log.
        job_limits: Caps on jobs running at once and started per minute (default 4
            and 10); a refused delegation is answered with a short sentence the model
            can say. Public as :attr:`job_limits`, so it can be replaced.
        echo_guard: Refuses job-tool calls whose arguments repeat background text
            (see :class:`~pipecat_tandem.policy.injection.EchoGuard`).
        answerer: Where a job the router started is acknowledged without the
            interaction model (e.g. the awareness gate); public as :attr:`answerer`.
            Without one the model is told, inside the user's words, to acknowledge.
        **kwargs: Passed to ``FrameProcessor``.

    Example::

        delegation = DelegationProcessor(runner=runner, llm=llm, context=context)
        context.set_tools(ToolsSchema(standard_tools=delegation.function_schemas()))
    """

    def __init__(
        self,
        *,
        runner: BackgroundRunner,
        llm: LLMService | None = None,
        context: LLMContext | None = None,
        registry: JobRegistry | None = None,
        router: RouterLike | None = None,
        topic: TopicTracker | None = None,
        default_policy: DeliveryPolicy = DeliveryPolicy.WHEN_IDLE,
        dedupe_window_s: float = 30.0,
        clock: SessionClock | None = None,
        event_log: EventLog | None = None,
        job_limits: JobLimits | None = None,
        echo_guard: EchoGuard | None = None,
        answerer: TurnAnswerer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.answerer = answerer
        self._acks = 0
        self.job_limits = job_limits or JobLimits()
        self.echo_guard = echo_guard or EchoGuard()
        self._runner = runner
        self._context = context
        self.registry = registry or JobRegistry()
        self._router = router
        self._topic = topic or TopicTracker()
        self._default_policy = default_policy
        self._dedupe_s = dedupe_window_s
        self._clock: SessionClock = clock or (event_log.clock if event_log else LoopClock())
        self._log = event_log or EventLog(self._clock)
        self._packets = PacketBuilder()
        self._started = False
        self._closed = False
        self._turn_start: float | None = None
        self._follow_on = FollowOn()
        if llm is not None:
            self.register_tools(llm)

    #
    # Tools for the interaction model
    #

    def function_schemas(self) -> list[FunctionSchema]:
        """Schemas of ``delegate``, ``cancel_job`` and ``follow_up_job`` for the context."""
        return [
            FunctionSchema(
                name="delegate",
                description=DELEGATE_DESCRIPTION,
                properties={
                    "task": {"type": "string", "description": "What to do, self-contained."},
                    "policy": {
                        "type": "string",
                        "enum": [p.value for p in DeliveryPolicy],
                        "description": "when_idle (default), interrupt (urgent), silent.",
                    },
                },
                required=["task"],
            ),
            FunctionSchema(
                name="cancel_job",
                description="Stop a background job, e.g. when the user says never mind.",
                properties={"job_id": {"type": "string"}},
                required=["job_id"],
            ),
            FunctionSchema(
                name="follow_up_job",
                description="Add an instruction to a background job that is still running.",
                properties={"job_id": {"type": "string"}, "text": {"type": "string"}},
                required=["job_id", "text"],
            ),
        ]

    def register_tools(self, llm: LLMService) -> None:
        """Register the job tools' handlers on ``llm`` (they return at once)."""
        llm.register_function("delegate", self._tool_delegate)
        llm.register_function("cancel_job", self._tool_cancel)
        llm.register_function("follow_up_job", self._tool_follow_up)

    async def _refused_echo(self, params: FunctionCallParams, args: dict[str, Any]) -> bool:
        """Answer and log a call that repeats background text (injected, not asked for)."""
        reason = self.echo_guard.refusal(params.function_name, args)
        if reason is None:
            return False
        self._log.emit(
            "tool_call_refused", t=self._clock.now(), tool=params.function_name,
            arguments=args, reason=reason,
        )  # fmt: skip
        await params.result_callback(
            {"error": f"not done: {reason}. Only the user's own requests are carried out."}
        )
        return True

    async def _tool_delegate(self, params: FunctionCallParams) -> None:
        args = params.arguments if isinstance(params.arguments, dict) else {}
        if await self._refused_echo(params, args):
            return
        try:
            messages = params.context.get_messages() if params.context is not None else None
            job_id = await self.delegate(
                args.get("task"), policy=args.get("policy"), messages=messages
            )
        except DelegationError as e:
            await params.result_callback({"error": str(e)})
            return
        await params.result_callback(
            {
                "job_id": job_id,
                "status": "started",
                "note": "Working in the background. Tell the user briefly you're on it; the "
                "result will be brought in later. Do not guess it.",
            }
        )

    async def _tool_cancel(self, params: FunctionCallParams) -> None:
        args = params.arguments if isinstance(params.arguments, dict) else {}
        try:
            await self.cancel(str(args.get("job_id", "")), reason="cancelled by the model")
        except (UnknownJobError, JobStateError) as e:
            await params.result_callback({"error": str(e)})
            return
        await params.result_callback({"job_id": args.get("job_id"), "status": "cancelled"})

    async def _tool_follow_up(self, params: FunctionCallParams) -> None:
        args = params.arguments if isinstance(params.arguments, dict) else {}
        if await self._refused_echo(params, args):
            return
        try:
            await self.follow_up(str(args.get("job_id", "")), args.get("text"))
        except (UnknownJobError, JobStateError, DelegationError) as e:
            await params.result_callback({"error": str(e)})
            return
        await params.result_callback({"job_id": args.get("job_id"), "status": "follow-up added"})

    #
    # Python API
    #

    async def delegate(
        self,
        task: object,
        *,
        policy: DeliveryPolicy | str | None = None,
        deadline_s: float | None = None,
        messages: list[Any] | None = None,
    ) -> str:
        """Start a background job on ``task`` and return its id at once.

        Raises:
            DelegationError: The task was refused (empty, oversized, limits) or the
                pipeline has not started or has ended.
        """
        if not self._started or self._closed:
            raise DelegationError("the session is not running; no job was started")
        now = self._clock.now()
        text = self.registry.validate_task(task)
        duplicate = self.registry.find_similar_active(text, now=now, within_s=self._dedupe_s)
        if duplicate is not None:
            self._log.emit("duplicate_delegation", job_id=duplicate.job_id, t=now, task=text)
            return duplicate.job_id
        # Checked after the dedupe: a repeat of a running job costs nothing.
        refusal = self.job_limits.refusal(now=now, running=len(self.registry.active()))
        if refusal is not None:
            self._log.emit("delegation_refused", t=now, task=text, reason=refusal)
            raise DelegationError(refusal)
        job = self.registry.create(
            text, now=now, policy=policy or self._default_policy, deadline_s=deadline_s
        )
        self.job_limits.record(now=now)
        if messages is None:
            messages = self._context.get_messages() if self._context is not None else []
        others = [
            JobSummary(j.job_id, j.task, j.state.value, round(now - j.created_at, 3))
            for j in self.registry.active()
            if j.job_id != job.job_id
        ]
        packet = self._packets.build(
            job_id=job.job_id,
            task=job.task,
            policy=job.policy.value,
            now=now,
            wall_time=dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            deadline_s=job.deadline_s,
            messages=list(messages),
            other_jobs=others,
        )
        self._log.emit(
            "delegated", job_id=job.job_id, t=now, task=job.task, policy=job.policy.value,
            deadline_s=job.deadline_s, messages=len(packet.messages),
            camera=packet.camera is not None,
        )  # fmt: skip
        await self._push_state(job.job_id, JobState.QUEUED)
        await self._runner.submit(packet)
        return job.job_id

    async def cancel(self, job_id: str, *, reason: str = "cancelled") -> None:
        """Cancel a job: its work in flight stops and its result is never read out.

        Raises:
            UnknownJobError: No such job.
            JobStateError: The job already ended.
        """
        job = self.registry.get(job_id)
        if not job.is_active:
            raise JobStateError(f"{job.job_id} already ended ({job.state.value})")
        self.registry.transition(
            job.job_id, JobState.CANCELLED, now=self._clock.now(), detail=reason
        )
        await self._push_state(job.job_id, JobState.CANCELLED, reason)
        await self._runner.cancel(job.job_id)

    async def follow_up(self, job_id: str, text: object) -> None:
        """Add an instruction to a running job.

        Raises:
            UnknownJobError: No such job.
            JobStateError: The job already ended.
            DelegationError: Empty or oversized text.
        """
        job = self.registry.add_follow_up(job_id, text)
        self._log.emit("follow_up", job_id=job.job_id, text=job.follow_ups[-1])
        await self._runner.follow_up(job.job_id, job.follow_ups[-1])

    #
    # Frames
    #

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Record the situation; route, cancel and mark stale on user utterances."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._runner.start(task_manager=self.task_manager, sink=self._on_job_event)
            self._started = True
            return
        if isinstance(frame, EndFrame | CancelFrame):
            await self._shutdown()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._turn_start = self._clock.now()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            # The VAD reports a start start_secs late, and a stop stop_secs late.
            self._follow_on.speech_started(self._clock.now() - _seconds(frame, "start_secs"))
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._follow_on.speech_stopped(self._clock.now() - _seconds(frame, "stop_secs"))
        elif isinstance(frame, TranscriptionFrame) and direction is FrameDirection.DOWNSTREAM:
            # An utterance the awareness processor turned into a timed/cue job is not
            # routed again.
            await self._on_user_utterance(frame, routable="tandem_handled" not in frame.metadata)
        elif isinstance(frame, LLMMessagesAppendFrame) and direction is FrameDirection.DOWNSTREAM:
            await self._on_typed_text(frame)
        elif isinstance(frame, InputImageRawFrame):
            self._on_image(frame)
        elif isinstance(frame, CueFrame):
            self._packets.add_cue(frame.kind, frame.time, frame.value)
        await self.push_frame(frame, direction)

    def _on_image(self, frame: InputImageRawFrame) -> None:
        width, height = frame.size
        if frame.format not in (None, "RGB") or len(frame.image) != width * height * 3:
            return  # only raw RGB is kept for the camera tool; the ingest reports bad media
        self._packets.set_camera(
            CameraSnapshot(
                width, height, self._clock.now(), frame.image, frame.transport_source or "camera"
            )
        )

    async def _on_typed_text(self, frame: LLMMessagesAppendFrame) -> None:
        """A user turn typed by an RTVI client (``send-text``), routed like a spoken one.

        pipecat's RTVI processor turns ``send-text`` into one user message with
        ``run_llm``, which bypasses the transcription path: without this, a text
        client's requests were never delegated nor cancelled. The machinery's own
        appends (developer/assistant roles) are not user turns.
        """
        if not frame.run_llm or len(frame.messages) != 1:
            return
        message: Any = frame.messages[0]
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") != "user" or not isinstance(content, str) or not content.strip():
            return
        typed = TranscriptionFrame(text=content, user_id="", timestamp="")
        # No gated acknowledgement: the gate waits for a spoken turn's transcript;
        # the note in the user's own message makes the model acknowledge instead.
        await self._on_user_utterance(typed, routable=True, gated=False)
        message["content"] = typed.text

    async def _on_user_utterance(
        self, frame: TranscriptionFrame, *, routable: bool, gated: bool = True
    ) -> None:
        text = (frame.text or "").strip()
        if not text or self._closed:
            return
        now = self._clock.now()
        self.echo_guard.user_spoke(now=now)
        self._packets.add_utterance("user", text, self._turn_start or now, now)
        self._log.emit("transcript", t=now, role="user", text=text)
        # Typed turns have no voice timing: they never go on with a spoken request.
        follows = self._follow_on.utterance(now) if gated else None
        if not gated:
            self._follow_on.close()
        decision = self._router.route(text) if self._router is not None and routable else None
        new_task = decision is not None and decision.needs_background
        active = self.registry.active()
        verdict = self._topic.observe(
            text,
            active,
            # Words of the same breath as a request are that request's, not a move away.
            new_task=new_task or follows is not None,
        )
        for job_id in verdict.cancel:
            # No note for the model: the user's own words say it ("never mind the
            # report"). A bracketed "job-1 is now cancelled" before them made the 0.5B
            # refuse "Tell me a joke instead." in most samples (see turn_notes).
            await self.cancel(job_id, reason="user cancelled")
        if verdict.cancel and gated and self.answerer is not None and cancel_only(text, active):
            # Only a cancel: the machinery says so. Left to the 0.5B, "Actually, never
            # mind." got "Alright, I'll work that out." 2.4-4 s later (the suite).
            reply = acknowledge_job_cancel(variant=self._acks)
            if self.answerer.handle(frame.text, reply):
                self._acks += 1
                self._log.emit(
                    "acknowledged", t=now, job_id=verdict.cancel[0], text=reply, gated=True
                )
        for job_id in verdict.stale:
            job = self.registry.mark_stale(job_id, "user moved on")
            self._log.emit(
                "job_state", job_id=job_id, state="stale_pending", detail=job.stale_reason
            )
            await self._push_state(job_id, JobState.STALE, "stale: user moved on")
        # Not the job's: a new request in the same breath (a job of its own), a timer or
        # cue (the awareness processor's), a cancel or an explicit switch of topic.
        fold = routable and not new_task and not verdict.cancel and not verdict.stale
        if (
            follows is not None
            and fold
            and await self._go_on_with(follows, frame, now, gated=gated)
        ):
            return
        if decision is None or verdict.cancel or not new_task:
            return
        # "Also write one about volcanoes": the background sees the task alone, so the
        # thing "one" stands for is named from the requests before it.
        task = resolve_follow_up(
            decision.task or text, [job.task for job in reversed(self.registry.jobs)]
        )
        try:
            job_id = await self.delegate(task)
        except DelegationError as e:
            self._log.emit("error", t=now, message=f"router delegation refused: {e}")
            # Left to the model, a refused task gets a guessed answer (in a real call
            # "11 days" for 47): the caller hears the refusal instead.
            if gated and self.answerer is not None:
                self.answerer.handle(frame.text, f"Sorry, I can't take that on right now: {e}.")
            return
        if gated:
            self._follow_on.delegated(job_id, now)
        # Said inside the user's own turn, where even a small model reads it, so the
        # interaction model acknowledges instead of guessing the answer itself (it
        # runs when this turn had other words too, or when nothing else answers).
        # (Only for this turn's reply: later requests leave it out, see turn_notes.)
        frame.text = f"{frame.text} {delegated_job_note(job_id)}"
        # A turn that was only this request is acknowledged by the machinery: at
        # once, and with no model run that could guess the answer or delegate again.
        reply = acknowledge_job(getattr(decision, "reason", ""), variant=self._acks)
        if gated and self.answerer is not None and self.answerer.handle(frame.text, reply):
            self._acks += 1
            self._log.emit("acknowledged", t=now, job_id=job_id, text=reply, gated=True)

    async def _go_on_with(
        self, job_id: str, frame: TranscriptionFrame, now: float, *, gated: bool
    ) -> bool:
        """Add words said in the same breath as a delegated request to its job.

        See :mod:`pipecat_tandem.turns.follow_on`. Returns False (the turn is then
        handled as any other) if the job has ended or the words are refused.
        """
        text = frame.text.strip()
        try:
            await self.follow_up(job_id, text)
        except (DelegationError, JobStateError, UnknownJobError):
            self._follow_on.close()
            return False
        self._log.emit("follow_on", t=now, job_id=job_id, text=text)
        reply = acknowledge_follow_up(variant=self._acks)
        if gated and self.answerer is not None and self.answerer.handle(frame.text, reply):
            self._acks += 1
            self._log.emit("acknowledged", t=now, job_id=job_id, text=reply, gated=True)
        else:
            # No stage answers for the model: it is told, in the turn, that a job has it.
            frame.text = f"{frame.text} {delegated_job_note(job_id)}"
        return True

    async def _on_job_event(self, event: JobEvent) -> None:
        now = self._clock.now()
        try:
            job = self.registry.get(event.job_id)
        except UnknownJobError:
            return
        if event.kind == "started":
            if self.registry.transition(job.job_id, JobState.RUNNING, now=now):
                await self._push_state(job.job_id, JobState.RUNNING)
        elif event.kind == "progress":
            if job.is_active:
                self.echo_guard.remember(event.text, now=now)
                self._log.emit("progress", job_id=job.job_id, t=now, text=event.text)
                await self.push_frame(BackgroundProgressFrame(job_id=job.job_id, text=event.text))
        elif event.kind in ("partial", "result"):
            final = event.kind == "result"
            if final:
                state = JobState.STALE if job.stale_reason else JobState.DONE
                if not self.registry.transition(job.job_id, state, now=now):
                    return  # cancelled meanwhile: the result is never read out
                await self._push_state(job.job_id, state, job.stale_reason)
            elif not job.is_active:
                return
            self.echo_guard.remember(event.text, now=now)
            await self.push_frame(
                BackgroundResultFrame(
                    job_id=job.job_id, text=event.text, is_final=final, task=job.task,
                    stale=bool(job.stale_reason), policy=job.policy,
                )
            )  # fmt: skip
        elif event.kind == "error":
            if self.registry.transition(job.job_id, JobState.FAILED, now=now, detail=event.text):
                self.echo_guard.remember(event.text, now=now)
                self._log.emit("failed", job_id=job.job_id, t=now, error=event.text)
                await self._push_state(job.job_id, JobState.FAILED, event.text)
                await self.push_frame(
                    BackgroundErrorFrame(
                        job_id=job.job_id, error=event.text, task=job.task, policy=job.policy
                    )
                )
        elif event.kind == "cancelled":
            if self.registry.transition(job.job_id, JobState.CANCELLED, now=now, detail="stopped"):
                await self._push_state(job.job_id, JobState.CANCELLED, "stopped")

    async def _push_state(self, job_id: str, state: JobState, detail: str = "") -> None:
        job = self.registry.get(job_id)
        if state is not JobState.STALE or job.state is JobState.STALE:
            self._log.emit("job_state", job_id=job_id, state=state.value, detail=detail)
        await self.push_frame(
            BackgroundJobStateFrame(job_id=job_id, state=state, task=job.task, detail=detail)
        )

    async def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        now = self._clock.now()
        for job in self.registry.active():
            self.registry.transition(
                job.job_id, JobState.CANCELLED, now=now, detail="session ended"
            )
            self._log.emit(
                "job_state", job_id=job.job_id, state="cancelled", detail="session ended"
            )
        await self._runner.close()

    async def cleanup(self) -> None:
        """Cancel every job still running (a session that ends leaks no tasks)."""
        await super().cleanup()
        await self._shutdown()


def _seconds(frame: object, name: str) -> float:
    """A VAD frame's delay field (0 when absent or not a number)."""
    value = getattr(frame, name, 0.0)
    return float(value) if isinstance(value, int | float) else 0.0
