#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Tool calls written as text by small local models, detected and parsed.

llama.cpp's server leaves Qwen2.5's tool calls in the reply text when the model
omits the ``<tool_call>`` tags (the 0.5B and 1.5B usually do), so the local LLM
service finds them itself. Shapes seen from these models:

* ``{"name": "delegate", "arguments": {"task": "..."}}`` (0.5B),
* the same inside a ```` ```json ```` fence,
* ``{{"name": ..., "arguments": {...}}}`` with doubled outer braces (1.5B),
* the canonical ``<tool_call>{...}</tool_call>``, one or several,
* a JSON list of calls, or one call per line.

Everything here is pure and synchronous: :class:`ToolCallSniffer` decides from the
first characters of a streamed reply whether to hold it back (it may be a call)
or to speak it at once; :func:`parse_tool_calls` turns a held-back reply into
calls, or returns ``None`` so the text is treated as ordinary speech.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: A held-back reply longer than this is not a tool call from these models.
MAX_TOOL_CALL_CHARS = 16_000

_FENCE = re.compile(r"^```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)\n?[ \t]*```\s*$", re.S)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_TOOL_CALL_TAG = "<tool_call>"


@dataclass(frozen=True)
class ParsedToolCall:
    """One tool call found in a model's text.

    Parameters:
        name: The function name.
        arguments: The arguments object (always a dict).
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


def parse_tool_calls(text: str) -> list[ParsedToolCall] | None:
    """Parse a complete reply as tool calls.

    Args:
        text: The model's whole reply.

    Returns:
        The calls in order, or ``None`` when the reply is not (entirely) tool
        calls — plain text, partial or garbage JSON, a JSON value that is not
        a call — in which case it should be treated as text.
    """
    if not isinstance(text, str):
        return None
    body = text.strip()
    if not body or len(body) > MAX_TOOL_CALL_CHARS:
        return None
    if body.startswith(_TOOL_CALL_TAG):
        calls: list[ParsedToolCall] = []
        for chunk in _TAGGED.findall(body):
            parsed = _parse_json_calls(_unfence(chunk.strip()))
            if parsed is None:
                return None
            calls.extend(parsed)
        leftover = _TAGGED.sub("", body).strip()
        return calls if calls and not leftover else None
    return _parse_json_calls(_unfence(body))


def _unfence(body: str) -> str:
    match = _FENCE.match(body)
    if match is None:
        return body
    language = match.group(1).lower()
    if language not in ("", "json", "tool_call", "tool"):
        return ""  # a code block in another language is never a call
    return match.group(2).strip()


def _parse_json_calls(body: str) -> list[ParsedToolCall] | None:
    if not body or body[0] not in "{[":
        return None
    value = _loads_lenient(body)
    if value is _INVALID:
        return None
    items = value if isinstance(value, list) else [value]
    calls = [_as_call(item) for item in items]
    if not calls or any(c is None for c in calls):
        return None
    return [c for c in calls if c is not None]


_INVALID = object()


def _loads_lenient(body: str) -> Any:
    """``json.loads`` plus the two habits of these models: doubled braces, one call per line."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    # Qwen 1.5B: ``{{"name": ..., "arguments": {...}}}`` — drop the extra opening
    # braces, decode one object, and allow only closing braces after it.
    if body.startswith("{{"):
        inner = body
        while inner.startswith("{{"):
            inner = inner[1:].lstrip()
        try:
            value, end = json.JSONDecoder().raw_decode(inner)
        except ValueError:
            value, end = _INVALID, 0
        if value is not _INVALID and set(inner[end:].strip()) <= {"}"} and inner[end:].strip():
            return value
    # Several calls one after another ("{...}\n{...}" or "{...} {...}").
    values = []
    decoder = json.JSONDecoder()
    position = 0
    while position < len(body):
        try:
            value, position = decoder.raw_decode(body, position)
        except ValueError:
            return _INVALID
        values.append(value)
        while position < len(body) and body[position] in " \t\r\n,":
            position += 1
    return values if len(values) > 1 else _INVALID


def _as_call(item: Any) -> ParsedToolCall | None:
    if not isinstance(item, dict):
        return None
    if "function" in item and isinstance(item["function"], dict):  # OpenAI's own shape
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI sends arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    return ParsedToolCall(name=name.strip(), arguments=arguments)


class SniffVerdict(StrEnum):
    """What the start of a streamed reply says about it."""

    UNDECIDED = "undecided"  # only blanks or an ambiguous prefix so far
    TEXT = "text"  # ordinary speech: release it now
    HOLD = "hold"  # looks like a tool call: hold it back until the end


class ToolCallSniffer:
    """Decides, from the first characters of a streamed reply, whether it may be a tool call.

    Feed every text delta to :meth:`feed`; once the verdict is ``TEXT`` the
    buffered text (returned by :meth:`feed` exactly once) and all later deltas
    can be spoken. Once it is ``HOLD``, keep everything until the end and parse
    it with :func:`parse_tool_calls`.
    """

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._verdict = SniffVerdict.UNDECIDED

    @property
    def verdict(self) -> SniffVerdict:
        """The current decision."""
        return self._verdict

    @property
    def buffered(self) -> str:
        """Everything held so far (while undecided or holding)."""
        return "".join(self._buffer)

    def feed(self, delta: str) -> str:
        """Add a delta; return text that may be released now ("" while held)."""
        if self._verdict is SniffVerdict.TEXT:
            return delta
        self._buffer.append(delta)
        if self._verdict is SniffVerdict.UNDECIDED:
            self._verdict = classify_prefix(self.buffered)
            if self._verdict is SniffVerdict.TEXT:
                released = self.buffered
                self._buffer.clear()
                return released
        return ""

    def finish(self) -> str:
        """End of reply: return the held text (the caller parses or speaks it)."""
        held = self.buffered
        self._buffer.clear()
        return held


def classify_prefix(prefix: str) -> SniffVerdict:
    """Classify the beginning of a reply (see :class:`ToolCallSniffer`)."""
    s = prefix.lstrip()
    if not s:
        return SniffVerdict.UNDECIDED
    if s[0] == "{":
        return SniffVerdict.HOLD
    if s.startswith(_TOOL_CALL_TAG):
        return SniffVerdict.HOLD
    if _TOOL_CALL_TAG.startswith(s):
        return SniffVerdict.UNDECIDED
    if s[0] == "[":
        rest = s[1:].lstrip()
        if not rest:
            return SniffVerdict.UNDECIDED
        return SniffVerdict.HOLD if rest[0] == "{" else SniffVerdict.TEXT
    if "```".startswith(s):
        return SniffVerdict.UNDECIDED
    if s.startswith("```"):
        after = s[3:]
        head, newline, body = after.partition("\n")
        language = head.strip().lower()
        if language.startswith(("{", "[")):
            return SniffVerdict.HOLD
        if not newline:
            # Still reading the language tag.
            if len(after) > 16:
                return SniffVerdict.TEXT
            return SniffVerdict.UNDECIDED
        if language not in ("", "json", "tool_call", "tool"):
            return SniffVerdict.TEXT
        body = body.lstrip()
        if not body:
            return SniffVerdict.UNDECIDED
        return SniffVerdict.HOLD if body[0] in "{[<" else SniffVerdict.TEXT
    return SniffVerdict.TEXT
