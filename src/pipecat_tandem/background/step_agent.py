#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The constrained step loop: one schema-decoded step at a time, tools run here.

Used by :class:`~pipecat_tandem.background.agent.BackgroundAgent` for any pipecat
``LLMService`` that can enforce a JSON schema (``run_inference(...,
response_schema=...)``: the embedded llama.cpp models through grammar decoding,
OpenAI and compatible servers through structured outputs). Each model call
returns exactly one step (:mod:`pipecat_tandem.background.steps`); a tool step
runs the tool off the event loop and feeds its result back; an answer step ends
the job once it passes the spoken-answer checks
(:mod:`pipecat_tandem.background.answer`) and carries the value of the last
quantitative tool it relied on.

The prompt is laid out for llama.cpp's prompt cache: the fixed instructions come
first (identical for every job, so prefilled once), the job's situation after.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.llm_service import LLMService

from pipecat_tandem.background.answer import (
    ASKS_WEEKDAY,
    carries_value,
    date_problem,
    flatten_lists,
    miscopies,
    numbers_in,
    shorten,
    speaks_of_the_user,
    ungrounded_specifics,
    unspeakable_reason,
)
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobReporter
from pipecat_tandem.background.steps import (
    StepError,
    ToolStep,
    follow_up_line,
    parse_step,
    required_tools,
    step_instructions,
    step_schema,
    tools_for_task,
)
from pipecat_tandem.background.tools.base import Tool, ToolEnv
from pipecat_tandem.background.tools.dates import reference_time, task_expression
from pipecat_tandem.background.tools.documents import task_query
from pipecat_tandem.background.tools.units import task_conversion
from pipecat_tandem.policy.routing import PERSONAL_RECORD

#: Tools whose result is the number the answer must state.
QUANTITATIVE_TOOLS = ("calculator", "convert_units")
#: Tools whose result, read from the task's own words, answers it without the conversation.
SELF_CONTAINED_TOOLS = (*QUANTITATIVE_TOOLS, "dates")

#: Conversation messages shown to the step model (the most recent ones).
HISTORY_MESSAGES = 6

#: Characters kept of each history message.
HISTORY_CHARS = 300

#: Tokens one step may take. A tool call or a 30-word answer fit easily; a longer
#: answer is cut here and keeps its whole sentences (``parse_step`` salvages them),
#: so a rambling plan costs at most this many decoded tokens (~4.5/s on one core).
STEP_MAX_TOKENS = 64


class StepLoopError(RuntimeError):
    """The model could not produce a usable answer (the message says why)."""


def _value(result: dict[str, Any]) -> Any:
    inner = result.get("result")
    if isinstance(inner, dict):
        inner = inner.get("value", inner.get("result"))
    return None if isinstance(inner, bool) else inner


def step_view(outcome: dict[str, Any]) -> dict[str, Any]:
    """What the step model is shown of a tool's outcome: the facts, nothing else.

    Every token of a result is prefilled on a slow core (~16 tokens/s), and a small
    model copies the wrong field of a big result (an ISO date where the words were
    wanted, a snippet's neighbouring line). Kept: an error; a date in words; a
    day count; the best lines of a document search; a value with its unit. Other
    results are shown whole.

    Args:
        outcome: ``{"result": ...}`` or ``{"error": ...}`` from ``Tool.call``.
    """
    result = outcome.get("result")
    if "error" in outcome or not isinstance(result, dict):
        return outcome
    if "days" in result:
        return {k: result[k] for k in ("days", "to") if k in result}
    if "spoken" in result:
        return {"date": result["spoken"]}
    if "lines" in result:
        if not result["lines"]:
            return {"lines": [], "note": result.get("note", "nothing found")}
        return {"lines": result["lines"]}
    if "value" in result:
        return {k: result[k] for k in ("value", "unit") if k in result}
    return result


_COMPARISON = re.compile(
    r"\b(which|what)(?:'s| is| one is)? (bigger|larger|greater|more|less|smaller|longer|shorter|"
    r"heavier|lighter|faster|slower|cheaper|higher|lower|further|farther)\b|\b(more|less|bigger|"
    r"smaller|larger|greater|longer|shorter|heavier|lighter|faster|slower|higher|lower) than\b|"
    r"\bcompare\b",
    re.I,
)


def comparison_note(task: str, step: ToolStep, outcome: dict[str, Any]) -> str | None:
    """For a comparison task, how the tool's value compares with the task's other numbers.

    A small model that has computed one side ("17 * 23" is 391) still misjudges
    which side is larger ("391, which is more than 400"). The numbers of the task
    that were not the tool's inputs are the other side; the comparison is stated
    for it, in the task's own words when its two sides can be told apart:
    ``"17 times 23 (391) is less than 400"``, else ``"391 is less than 400"``.

    Args:
        task: The task text.
        step: The tool call (its arguments are the inputs).
        outcome: The tool's outcome.

    Returns:
        The note, or ``None`` when the task compares nothing or no other number is left.
    """
    if step.name not in QUANTITATIVE_TOOLS or not _COMPARISON.search(task):
        return None
    value = _value(outcome)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    inputs = set(numbers_in(json.dumps(step.arguments)))
    others = [n for n in dict.fromkeys(numbers_in(task)) if n not in inputs]
    if not others:
        return None
    unit = (outcome.get("result") or {}).get("unit")
    shown = f"{_fmt(value)} {unit}" if isinstance(unit, str) else _fmt(value)
    sides = _sides(task)
    if sides is not None:
        for side, phrase in (sides, sides[::-1]):
            mine, theirs = set(numbers_in(side)), numbers_in(phrase)
            if mine and mine <= inputs and len(theirs) == 1 and theirs[0] not in inputs:
                return f"{side} ({shown}) is {_relation(value, theirs[0])} {phrase}"
    parts = []
    for other in others:
        shown_other = _fmt(int(other) if other.denominator == 1 else float(other))
        parts.append(f"{_relation(value, other)} {shown_other}")
    return f"{shown} is {' and '.join(parts)}"


def _relation(value: float, other: Any) -> str:
    return "more than" if value > other else "less than" if value < other else "equal to"


def _sides(task: str) -> tuple[str, str] | None:
    """The two sides of "which is bigger, A or B" / "is A more than B", if it reads so."""
    text = " ".join(task.lower().replace("?", " ").split()).strip(" .!")
    match = _WHICH_SIDES.match(text) or _THAN_SIDES.match(text)
    if match is None:
        return None
    return match.group(1).strip(), match.group(2).strip()


_COMPARATIVE = (
    r"(?:bigger|larger|greater|more|less|smaller|longer|shorter|heavier|lighter|faster|slower|"
    r"cheaper|higher|lower|further|farther)"
)
# "which is bigger, A or B" / "is A more than B"
_WHICH_SIDES = re.compile(
    rf"^(?:which|what)(?:'s| is| one is)? {_COMPARATIVE}[,:]? (.+?),? or (.+?)$"
)
_THAN_SIDES = re.compile(rf"^(?:is|are) (.+?) {_COMPARATIVE} than (.+?)$")
_QUANTITY = re.compile(r"^(-?\d+(?:\.\d+)?) ([a-z° ]+)$")


def comparison_step(task: str, by_name: dict[str, Tool]) -> ToolStep | None:
    """The one tool call a two-sided comparison task needs, if its sides are plain.

    "is 17 times 23 more than 400" computes ``17 times 23`` (the side that is not a
    bare number); "which is longer, 5 kilometres or 3 miles" converts the first
    quantity into the second's unit. With :func:`comparison_note` the model then
    reads which side is larger instead of judging it. Sides the tools cannot read
    ("3 dozen eggs") give ``None``: the model works it out itself.

    Args:
        task: The task text.
        by_name: The tools offered, by name.
    """
    sides = _sides(task)
    if sides is None:
        return None
    left, right = sides
    calculator = by_name.get("calculator")
    if calculator is not None:
        for side, other in ((left, right), (right, left)):
            if numbers_in(other) and re.fullmatch(r"-?[\d,]+(?:\.\d+)?", other):
                step = ToolStep("calculator", {"expression": side})
                if "error" not in calculator.call(step.arguments, ToolEnv()):
                    return step
    units = by_name.get("convert_units")
    a, b = _QUANTITY.match(left), _QUANTITY.match(right)
    if units is not None and a and b:
        value = float(a.group(1))
        args = {
            "value": int(value) if value.is_integer() else value,
            "from_unit": a.group(2),
            "to_unit": b.group(2),
        }
        if "error" not in units.call(args, ToolEnv()):
            return ToolStep("convert_units", args)
    return None


Figure = tuple[str, int | float]  # a tool's answer field and its value


def _fact(
    name: str, outcome: dict[str, Any], task: str, answer_fields: tuple[str, ...] = ()
) -> tuple[Any, str | None, Figure | None]:
    """``(value, iso_date, figure)`` the answer must agree with, from a tool's outcome.

    ``answer_fields`` are the tool's own (:attr:`Tool.answer_fields`): the first of
    them that the result holds as a number is the value the answer must state, and
    ``figure`` names it (None for every other kind of fact).
    """
    result = outcome.get("result")
    if "error" in outcome or not isinstance(result, dict):
        return None, None, None
    for key in answer_fields:
        figure = result.get(key)
        if isinstance(figure, int | float) and not isinstance(figure, bool):
            return figure, None, (key, figure)
    if name in QUANTITATIVE_TOOLS:
        return _value(outcome), None, None
    if name == "dates":
        days = result.get("days")
        if isinstance(days, int | float) and not isinstance(days, bool):
            if ASKS_WEEKDAY.search(task) and isinstance(result.get("to_date"), str):
                # the model counted days to the date asked about
                return None, result["to_date"], None
            # "23 days away" or "276 days ago": the count is said without its sign.
            return abs(days), None, None
        if isinstance(result.get("date"), str):
            return None, result["date"], None
    return None, None, None


def _answer_fields(tools: list[Tool], name: str) -> tuple[str, ...]:
    """The named tool's :attr:`Tool.answer_fields` (none for a tool not offered)."""
    return next((t.answer_fields for t in tools if t.name == name), ())


def render_situation(packet: ContextPacket, follow_ups: list[str], history: list[str]) -> str:
    """The job's situation as one user message: recent conversation, time, task."""
    lines: list[str] = []
    if history:
        lines.append("Conversation so far (most recent last):")
        lines += history
    if packet.wall_time:
        lines.append(f"Now: {_spoken_now(packet.wall_time)}")
    if packet.camera is not None:
        lines.append("A camera frame is available to the look_at_camera tool.")
    lines.append(f"Task: {packet.task}")
    lines += [follow_up_line(f) for f in [*packet.follow_ups, *follow_ups]]
    return "\n".join(lines)


def history_lines(messages: list[dict[str, Any]], task: str = "") -> list[str]:
    """The last user/assistant messages as ``User: ...`` / ``Assistant: ...`` lines.

    Args:
        messages: The conversation.
        task: The job's task: a message that only repeats it is left out (the task
            is stated anyway, and every token is prefilled on a slow core).
    """
    out: list[str] = []
    same = " ".join(task.split()).lower()
    for m in messages:
        role = m.get("role")
        content = m.get("content")
        if role not in ("user", "assistant") or not isinstance(content, str):
            continue
        text = " ".join(content.split())
        if not text or text.startswith("("):  # tool notes of the interaction model
            continue
        if same and text.lower() == same:
            continue
        out.append(f"{'User' if role == 'user' else 'Assistant'}: {text[:HISTORY_CHARS]}")
    return out[-HISTORY_MESSAGES:]


@dataclass
class StepLoop:
    """Runs one job with the step protocol.

    Parameters:
        llm: Any service whose ``run_inference`` enforces ``response_schema``.
        tools: The tools offered.
        max_steps: Model calls before the job gives up.
        strict: Use the strict schema flavour (every property required).
    """

    llm: LLMService
    tools: list[Tool]
    max_steps: int = 5
    strict: bool = True

    async def _from_task(
        self, packet: ContextPacket, by_name: dict[str, Tool], env: ToolEnv, reporter: JobReporter
    ) -> list[tuple[ToolStep, dict[str, Any]]]:
        """The tool call the task itself spells out, run before the model's first step.

        A task that is nothing but a date expression ("how many days until the first
        of March"), a two-sided comparison (:func:`comparison_step`), a plain unit
        conversion, or a look-up in the user's notes needs no decision by the model
        (a sum said as it is is the agent's calculator prefetch):
        running it now saves a slow model a whole decoding step (~5 s on one core).
        The model still answers, and may call a tool again if the result misses.
        """
        found: list[tuple[ToolStep, dict[str, Any]]] = []
        dates = by_name.get("dates")
        if dates is not None:
            now, _ = reference_time(env)
            expression = task_expression(packet.task, now)
            if expression is not None:
                found.append((ToolStep("dates", {"expression": expression}), {}))
        compared = comparison_step(packet.task, by_name) if not found else None
        if compared is not None:
            found.append((compared, {}))
        conversion = task_conversion(packet.task) if not found else None
        if conversion is not None and "convert_units" in by_name:
            found.append((ToolStep("convert_units", conversion), {}))
        search = by_name.get("search_documents")
        if search is not None and not found:
            query = task_query(packet.task)
            if query is not None:
                found.append((ToolStep("search_documents", {"query": query}), {}))
        done = []
        for step, _ in found:
            tool = by_name[step.name]
            outcome = await asyncio.to_thread(tool.call, step.arguments, env)
            result = outcome.get("result")
            empty = isinstance(result, dict) and result.get("lines") == []
            if "error" in outcome or (empty and not PERSONAL_RECORD.search(packet.task)):
                # Nothing to show: the model decides for itself. (That the notes do
                # not hold a record the user asks for is itself the answer.)
                continue
            await reporter.progress(f"{step.name} (from the task) → {_brief(outcome)}")
            done.append((step, outcome))
        return done

    def _tool_turn(
        self, step: ToolStep, outcome: dict[str, Any], task: str = ""
    ) -> list[dict[str, Any]]:
        view = step_view(outcome)
        note = comparison_note(task, step, outcome)
        if note is not None:
            view["compared"] = note
        return [
            {"role": "assistant", "content": self._as_step(json.loads(step.as_json()))},
            {
                "role": "user",
                "content": "Result: " + json.dumps(view, default=str, ensure_ascii=False)[:1500],
            },
        ]

    def _as_step(self, fields: dict[str, Any]) -> str:
        # Written back in the form the schema makes the model write it.
        return json.dumps({"step": fields} if self.strict else fields, ensure_ascii=False)

    async def _step(self, messages: list[dict[str, Any]], schema: dict[str, Any]) -> str | None:
        context = LLMContext(messages=list(messages))  # type: ignore[arg-type]
        return await self.llm.run_inference(
            context, max_tokens=STEP_MAX_TOKENS, response_schema=schema
        )

    async def run(
        self,
        packet: ContextPacket,
        reporter: JobReporter,
        *,
        history: list[dict[str, Any]],
        prefetched: list[tuple[ToolStep, dict[str, Any]]] | None = None,
    ) -> str:
        """Run steps until an answer passes the checks.

        Returns:
            The spoken answer.

        Raises:
            StepLoopError: No usable answer within ``max_steps``.
        """
        offered = tools_for_task(packet.task, self.tools)
        schema = step_schema(offered, strict=self.strict)
        # Tool choice "required" while a tool the task names is not called yet: its
        # answer is the tool's to give (a report, a live reading), never the model's.
        required = required_tools(packet.task, offered)
        must_call = step_schema(required, strict=self.strict, answer=False)
        by_name = {t.name: t for t in offered}
        env = ToolEnv(packet=packet)
        follow_ups = reporter.take_follow_ups()
        prefetched = list(prefetched or [])
        if not prefetched:
            prefetched = await self._from_task(packet, by_name, env, reporter)
        # A quantity the tools read whole from the task's own words needs none of the
        # conversation, and every token of it is prefilled on the background's slow
        # core (~100 tokens, 1-2 s, in a call).
        self_contained = (
            bool(prefetched)
            and all(done.name in SELF_CONTAINED_TOOLS for done, _ in prefetched)
            and not follow_ups
            and not packet.follow_ups
        )
        situation = render_situation(
            packet, follow_ups, [] if self_contained else history_lines(history, packet.task)
        )
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": step_instructions(self.tools, wrapped=self.strict)},
            {"role": "user", "content": situation},
        ]
        value: Any = None
        fact_date: str | None = None
        figure: Figure | None = None
        known = numbers_in(packet.task)  # numbers the answer may state without a tool's
        # A record of the user's must be quoted from their notes or words, not made up.
        record = PERSONAL_RECORD.search(packet.task) is not None
        grounds = [packet.task, *history_lines(history), *packet.follow_ups]
        for done, outcome in prefetched:
            messages += self._tool_turn(done, outcome, packet.task)
            grounds.append(json.dumps(outcome, default=str))
            known += numbers_in(grounds[-1])
            fields = _answer_fields(self.tools, done.name)
            new_value, new_date, new_figure = _fact(done.name, outcome, packet.task, fields)
            if new_value is not None or new_date is not None:
                value, fact_date, figure = new_value, new_date, new_figure
        problems = 0
        # A small model can loop on a call it has made (the 0.5B re-evaluates the
        # value it was given); a repeat is not run again, and from then on, as on
        # the last step, only the answer is allowed.
        calls = {_call_key(done) for done, _ in prefetched}
        pending = {t.name for t in required} - {done.name for done, _ in prefetched}
        answer_only = step_schema([], strict=self.strict)
        must_answer = False
        asked_for_you = False
        for attempt in range(self.max_steps):
            for text in reporter.take_follow_ups():
                messages.append({"role": "user", "content": follow_up_line(text)})
            last = attempt == self.max_steps - 1
            if must_answer or last:
                reply = await self._step(messages, answer_only)
            else:
                reply = await self._step(messages, must_call if pending else schema)
            try:
                step = parse_step(reply, offered)
            except StepError as e:
                problems += 1
                await reporter.progress(f"unusable step: {e}")
                if problems >= 2:
                    raise StepLoopError(str(e)) from None
                continue
            if isinstance(step, ToolStep) and _call_key(step) in calls:
                # Not added to the conversation (a note saying so was echoed back by
                # the 0.5B as its answer): the same prompt runs again, answer-only.
                await reporter.progress(f"repeated call refused: {step.name}")
                must_answer = True
                continue
            if isinstance(step, ToolStep):
                calls.add(_call_key(step))
                pending.clear()  # one call of a named tool answers for the domain
                await reporter.progress(f"{step.name} {json.dumps(step.arguments)[:120]}")
                outcome = await asyncio.to_thread(by_name[step.name].call, step.arguments, env)
                await reporter.progress(f"{step.name} → {json.dumps(outcome, default=str)[:160]}")
                messages += self._tool_turn(step, outcome, packet.task)
                grounds.append(json.dumps(outcome, default=str))
                known += numbers_in(grounds[-1])
                fields = _answer_fields(self.tools, step.name)
                new_value, new_date, new_figure = _fact(step.name, outcome, packet.task, fields)
                if new_value is not None or new_date is not None:
                    value, fact_date, figure = new_value, new_date, new_figure
                continue
            answer = shorten(flatten_lists(step.text))
            reason = unspeakable_reason(answer)
            if reason is None and value is not None and not carries_value(answer, value):
                reason = f"it does not state the tool's result {_fmt(value)}"
            if reason is None and fact_date is not None:
                reason = date_problem(answer, fact_date, known=[packet.task], task=packet.task)
            invented = ungrounded_specifics(answer, grounds) if record else []
            if reason is None and invented:
                reason = f"no note or message holds {', '.join(invented[:3])}"
            if reason is None and not (asked_for_you or last) and speaks_of_the_user(answer):
                # Asked once, apart from the answer's other problems: a second answer
                # that still says "the user" is kept (its facts may well be right).
                asked_for_you = True
                await reporter.progress(f'answer sent back (it says "the user"): {answer[:120]}')
                messages += self._sent_back(answer, 'it speaks of "the user"; say it to them')
                continue
            if reason is None:
                return answer
            problems += 1
            await reporter.progress(f"answer refused ({reason}): {answer[:120]}")
            if problems >= 2 and invented:
                # Twice a made-up record: say honestly that it is not to be found.
                where = (
                    "your notes or our conversation"
                    if "search_documents" in by_name
                    else "our conversation"
                )
                return f"I couldn't find that in {where}."
            if problems >= 2:
                speakable = unspeakable_reason(answer) is None
                if fact_date is not None and date_problem(
                    answer, fact_date, known=[packet.task], task=packet.task
                ):
                    # The date tool answered the question as the model asked it; a
                    # sentence that contradicts it twice is not kept.
                    return f"It is {_spoken(fact_date)}."
                if figure is not None and speakable and not numbers_in(answer):
                    # The figure the tool is for, left out twice ("The weather in San
                    # Francisco is sunny." for 75 and sunny): said after the answer. An
                    # answer with another number is left to the rules below.
                    name = figure[0].replace("_", " ")
                    return f"{answer} The {name} is {_fmt(figure[1])}."
                if value is not None and (
                    miscopies(answer, value, known) or (not speakable and numbers_in(answer))
                ):
                    # It miscopied the tool's number twice, or wrote no usable answer
                    # around it: say the number itself.
                    return f"The answer is {_fmt(value)}."
                if speakable:
                    # It disagrees with the tool without garbling its number (another
                    # quantity, or the tool answered another question): grounding must
                    # never turn a right answer into a wrong one, so keep the model's.
                    return answer
                raise StepLoopError(f"the answer was {reason}")
            messages += self._sent_back(answer, reason)
        raise StepLoopError(f"no answer after {self.max_steps} steps")

    def _sent_back(self, answer: str, reason: str) -> list[dict[str, Any]]:
        """The refused answer and the request for another, as two messages."""
        return [
            {"role": "assistant", "content": self._as_step({"answer": answer})},
            {
                "role": "user",
                "content": f"That answer cannot be spoken: {reason}. Give the final answer "
                "again in plain words, key fact first.",
            },
        ]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e15 else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _call_key(step: ToolStep) -> str:
    return json.dumps([step.name, step.arguments], sort_keys=True, default=str)


def _brief(outcome: dict[str, Any]) -> str:
    return json.dumps(step_view(outcome), default=str, ensure_ascii=False)[:160]


def _spoken_now(wall_time: str) -> str:
    # "Wednesday 2 December 2026, 10:00": the weekday spelled out spares a small model
    # working it out, and the words are fewer tokens than the ISO stamp.
    try:
        moment = datetime.fromisoformat(wall_time.strip())
    except ValueError:
        return wall_time
    return f"{_spoken(moment.date().isoformat())} {moment.year}, {moment.strftime('%H:%M')}"


def _spoken(iso_date: str) -> str:
    moment = datetime.fromisoformat(iso_date)
    return f"{calendar.day_name[moment.weekday()]} {moment.day} {calendar.month_name[moment.month]}"


__all__ = ["StepLoop", "StepLoopError"]
