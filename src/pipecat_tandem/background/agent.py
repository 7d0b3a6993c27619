#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The background agent: any pipecat ``LLMService`` in a tool loop over a context packet.

Each job runs a small pipecat pipeline of its own,
``[user aggregator, llm, tap, assistant aggregator]``, in a ``PipelineWorker``:
pipecat itself executes the tool calls (handlers registered with
``register_function``) and re-runs the model on their results, exactly as in a
call. The tap streams progress notes (the model's words before a tool call, each
tool's outcome) and ends the job at the first response that asks for no tool.

The model sees the whole conversation from the packet. Tool calls and results of
tools it does not have (the interaction model's own ``delegate`` calls, say) are
rendered as text notes so every provider accepts the history; nothing is dropped.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import (
    NOT_GIVEN,
    LLMContext,
    LLMContextToolChoice,
)
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.background.answer import (
    miscopies,
    numbers_in,
    shorten,
    unspeakable_reason,
)
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobReporter
from pipecat_tandem.background.step_agent import StepLoop, StepLoopError
from pipecat_tandem.background.steps import ToolStep, follow_up_line, required_tools
from pipecat_tandem.background.tools.base import Tool, ToolEnv
from pipecat_tandem.background.tools.calculator import task_arithmetic

DEFAULT_INSTRUCTIONS = (
    "You are the background reasoner of a voice assistant. The assistant is talking with the "
    "user right now and handed you a task; the conversation so far is above. Work the task out "
    "carefully, using the tools when they help (always use the calculator for arithmetic). "
    "Then reply with the final answer only: one to three short, plain sentences the assistant "
    "can say aloud, with the key number or fact first. No markdown, no lists."
)


class AgentError(RuntimeError):
    """The background model failed (pipeline error, tool loop limit)."""


def _tool_value(result: str) -> int | float | None:
    """The value of a successful calculator result (``{"result": {"value": ...}}``).

    Only a structured, successful result is trusted: an error's text ("max 300") or a
    free-form string holds numbers that are not the answer.
    """
    try:
        data = json.loads(result)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or "error" in data:
        return None
    while isinstance(data, dict):
        inner = data.get("value", data.get("result"))
        if isinstance(inner, bool) or inner is None:
            return None
        if isinstance(inner, int):
            return inner
        if isinstance(inner, float):
            return inner if math.isfinite(inner) else None
        data = inner
    return None


def ground_numbers(
    answer: str, task: str, tool_results: list[str], other_results: Sequence[str] = ()
) -> str:
    """Guard against a model that miscopies a calculator's number into its answer.

    Small models asked to relay a calculator result sometimes write a different number.
    Grounding must never turn a right answer into a wrong one, so the answer is replaced
    by the last calculator value only when that result is a success and the answer
    states a garbled copy of it (:func:`~pipecat_tandem.background.answer.miscopies`):
    not when it states the value, a number of the task or of any tool's result, or a
    number of another size (a different quantity, perhaps the right one). In doubt the
    model's answer is kept.

    Args:
        answer: The model's answer.
        task: The task as phrased.
        tool_results: The job's calculator results (JSON), oldest first.
        other_results: The job's other tool results (their numbers are not invented).
    """
    if not tool_results:
        return answer
    value = _tool_value(tool_results[-1])
    if value is None:
        return answer
    known = [*numbers_in(task)]
    for r in [*tool_results, *other_results]:
        known += numbers_in(r)
    if not miscopies(answer, value, known):
        return answer
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"The result is {shown}."


def render_history(
    messages: Iterable[dict[str, Any]], known_tools: set[str]
) -> list[dict[str, Any]]:
    """Messages for the background model: system prompts dropped, foreign tool traffic as text.

    The interaction model's system prompt is its persona, not the background's; tool calls
    to tools the background does not have become assistant notes, their results user-side
    notes, so providers that check tool pairing accept the history.
    """
    out: list[dict[str, Any]] = []
    foreign_ids: set[str] = set()
    for m in messages:
        if "llm_specific" in m:
            continue
        role = m.get("role")
        if role == "system":
            continue
        calls = m.get("tool_calls") or []
        if role == "assistant" and calls:
            names = {c.get("function", {}).get("name") for c in calls}
            if names <= known_tools:
                out.append(m)
                continue
            notes = []
            for c in calls:
                fn = c.get("function", {})
                notes.append(f"(called {fn.get('name')} with {fn.get('arguments')})")
            foreign_ids |= {str(c.get("id")) for c in calls}
            text = " ".join(filter(None, [m.get("content") or "", *notes]))
            out.append({"role": "assistant", "content": text})
        elif role == "tool" and str(m.get("tool_call_id")) in foreign_ids:
            out.append({"role": "user", "content": f"(tool result: {m.get('content')})"})
        else:
            out.append(m)
    return out


class _AgentTap(FrameProcessor):
    """Watches the job's LLM output: progress notes, tool rounds and the final answer."""

    def __init__(self, reporter: JobReporter, max_tool_rounds: int, llm: LLMService) -> None:
        super().__init__(name=f"tandem-agent-tap-{reporter.job_id}")
        self._llm = llm
        self._reporter = reporter
        self._max_rounds = max_tool_rounds
        self._rounds = 0
        self._text: list[str] = []
        self._calls_in_response = False
        self.answer: str | None = None
        self.error: str | None = None
        self.tool_results: list[str] = []  # calculator results of this job
        self.other_results: list[str] = []  # other tools' results (their numbers are known)
        self.on_finished: Callable[[], Any] | None = None
        self.on_first_call: Callable[[], Any] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if direction is not FrameDirection.DOWNSTREAM or self.answer is not None:
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._text = []
            self._calls_in_response = False
        elif isinstance(frame, LLMTextFrame):
            self._text.append(frame.text)
        elif isinstance(frame, FunctionCallsStartedFrame | FunctionCallInProgressFrame):
            self._calls_in_response = True
            if self.on_first_call is not None:
                first, self.on_first_call = self.on_first_call, None
                first()
        elif isinstance(frame, FunctionCallResultFrame):
            result = (
                frame.result
                if isinstance(frame.result, str)
                else json.dumps(frame.result, default=str)
            )
            if frame.function_name == "calculator":
                # Only exact arithmetic is grounded: other tools' numbers (dates, counts)
                # are not "the answer".
                self.tool_results.append(result)
            else:
                self.other_results.append(result)
            await self._reporter.progress(f"{frame.function_name} → {_brief(frame.result)}")
        elif isinstance(frame, LLMFullResponseEndFrame):
            text = "".join(self._text).strip()
            if self._calls_in_response or _calls_pending(self._llm):
                self._rounds += 1
                if text:
                    await self._reporter.progress(text)
                if self._rounds > self._max_rounds:
                    await self._finish(error=f"gave up after {self._max_rounds} tool rounds")
            else:
                await self._finish(answer=text)

    async def _finish(self, *, answer: str | None = None, error: str | None = None) -> None:
        self.answer, self.error = answer if error is None else "", error
        if self.on_finished is not None:
            await self.on_finished()


def tool_choice_for(required: Sequence[Tool]) -> LLMContextToolChoice:
    """OpenAI's ``tool_choice`` that makes a function-calling model call one of ``required``.

    One tool is named (``{"type": "function", ...}``); several leave the pick to
    the model but still require a call (``"required"``).

    Raises:
        ValueError: ``required`` is empty (nothing to require).
    """
    if not required:
        raise ValueError("no tool to require")
    if len(required) == 1:
        return {"type": "function", "function": {"name": required[0].name}}
    return "required"


def _calls_pending(llm: LLMService) -> bool:
    # pipecat creates the function-call tasks inside run_function_calls, before the
    # response's end frame is pushed, but their FunctionCallInProgressFrames come later.
    # The task table is the one synchronous signal that this response asked for tools.
    tasks = getattr(llm, "_function_call_tasks", None)
    queue = getattr(llm, "_sequential_runner_queue", None)
    return bool(tasks) or bool(queue is not None and queue.qsize())


def _brief(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class BackgroundAgent:
    """Runs background jobs with a pipecat ``LLMService`` and tools.

    Args:
        llm: A service instance (jobs then take turns on it), or
        llm_factory: A callable making a fresh service per job (jobs run in parallel).
        tools: Tools (see :mod:`pipecat_tandem.background.tools`).
        functions: Extra pipecat tools: ``(FunctionSchema, handler)`` pairs registered
            with ``register_function`` (the handler gets pipecat's ``FunctionCallParams``).
        setup_llm: Called with each job's service before it runs, to register more tools
            the pipecat way; returns their schemas (a ``ToolsSchema`` or a list). For MCP
            servers: ``setup_llm=lambda llm: mcp_client.register_tools(llm)``.
        instructions: The background model's task framing.
        max_tool_rounds: Tool rounds before the job gives up.
        prefetch: Run the calculator on the task before the model starts when the task
            is plain arithmetic, and put the call and its result in the job's conversation
            (small models otherwise skip the tool and guess the number).
        steps: Drive the model with the constrained step protocol
            (:mod:`~pipecat_tandem.background.step_agent`: each reply is one tool call
            or the answer, decoded under a JSON schema). ``None`` (default): when the
            service can enforce a response schema and no pipecat functions or
            ``setup_llm`` tools were given (those need pipecat's own tool loop).
        max_steps: Model calls of the step protocol before a job gives up.

    Example::

        agent = BackgroundAgent(llm=OpenAILLMService(...), tools=default_tools())
        runner = InProcessRunner(agent, max_concurrency=2)
    """

    def __init__(
        self,
        *,
        llm: LLMService | None = None,
        llm_factory: Callable[[], LLMService] | None = None,
        tools: list[Tool] | None = None,
        functions: list[tuple[FunctionSchema, Any]] | None = None,
        setup_llm: Callable[[LLMService], Awaitable[Any]] | None = None,
        instructions: str = DEFAULT_INSTRUCTIONS,
        max_tool_rounds: int = 6,
        prefetch: bool = True,
        steps: bool | None = None,
        max_steps: int = 5,
    ) -> None:
        if (llm is None) == (llm_factory is None):
            raise ValueError("give exactly one of llm= or llm_factory=")
        self._llm = llm
        self._factory = llm_factory
        self._lock = asyncio.Lock() if llm is not None else None
        self._tools = list(tools or [])
        self._functions = list(functions or [])
        names = [t.name for t in self._tools] + [s.name for s, _ in self._functions]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate tool names: {names}")
        self._setup_llm = setup_llm
        self._instructions = instructions
        self._max_rounds = max_tool_rounds
        self._prefetch = prefetch
        self._steps = steps
        self._max_steps = max_steps

    @property
    def tool_names(self) -> set[str]:
        """Names of every tool the agent offers its model."""
        return {t.name for t in self._tools} | {s.name for s, _ in self._functions}

    def build_messages(self, packet: ContextPacket, follow_ups: list[str]) -> list[dict[str, Any]]:
        """The job's conversation: instructions, the history, then the task."""
        lines = [f"Task: {packet.task}"]
        if packet.wall_time:
            lines.append(f"Current date and time: {packet.wall_time}")
        if packet.other_jobs:
            lines.append(
                "Other background tasks in flight (not yours): "
                + "; ".join(j.task for j in packet.other_jobs)
            )
        if packet.camera is not None:
            lines.append("A camera frame is available to the look_at_camera tool.")
        for f in [*packet.follow_ups, *follow_ups]:
            lines.append(follow_up_line(f))
        return [
            {"role": "system", "content": self._instructions},
            *render_history(packet.messages, self.tool_names),
            {"role": "user", "content": "\n".join(lines)},
        ]

    async def run(self, packet: ContextPacket, reporter: JobReporter) -> str:
        """Run one job to its final answer (raises :class:`AgentError` on failure)."""
        if self._lock is not None:
            async with self._lock:
                assert self._llm is not None
                return await self._run(self._llm, packet, reporter)
        assert self._factory is not None
        return await self._run(self._factory(), packet, reporter)

    def _register(self, llm: LLMService, packet: ContextPacket) -> list[FunctionSchema]:
        env = ToolEnv(packet=packet)
        schemas: list[FunctionSchema] = []
        for tool in self._tools:

            async def handler(params: FunctionCallParams, tool: Tool = tool) -> None:
                args = dict(params.arguments or {})
                result = await asyncio.to_thread(tool.call, args, env)
                await params.result_callback(result)

            llm.register_function(tool.name, handler)
            schemas.append(tool.schema())
        for schema, fn in self._functions:
            if fn is not None:
                llm.register_function(schema.name, fn)
            schemas.append(schema)
        return schemas

    async def _prefetched(
        self, packet: ContextPacket, reporter: JobReporter, tap: _AgentTap
    ) -> list[dict[str, Any]]:
        """Tool call + result messages for a task the calculator can answer outright."""
        found = await self._prefetch_outcome(packet, reporter)
        if found is None:
            return []
        step, outcome = found
        result = json.dumps(outcome, default=str)
        tap.tool_results.append(result)
        function = {"name": "calculator", "arguments": json.dumps(step.arguments)}
        call = {"id": "prefetch-1", "type": "function", "function": function}
        return [
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "prefetch-1", "content": result},
        ]

    def uses_steps(self, llm: LLMService) -> bool:
        """Whether jobs on ``llm`` run the constrained step protocol (see ``steps``)."""
        if self._steps is not None:
            return self._steps
        plain = not self._functions and self._setup_llm is None
        return plain and bool(getattr(llm, "supports_response_schema", False))

    async def _prefetch_outcome(
        self, packet: ContextPacket, reporter: JobReporter
    ) -> tuple[ToolStep, dict[str, Any]] | None:
        calculator = next((t for t in self._tools if t.name == "calculator"), None)
        if not self._prefetch or calculator is None:
            return None
        expression = task_arithmetic(packet.task)
        if expression is None:
            return None
        args = {"expression": expression}
        outcome = await asyncio.to_thread(calculator.call, args, ToolEnv(packet=packet))
        if "error" in outcome:
            return None
        await reporter.progress(f"calculator → {_brief(outcome)}")
        return ToolStep("calculator", args), outcome

    async def _run_steps(
        self, llm: LLMService, packet: ContextPacket, reporter: JobReporter
    ) -> str:
        loop = StepLoop(
            llm,
            self._tools,
            max_steps=self._max_steps,
            # llama.cpp's grammar allows optional properties; strict providers do not.
            strict=not getattr(llm, "lenient_response_schema", False),
        )
        prefetched = await self._prefetch_outcome(packet, reporter)
        await reporter.progress("thinking")
        try:
            return await loop.run(
                packet,
                reporter,
                history=render_history(packet.messages, self.tool_names),
                prefetched=[prefetched] if prefetched else None,
            )
        except StepLoopError as e:
            raise AgentError(str(e)) from None

    async def _run(self, llm: LLMService, packet: ContextPacket, reporter: JobReporter) -> str:
        if self.uses_steps(llm):
            return await self._run_steps(llm, packet, reporter)
        schemas = self._register(llm, packet)
        if self._setup_llm is not None:
            extra = await self._setup_llm(llm)
            if isinstance(extra, ToolsSchema):
                extra = extra.standard_tools
            known = {s.name for s in schemas}
            schemas += [s for s in extra or [] if s.name not in known]
        context = LLMContext(messages=self.build_messages(packet, reporter.take_follow_ups()))  # type: ignore[arg-type]
        if schemas:
            context.set_tools(ToolsSchema(standard_tools=schemas))
        required = required_tools(packet.task, self._tools)
        if required:
            # As the step protocol's answer-less first step: a task that names a tool's
            # domain (a report, the weather) must call it before anything is answered.
            context.set_tool_choice(tool_choice_for(required))
        # No user speaks in a job's pipeline. pipecat's default turn strategies load a
        # smart-turn ONNX session per aggregator: 40-60 ms on the event loop (and its
        # threads and memory) for every job; at 50 sessions that stalled the loop.
        pair = LLMContextAggregatorPair(
            context,
            user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies()),
        )
        tap = _AgentTap(reporter, self._max_rounds, llm)
        if required:
            # Once called, the model may answer (a forced choice would call forever).
            tap.on_first_call = lambda: context.set_tool_choice(NOT_GIVEN)
        for message in await self._prefetched(packet, reporter, tap):
            context.add_message(message)  # type: ignore[arg-type]
        worker = PipelineWorker(
            Pipeline([pair.user(), llm, tap, pair.assistant()]),
            params=PipelineParams(),
            cancel_on_idle_timeout=False,
            enable_rtvi=False,
            enable_turn_tracking=False,
            name=f"tandem-{packet.job_id}",
        )
        errors: list[str] = []

        async def finished() -> None:
            follow_ups = reporter.take_follow_ups() if tap.error is None else []
            if follow_ups:
                # The user added to the task while it ran: fold it in and keep going.
                tap.answer = None
                context.add_message(
                    {"role": "user", "content": "Follow-up: " + " ".join(follow_ups)}
                )
                await worker.queue_frame(LLMRunFrame())
                return
            await worker.queue_frame(EndFrame())

        tap.on_finished = finished

        @worker.event_handler("on_pipeline_started")
        async def _started(_worker: PipelineWorker, _frame: Frame) -> None:
            await reporter.progress("thinking")
            await worker.queue_frame(LLMRunFrame())

        @worker.event_handler("on_pipeline_error")
        async def _error(_worker: PipelineWorker, frame: ErrorFrame) -> None:
            errors.append(frame.error)
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False, check_dangling_tasks=False)
        await runner.add_workers(worker)
        try:
            await runner.run()
        finally:
            if not worker.has_finished():
                await worker.cancel()
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            # WorkerRunner.run() absorbs a cancellation (deadline or job cancel) and
            # returns normally: re-raise it so the runner sees a timeout / cancel.
            raise asyncio.CancelledError()
        if errors:
            raise AgentError(errors[0])
        if tap.error:
            raise AgentError(tap.error)
        if tap.answer is None:
            raise AgentError("the background model stopped without an answer")
        grounded = ground_numbers(tap.answer, packet.task, tap.tool_results, tap.other_results)
        if grounded != tap.answer:
            await reporter.progress(
                f"answer corrected to the tool result (model said: {tap.answer})"
            )
        reason = unspeakable_reason(grounded)
        if reason not in (None, "empty"):  # empty: the runner reports "no usable answer"
            # A free-running model narrated its plan or wrote a call as text.
            raise AgentError(f"the answer was {reason}")
        return shorten(grounded)
