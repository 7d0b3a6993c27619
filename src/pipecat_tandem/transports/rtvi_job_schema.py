#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The ``tandem-job`` RTVI schema, version 1 (pure: no I/O, no event loop).

Job lifecycle events reach any RTVI client as the ``data`` of an RTVI
``server-message``; a client cancels a job with an RTVI ``client-message``.
The wire format is documented in ``docs/rtvi-jobs.md``; this module is its one
implementation:

* :class:`JobEventTranslator` turns the client events that
  :class:`~pipecat_tandem.transports.client_events.ClientEventEncoder` already
  makes of the job frames (``job_state``, ``progress``, ``result``,
  ``delivery``) into ``tandem-job`` events: one lifecycle, every job opening
  with ``delegated``, each terminal event sent once, a sequence number per
  session so a client can order them and notice a gap.
* :func:`parse_job_command` validates a client message and returns what to do,
  or raises :class:`JobCommandError` with the sentence the client is sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: ``data.type`` of every job event (inside an RTVI ``server-message``).
EVENT_TYPE = "tandem-job"
#: Schema version; bumped on any change a version-1 client could misread.
SCHEMA_VERSION = 1
#: Client message (``client-message`` ``t``) that cancels a job.
CANCEL_TYPE = "tandem-cancel-job"
#: Every client message type of the schema (any other ``tandem-*`` is refused).
COMMAND_TYPES = (CANCEL_TYPE,)
#: Prefix of the schema's client message types; others are left to the app.
COMMAND_PREFIX = "tandem-"
#: Longest job id a client may send (the registry's are ``job-N``).
MAX_JOB_ID_CHARS = 64
#: Longest cancellation reason a client may send.
MAX_REASON_CHARS = 200
#: Largest ``d`` payload of a client message, as compact JSON.
MAX_COMMAND_BYTES = 2048

#: Lifecycle events, in the order a job can go through them.
EVENTS = (
    "delegated",
    "running",
    "progress",
    "result_ready",
    "delivered",
    "cancelled",
    "stale",
    "failed",
)
# ``job_state`` states that map onto an event; ``done`` is carried by the final
# ``result_ready`` (which has the text), so it is not sent twice.
_STATE_EVENTS = {
    "queued": "delegated",
    "running": "running",
    "cancelled": "cancelled",
    "stale": "stale",
    "failed": "failed",
}
_ONCE = frozenset({"delegated", "cancelled", "stale", "failed"})


class JobEventTranslator:
    """Client events (``ClientEventEncoder`` output) → ``tandem-job`` v1 events.

    One translator per session: it numbers the events and remembers which jobs
    it has announced and which terminal events it has sent.

    Example::

        translator = JobEventTranslator()
        for event in translator.translate(encoder.encode(frame) or {}):
            await send(event)
    """

    def __init__(self) -> None:
        self._seq = 0
        self._sent: set[tuple[str, str]] = set()
        self._tasks: dict[str, str] = {}

    def translate(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """The job events for one client event (none for speech, transcripts, cues).

        Args:
            message: A ``ClientEventEncoder.encode`` result.

        Returns:
            Zero or more ``tandem-job`` events, oldest first.
        """
        kind = message.get("type")
        t = message.get("t")
        if kind == "job_state":
            event = _STATE_EVENTS.get(str(message.get("state")))
            if event is None:
                return []
            fields: dict[str, Any] = {}
            detail = str(message.get("detail") or "")
            if event == "failed":
                fields["error"] = detail
            elif event in ("cancelled", "stale"):
                fields["reason"] = detail
            return self._event(event, message.get("job_id"), t, message.get("task"), fields)
        if kind == "progress":
            return self._event(
                "progress", message.get("job_id"), t, None, {"text": message["text"]}
            )
        if kind == "result":
            fields = {
                "text": message.get("text", ""),
                "final": bool(message.get("is_final", True)),
                "stale": bool(message.get("stale", False)),
                "policy": message.get("policy", "when_idle"),
            }
            return self._event("result_ready", message.get("job_id"), t, None, fields)
        if kind == "delivery":
            job_ids = [j for j in message.get("job_ids") or [] if isinstance(j, str)]
            fields = {
                "delivery": message.get("kind", ""),
                "text": message.get("text", ""),
                "job_ids": job_ids,
            }
            out: list[dict[str, Any]] = []
            for job_id in job_ids:
                out += self._event("delivered", job_id, t, None, dict(fields))
            return out
        return []

    def _event(
        self, event: str, job_id: Any, t: Any, task: Any, fields: dict[str, Any]
    ) -> list[dict[str, Any]]:
        if not isinstance(job_id, str) or not job_id:
            return []
        if task:
            self._tasks[job_id] = str(task)
        out: list[dict[str, Any]] = []
        if event != "delegated" and (job_id, "delegated") not in self._sent:
            # A job started outside the delegation processor (a timer) opens at
            # "running": every client still sees each job open with "delegated".
            out += self._event("delegated", job_id, t, task, {})
        key = (job_id, event)
        if event in _ONCE and key in self._sent:
            return out
        self._sent.add(key)
        self._seq += 1
        body: dict[str, Any] = {
            "type": EVENT_TYPE,
            "version": SCHEMA_VERSION,
            "seq": self._seq,
            "event": event,
            "job_id": job_id,
            "task": self._tasks.get(job_id, ""),
            "t": t,
        }
        body.update(fields)
        out.append(body)
        return out


@dataclass(frozen=True)
class JobCommand:
    """A validated client command.

    Parameters:
        kind: The client message type (``tandem-cancel-job``).
        job_id: The job it names.
        reason: Why, as the client put it (for the event log and the ``cancelled`` event).
    """

    kind: str
    job_id: str
    reason: str


class JobCommandError(ValueError):
    """A client message the schema refuses; the message is sent back to the client."""


def is_job_command(kind: object) -> bool:
    """Whether a client message type belongs to this schema (``tandem-*``)."""
    return isinstance(kind, str) and kind.startswith(COMMAND_PREFIX)


def parse_job_command(kind: object, data: object) -> JobCommand:
    """Validate a ``tandem-*`` client message.

    Args:
        kind: The ``client-message`` type ``t``.
        data: Its payload ``d``.

    Returns:
        The command to carry out.

    Raises:
        JobCommandError: Unknown type, payload not an object, too large, or a
            ``job_id``/``reason`` missing, empty, of the wrong type or too long.
    """
    if kind not in COMMAND_TYPES:
        raise JobCommandError(
            f"unknown message type {str(kind)[:40]!r}; expected one of: {', '.join(COMMAND_TYPES)}"
        )
    if not isinstance(data, dict):
        raise JobCommandError(
            f'{kind}: data must be an object like {{"job_id": "job-1"}}, got {_json_kind(data)}'
        )
    try:
        size = len(json.dumps(data, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError) as e:
        raise JobCommandError(f"{kind}: data is not plain JSON ({e})") from None
    if size > MAX_COMMAND_BYTES:
        raise JobCommandError(f"{kind}: data is too large ({size} > {MAX_COMMAND_BYTES} bytes)")
    job_id = data.get("job_id")
    if job_id is None:
        raise JobCommandError(f'{kind}: missing job_id (e.g. {{"job_id": "job-1"}})')
    if not isinstance(job_id, str):
        raise JobCommandError(f"{kind}: job_id must be a string, got {_json_kind(job_id)}")
    job_id = job_id.strip()
    if not job_id:
        raise JobCommandError(f"{kind}: job_id is empty")
    if len(job_id) > MAX_JOB_ID_CHARS:
        raise JobCommandError(
            f"{kind}: job_id is too long ({len(job_id)} > {MAX_JOB_ID_CHARS} characters)"
        )
    if any(not c.isprintable() for c in job_id):
        raise JobCommandError(f"{kind}: job_id must not contain control characters")
    reason = data.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise JobCommandError(f"{kind}: reason must be a string, got {_json_kind(reason)}")
    if len(reason) > MAX_REASON_CHARS:
        raise JobCommandError(
            f"{kind}: reason is too long ({len(reason)} > {MAX_REASON_CHARS} characters)"
        )
    unknown = sorted(set(data) - {"job_id", "reason"})
    if unknown:
        names = ", ".join(repr(str(k)[:20]) for k in unknown[:3])
        raise JobCommandError(f"{kind}: unknown field(s) {names}; expected job_id and reason")
    return JobCommand(kind=kind, job_id=job_id, reason=" ".join(reason.split()))


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
