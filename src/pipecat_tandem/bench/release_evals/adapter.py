#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Maps pipecat's ``function_call`` expectations onto what the tandem really does.

A pipecat bot calls ``get_current_weather`` itself and, for a cancellable tool,
offers its LLM ``cancel_<tool>``; the eval harness sees those calls as
``function_call`` / ``function_call_stopped`` events. In the tandem the
interaction model delegates and the *background* calls the tool; the client
learns about it from the ``tandem-job`` RTVI server messages (docs/rtvi-jobs.md).
:class:`TandemJobAdapter` turns those messages into the events the scenarios
expect, and nothing else — what the user hears is still judged as pipecat wrote it:

========================================  ==========================================
``tandem-job`` message                    harness event(s)
========================================  ==========================================
``progress`` "``TOOL {args}``" (the        ``function_call`` TOOL, args; the job's
background starts a tool call)             ``tool_call_id`` is its ``job_id``
``cancelled`` of a job that called TOOL    ``function_call`` ``cancel_TOOL``, then
                                           ``function_call_stopped`` TOOL, cancelled
``result_ready`` (final) of that job       ``function_call_stopped`` TOOL, not cancelled
========================================  ==========================================

Only tools in ``tool_names`` are mapped (the built-in calculator and friends are
not what the scenarios ask about). :func:`install` wires an adapter into a
harness session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pipecat_tandem.bench.release_evals.tools import EVAL_TOOL_NAMES

#: A step's start note: the tool's name, a space, its arguments as JSON (maybe clipped).
_CALL_NOTE = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*) (?P<args>\{.*)$", re.S)
#: The type of the synthetic event that carries a batch through ``frame_to_event``.
_BATCH = "tandem_job_batch"


class TandemJobAdapter:
    """Translates ``tandem-job`` messages into harness events (pure, no I/O).

    Args:
        tool_names: The tools whose calls are reported as function calls.
    """

    def __init__(self, tool_names: Iterable[str] = EVAL_TOOL_NAMES) -> None:
        self._tools = frozenset(tool_names)
        self._called: dict[str, list[str]] = {}

    def events(self, message: Any) -> list[dict[str, Any]]:
        """The harness events one RTVI message from the bot maps to (often none)."""
        if not isinstance(message, dict) or message.get("type") != "server-message":
            return []
        data = message.get("data")
        if not isinstance(data, dict) or data.get("type") != "tandem-job":
            return []
        job = str(data.get("job_id", ""))
        kind = data.get("event")
        if kind == "progress":
            return self._progress(job, str(data.get("text", "")))
        if kind == "cancelled":
            names = self._called.pop(job, [])
            out: list[dict[str, Any]] = []
            for name in names:
                out.append(_event("function_call", f"cancel_{name}", {"tool_call_id": job}))
            for name in names:
                out.append(_stopped(name, job, cancelled=True))
            return out
        if kind == "result_ready" and data.get("final", True):
            return [_stopped(name, job, cancelled=False) for name in self._called.pop(job, [])]
        return []

    def _progress(self, job: str, text: str) -> list[dict[str, Any]]:
        match = _CALL_NOTE.match(text.strip())
        if match is None or match["name"] not in self._tools:
            return []
        try:
            args = json.loads(match["args"])
        except ValueError:
            args = {}  # the note clips long arguments; the name is what counts here
        name = match["name"]
        calls = self._called.setdefault(job, [])
        if name not in calls:
            calls.append(name)
        return [_event("function_call", name, args if isinstance(args, dict) else {})]


def _event(kind: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "name": name, "args": args}


def _stopped(name: str, job: str, *, cancelled: bool) -> dict[str, Any]:
    return _event("function_call_stopped", name, {"tool_call_id": job, "cancelled": cancelled})


def install(session: Any, adapter: TandemJobAdapter | None = None) -> TandemJobAdapter:
    """Wire ``adapter`` into a harness ``EvalScriptSession`` before it runs.

    Two places, both private to pipecat's harness (pinned at pipecat 1.14): the
    client's serializer drops RTVI ``server-message`` s, so ``tandem-job`` ones are
    kept as ``InputTransportMessageFrame`` s (:func:`keep_job_messages`); the event
    stream then maps them (:func:`adapt_stream`).

    Args:
        session: The ``pipecat.evals.script_session.EvalScriptSession``.
        adapter: The adapter (default: a new one for the eval tools).

    Returns:
        The adapter in use.
    """
    adapter = adapter or TandemJobAdapter()
    client = session._client
    make_transport = client._transport

    def transport() -> Any:
        made = make_transport()
        keep_job_messages(made._params.serializer)
        return made

    client._transport = transport
    adapt_stream(session._stream, adapter)
    return adapter


def keep_job_messages(serializer: Any) -> None:
    """Make a client serializer pass ``tandem-job`` server messages on as message frames."""
    from pipecat.frames.frames import InputTransportMessageFrame

    deserialize: Callable[[str | bytes], Awaitable[Any]] = serializer.deserialize

    async def adapted(data: str | bytes) -> Any:
        frame = await deserialize(data)
        if frame is not None:
            return frame
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            return None
        data_field = message.get("data") if isinstance(message, dict) else None
        if (
            message.get("type") == "server-message"
            and isinstance(data_field, dict)
            and data_field.get("type") == "tandem-job"
        ):
            return InputTransportMessageFrame(message=message)
        return None

    serializer.deserialize = adapted


def adapt_stream(stream: Any, adapter: TandemJobAdapter) -> None:
    """Wire ``adapter`` into a harness ``EvalEventStream`` (one per session).

    The stream maps each frame to at most one event and ignores server messages;
    the wrapper lets a ``tandem-job`` message through as one batch, and the
    wrapped ``append`` files the batch's events one by one, so the matcher sees
    ordinary ``function_call`` events.
    """
    from pipecat.frames.frames import InputTransportMessageFrame

    frame_to_event: Callable[[Any], dict[str, Any] | None] = stream.frame_to_event
    append: Callable[[dict[str, Any]], Awaitable[None]] = stream.append

    def adapted_frame_to_event(frame: Any) -> dict[str, Any] | None:
        if isinstance(frame, InputTransportMessageFrame):
            batch = adapter.events(frame.message)
            if batch:
                stream.touch()
                return {"type": _BATCH, "events": batch}
        return frame_to_event(frame)

    async def adapted_append(event: dict[str, Any]) -> None:
        if event.get("type") != _BATCH:
            await append(event)
            return
        for item in event["events"]:
            await append(item)

    stream.frame_to_event = adapted_frame_to_event
    stream.append = adapted_append
