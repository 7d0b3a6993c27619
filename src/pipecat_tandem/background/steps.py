#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The constrained step protocol of the background model.

Each reply of the background model is one *step*, decoded under a JSON schema
(llama.cpp grammar decoding locally, structured outputs on cloud services):
either exactly one tool call with valid arguments, or the final answer::

    {"tool": "calculator", "expression": "3.5 * 24 * 60"}
    {"answer": "Three and a half days is 5,040 minutes."}

Strict structured-output providers want an object at the top, so there the step
is wrapped (``{"step": {...}}``); llama.cpp takes the bare step, which saves the
small local model four decoded tokens (about a second on one core) per step.
A tool may offer the step protocol a simpler signature than its full schema
(``Tool.extra["step_properties"]``): the dates tool takes one expression there.

A model constrained this way cannot narrate a plan or write a tool call as
prose, so nothing but an answer can come out of a job. Everything here is pure:
:func:`step_schema` builds the schema from the tools, :func:`parse_step` reads a
reply, :func:`tools_prompt` describes the tools to the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pipecat_tandem.background.answer import MAX_ANSWER_WORDS
from pipecat_tandem.background.tools.base import Tool
from pipecat_tandem.policy.routing import PERSONAL_RECORD

_RESERVED = {"tool", "answer"}


class StepError(ValueError):
    """A reply that is not a valid step."""


@dataclass(frozen=True)
class ToolStep:
    """Call one tool.

    Parameters:
        name: The tool's name.
        arguments: Its arguments.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        """The step as the model wrote it (for the job's conversation)."""
        return json.dumps({"tool": self.name, **self.arguments})


@dataclass(frozen=True)
class AnswerStep:
    """The final answer.

    Parameters:
        text: What the user will hear.
    """

    text: str


Step = ToolStep | AnswerStep


def _property(schema: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
    kept = {k: v for k, v in schema.items() if k in ("type", "enum")}
    if "type" not in kept and "enum" not in kept:
        kept["type"] = "string"
    if nullable and "type" in kept:
        kept["type"] = [kept["type"], "null"]
    return kept


def step_signature(tool: Tool) -> tuple[dict[str, Any], list[str]]:
    """The arguments a tool takes in the step protocol: ``(properties, required)``.

    A tool's ``extra["step_properties"]`` (all required) replaces its full schema
    there; otherwise its own properties and required names are used.
    """
    compact = tool.extra.get("step_properties")
    if isinstance(compact, dict) and compact:
        return compact, list(compact)
    return tool.properties, tool.required


def step_schema(tools: list[Tool], *, strict: bool = False, answer: bool = True) -> dict[str, Any]:
    """The JSON schema of one step: a call to one of ``tools`` or ``{"answer": ...}``.

    Args:
        tools: The tools the model may call.
        strict: Every property required, optional ones nullable, and the step
            wrapped in ``{"step": ...}`` (what strict structured-output providers
            demand). Otherwise optional arguments may be left out and the step is
            bare, which saves a small local model many tokens.
        answer: Allow the answer step. ``False`` (with ``tools``) is tool choice
            "required": the step must be a call (see :func:`required_tools`).

    Raises:
        ValueError: A tool uses a reserved argument name (``tool``, ``answer``).
    """
    variants: list[dict[str, Any]] = []
    for tool in tools:
        properties, required_args = step_signature(tool)
        clash = _RESERVED & set(properties)
        if clash:
            raise ValueError(f"tool {tool.name!r} uses reserved argument names {sorted(clash)}")
        props: dict[str, Any] = {"tool": {"type": "string", "enum": [tool.name]}}
        for name, prop in properties.items():
            props[name] = _property(prop, nullable=strict and name not in required_args)
        required = ["tool", *(props if strict else required_args)]
        variants.append(
            {
                "type": "object",
                "properties": props,
                "required": list(dict.fromkeys(required)),
                "additionalProperties": False,
            }
        )
    if answer or not variants:
        variants.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    if not strict:
        return {"anyOf": variants}
    return {
        "type": "object",
        "properties": {"step": {"anyOf": variants}},
        "required": ["step"],
        "additionalProperties": False,
    }


_PARTIAL_ANSWER = re.compile(r'^\s*\{\s*(?:"step"\s*:\s*\{\s*)?"answer"\s*:\s*"(.*)$', re.S)


def _salvage_answer(text: str) -> str | None:
    """What can be said of an answer cut off by the token limit, if anything.

    A long answer (a plan) can run past the step's token budget; its finished
    sentences are still an answer, so the budget can stay small without losing it.
    With no finished sentence, a run of at least five words up to a comma or
    semicolon is kept as one ("Your booking reference is QX7-2291, and ...").
    """
    match = _PARTIAL_ANSWER.match(text)
    if match is None:
        return None
    body = match.group(1)
    body = body[: len(body) - (len(body) - len(body.rstrip("\\")))]  # no dangling escape
    try:
        partial = json.loads(f'"{body}"')
    except json.JSONDecodeError:
        return None
    sentences = re.findall(r"[^.!?]*[.!?](?=\s|$)", partial)
    kept = "".join(sentences).strip()
    if not kept:
        clause = re.match(r"(.*)[,;]\s", partial, re.S)
        if clause and len(clause.group(1).split()) >= 5:
            kept = clause.group(1).strip() + "."
    return kept or None


def parse_step(text: str | None, tools: list[Tool]) -> Step:
    """Read one constrained reply.

    Args:
        text: The model's reply (JSON text following :func:`step_schema`).
        tools: The tools offered.

    Raises:
        StepError: The reply is empty, not JSON, names an unknown tool, or has
            an empty answer.
    """
    if not isinstance(text, str) or not text.strip():
        raise StepError("the model returned nothing")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        salvaged = _salvage_answer(text)
        if salvaged is not None:
            return AnswerStep(salvaged)
        raise StepError(f"the reply is not JSON ({e.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("step"), dict):
        data = data["step"]
    if not isinstance(data, dict):
        raise StepError("the reply is not a JSON object")
    if "answer" in data:
        answer = data["answer"]
        if not isinstance(answer, str) or not answer.strip():
            raise StepError("the answer is empty")
        return AnswerStep(answer.strip())
    name = data.get("tool")
    by_name = {t.name: t for t in tools}
    if not isinstance(name, str) or name not in by_name:
        raise StepError(f"unknown tool {name!r}")
    arguments = {k: v for k, v in data.items() if k != "tool" and v is not None}
    return ToolStep(name, arguments)


_DOCUMENT_WORDS = re.compile(
    r"\b(my|the) (notes?|documents?|files?|folder|manual|docs)\b|\bin my\b|\blook (it )?up\b|"
    r"\baccording to\b|" + PERSONAL_RECORD.pattern,
    re.I,
)
_DATE_WORDS = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b(days|weeks|months) (between|from|to|until|till|since|left|"
    r"away|ago)\b|\b(what day|which day|day of the week|weekday|date|until|till|since|ago|"
    r"from (today|now)|"
    r"tomorrow|yesterday|today|next (week|month|year|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)|christmas|new year'?s?|birthday|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|leap year)\b",
    re.I,
)
_QUANTITY_WORDS = re.compile(
    r"[-+*/^=%]\s*\d|\d\s*[+*/^=%x]|\b(percent|times|plus|minus|divided|multiplied|squared|"
    r"cubed|square root|root of|factorial|average|total|sum|product|how (many|much|long|far)|"
    r"convert|per|bigger|larger|smaller|greater|less|more|cheaper|faster|"
    r"miles?|km|kilomet(er|re)s?|feet|foot|meters?|metres?|pounds?|kilograms?|kg|celsius|"
    r"fahrenheit|degrees|liters?|litres?|gallons?|ounces?|grams?|inch(es)?|cm|hours?|minutes?|"
    r"seconds?|weeks?|years?|mph|calories)\b",
    re.I,
)
# A request for a plan, suggestions or tips: its numbers ("dinner in twenty minutes",
# "a three day trip") are constraints, not a quantity to compute.
_PLAN_REQUEST = re.compile(
    r"^\s*(please\s+)?(can you\s+)?(plan|suggest|recommend|brainstorm|outline|"
    r"give me (some |a few |\w+ )?(tips|ideas|suggestions|advice|options)|tips|ideas)\b",
    re.I,
)
_CAMERA_WORDS = re.compile(
    r"\b(camera|see me|can you see|look at me|what am i (holding|wearing))\b", re.I
)


_TASK_WORD = re.compile(r"[a-z]+")


def _stem(word: str) -> str:
    # "reports" names the report tool, "temperatures" the weather one: plural -s only,
    # which is all a list of domain nouns needs.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def required_tools(task: str, tools: list[Tool]) -> list[Tool]:
    """The tools a task names by their domain words; the first step must call one.

    A tool whose answer only it can know (a report it writes, a live reading) says
    so with ``Tool.domain``. Offered freely, a 1.5B model still writes the report
    or the temperature itself; the step schema without the answer variant
    (:func:`step_schema` ``answer=False``) makes the call the only step it can
    decode. Words are matched whole, case- and plural-insensitively, so "a report
    on volcanoes", "Reports, please" and "the weather in Paris" all count, and
    "reporter" or "weathered" do not.

    Args:
        task: The task text.
        tools: The tools on offer.

    Returns:
        The tools named, in the order given (empty when none is).
    """
    words = {_stem(w) for w in _TASK_WORD.findall(task.lower())}
    return [t for t in tools if any(_stem(d.lower()) in words for d in t.domain)]


def tools_for_task(task: str, tools: list[Tool]) -> list[Tool]:
    """The tools that fit a task, so the schema offers a small model no wrong one.

    A look-up in the user's documents gets the document search, a date question the
    date tool, a quantity (numbers, units, durations) the calculator and unit tool;
    a request with none of these (a plan, tips, an explanation) gets no tool: the
    step schema then allows only the answer. A request for a plan or suggestions
    gets no quantity tools for the numbers it mentions (they are constraints). A
    tool whose domain the task names (:func:`required_tools`) is offered too. A
    matched tool the agent lacks is skipped; when nothing that matched is present,
    every tool stays on offer.

    Args:
        task: The task text.
        tools: The agent's tools.
    """
    by_name = {t.name: t for t in tools}
    named = required_tools(task, tools)
    wanted: list[str] = [t.name for t in named]
    if _CAMERA_WORDS.search(task):
        wanted.append("look_at_camera")
    if _DOCUMENT_WORDS.search(task):
        wanted.append("search_documents")
    if _DATE_WORDS.search(task):
        wanted += ["dates", "calculator"]
    if _QUANTITY_WORDS.search(task) and not _PLAN_REQUEST.search(task):
        wanted += ["calculator", "convert_units"]
    if not wanted:
        return []
    known = [n for n in dict.fromkeys(wanted) if n in by_name]
    # Tools the agent has beyond the built-in ones (user's own) always stay offered.
    builtin = {"look_at_camera", "search_documents", "dates", "calculator", "convert_units"}
    extra = [t for t in tools if t.name not in builtin and t.name not in known]
    if not known:
        return list(tools)
    return [by_name[n] for n in known] + extra


def tools_prompt(tools: list[Tool]) -> str:
    """One line per tool: its name, arguments (as the step protocol takes them) and use."""
    lines = []
    for tool in tools:
        properties, required = step_signature(tool)
        args = ", ".join(f"{name}{'' if name in required else '?'}" for name in properties)
        lines.append(f"- {tool.name}({args}): {tool.description}")
    return "\n".join(lines)


# The tool list comes last: the rules and examples before it are the same for every
# agent (with or without a documents folder), so llama.cpp's prompt cache keeps them.
STEP_INSTRUCTIONS = """\
You work in the background for a voice assistant: it hands you a task from its \
conversation with the user, and you solve it. Reply with one JSON step at a time:
- a tool call: {open}"tool": "<name>", <arguments>{close}, then you get its result;
- the final answer: {open}"answer": "<what the assistant says>"{close}.

Rules:
- Never work a number or a date out in your head: write one expression for the \
calculator (e.g. "3.5 * 24 * 60", "12% of 350", "(68 - 32) * 5 / 9", "max(3 * 12, 40)") \
or call the unit or date tool. For dates, write the task's own words as the dates \
expression ("next friday", "christmas", "the first of march", "today + 45 days").
- When the task points to the user's notes or documents, search them first.
- To compare, compute the side that needs it (one expression per call), read \
"compared" in the result, then name the larger side first, with its value.
- The answer is one or two short sentences (at most {words} words), key fact first, plain \
spoken words: no lists, no markdown, no plan, no mention of tools. Say dates in words \
("Friday 4 December"), never as 2026-12-04.
- Give the tool's exact value in the answer.
- If the tools and the conversation cannot answer it, say so in one short sentence.

Example. Task: how many hours are in two weeks
{open}"tool": "calculator", "expression": "2 * 7 * 24"{close}
Result: {{"value": 336}}
{open}"answer": "Two weeks have 336 hours."{close}

Example. Task: how many days until Christmas
{open}"tool": "dates", "expression": "days_until(christmas)"{close}
Result: {{"days": 23}}
{open}"answer": "Christmas is 23 days away."{close}

Example. Task: what's the date three weeks from today
{open}"tool": "dates", "expression": "today + 3 weeks"{close}
Result: {{"date": "Wednesday 23 December 2026"}}
{open}"answer": "Three weeks from today is Wednesday 23 December."{close}

Example. Task: how many days from 2027-02-10 to 2027-04-01
{open}"tool": "dates", "expression": "days_between(2027-02-10, 2027-04-01)"{close}
Result: {{"days": 50}}
{open}"answer": "There are 50 days between those dates."{close}

Example. Task: what day of the week is 14 March 2027
{open}"tool": "dates", "expression": "weekday(14 March 2027)"{close}
Result: {{"date": "Sunday 14 March 2027"}}
{open}"answer": "The 14th of March 2027 is a Sunday."{close}

Example. Task: what is the door code in my notes
{open}"tool": "search_documents", "query": "door code"{close}
Result: {{"lines": ["The door code is 4471, the gate code 90."]}}
{open}"answer": "Your door code is 4471."{close}

Example. Task: which is heavier, 3 pounds or 1.5 kilograms
{open}"tool": "convert_units", "value": 3, "from_unit": "lb", "to_unit": "kg"{close}
Result: {{"value": 1.360777, "unit": "kg", "compared": "1.36078 kg is less than 1.5"}}
{open}"answer": "1.5 kilograms is heavier: 3 pounds is only 1.36 kilograms."{close}

Example. Task: give me three tips to sleep better
{open}"answer": "Keep a fixed bedtime, avoid screens for an hour before bed, and \
keep the room cool and dark."{close}

Tools:
{tools}
"""


def follow_up_line(text: str) -> str:
    """How a follow-up the user added while the job ran is put to the model.

    The words come from the call's speech recognition, which can mishear them:
    "Use Fahrenheit." came as "You stare in height.", and the 1.5B then answered a
    weather job with "The user is looking at the camera at a height of 75 degrees
    Fahrenheit.". Told that a follow-up may be misheard, it left that one out
    and still followed one that made sense ("In Celsius, please.": 24 degrees).
    Said here, not in the system prompt, so jobs without a follow-up get the
    very prompt they were measured with.
    """
    return (
        f"Follow-up from the user: {text} (heard by speech recognition, so it may be "
        "misheard: if it makes no sense for the task, leave it out)"
    )


def step_instructions(tools: list[Tool], *, wrapped: bool = False) -> str:
    """The background model's system prompt for the step protocol.

    Args:
        tools: The agent's tools.
        wrapped: Show steps wrapped in ``{"step": ...}`` (the strict schema's form).
    """
    return STEP_INSTRUCTIONS.format(
        tools=tools_prompt(tools),
        words=MAX_ANSWER_WORDS,
        open='{"step": {' if wrapped else "{",
        close="}}" if wrapped else "}",
    )
