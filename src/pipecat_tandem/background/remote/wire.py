#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What crosses pipecat's bus for remote jobs, and the serializer that guards it.

Bus messages (pipecat's own types where they fit):

- worker → requester: ``BusJobUpdateMessage`` (``update={"kind": "started" | "progress"
  | "partial", "text": ...}``) and ``BusJobResponseMessage`` (``status`` completed,
  error or cancelled; ``response={"text": ...}``);
- requester → worker: ``BusJobCancelMessage`` and :class:`BusJobFollowUpMessage`.

The job itself does not travel on the bus but on a Redis stream (see
:mod:`~pipecat_tandem.background.remote.job_queue`): pub/sub keeps nothing for a
subscriber that is away.

pipecat's ``JSONMessageSerializer`` imports whatever module a message's
``__type__`` names. :class:`TrustedSerializer` refuses, before anything is
imported, a message naming any type outside :data:`ALLOWED_TYPES`, and turns
unreadable bytes into one log line instead of a traceback; the message is
dropped, the bus keeps running.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.bus.messages import (
    BusDataMessage,
    BusJobCancelMessage,
    BusJobResponseMessage,
    BusJobUpdateMessage,
    BusMessage,
)
from pipecat.bus.serializers.json import JSONMessageSerializer
from pipecat.pipeline.job_context import JobStatus


@dataclass(kw_only=True)
class BusJobFollowUpMessage(BusDataMessage):
    """A follow-up instruction for a running remote job.

    Parameters:
        job_id: The job's wire id.
        seq: The follow-up's number within the job (1, 2, ...): a re-sent one is
            applied once.
        text: The instruction.
    """

    job_id: str
    seq: int
    text: str


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


#: Every ``__type__`` a remote-jobs bus message may name.
ALLOWED_TYPES = frozenset(
    _qualified(c)
    for c in (
        BusJobUpdateMessage,
        BusJobResponseMessage,
        BusJobCancelMessage,
        BusJobFollowUpMessage,
        JobStatus,
    )
)

#: Update kinds a worker sends while a job runs.
UPDATE_KINDS = frozenset({"started", "progress", "partial"})
#: ``JobStatus`` of a final response → the runner's event kind.
STATUS_KINDS = {
    JobStatus.COMPLETED: "result",
    JobStatus.ERROR: "error",
    JobStatus.FAILED: "error",
    JobStatus.CANCELLED: "cancelled",
}


def _type_names(value: Any, out: set[str]) -> None:
    if isinstance(value, dict):
        name = value.get("__type__")
        if name is not None:
            out.add(str(name))
        for v in value.values():
            _type_names(v, out)
    elif isinstance(value, list):
        for v in value:
            _type_names(v, out)


class TrustedSerializer(JSONMessageSerializer):
    """pipecat's JSON bus serializer, limited to the remote-jobs message types.

    Args:
        channel: The channel it reads (named in the refusal logs).
        allowed: Type names a message may contain (default :data:`ALLOWED_TYPES`).

    Attributes:
        refused: How many messages were refused (malformed or naming other types).
    """

    def __init__(self, *, channel: str = "", allowed: frozenset[str] = ALLOWED_TYPES) -> None:
        super().__init__()
        self._channel = channel
        self._allowed = allowed
        self.refused = 0

    def deserialize(self, data: bytes) -> BusMessage | None:
        """Decode a message, or log one line and return ``None`` for anything else."""
        where = f" on {self._channel}" if self._channel else ""
        try:
            payload = json.loads(data)
        except (ValueError, TypeError) as e:
            return self._refuse(f"refused a bus message{where}: not JSON ({e}): {data!r:.120}")
        names: set[str] = set()
        _type_names(payload, names)
        foreign = sorted(names - self._allowed)
        if foreign:
            return self._refuse(
                f"refused a bus message{where} naming {', '.join(foreign)[:200]}: not a "
                "remote-jobs type (only trusted publishers may reach this channel)"
            )
        if not isinstance(payload, dict) or "__type__" not in payload:
            return self._refuse(f"refused a bus message{where}: no message type: {data!r:.120}")
        try:
            message = self._deserialize_value(payload)
        except Exception as e:  # a wrong field set or value: the sender is broken
            return self._refuse(f"refused a bus message{where}: malformed ({e!r:.200})")
        if not isinstance(message, BusMessage):
            return self._refuse(f"refused a bus message{where}: not a bus message")
        return message

    def _refuse(self, line: str) -> BusMessage | None:
        self.refused += 1
        logger.warning(line)
        return None


def update_message(source: str, target: str, job_id: str, kind: str, text: str = "") -> BusMessage:
    """A worker's ``started`` / ``progress`` / ``partial`` report."""
    return BusJobUpdateMessage(
        source=source, target=target, job_id=job_id, update={"kind": kind, "text": text}
    )


def response_message(
    source: str, target: str, job_id: str, status: JobStatus, text: str = ""
) -> BusMessage:
    """A worker's final report (result, error or cancelled)."""
    return BusJobResponseMessage(
        source=source, target=target, job_id=job_id, status=status, response={"text": text}
    )


def event_of(message: BusMessage) -> tuple[str, str, str] | None:
    """``(wire job id, event kind, text)`` of a worker's report, or ``None`` if malformed."""
    if isinstance(message, BusJobUpdateMessage):
        update = message.update if isinstance(message.update, dict) else {}
        kind, text = update.get("kind"), update.get("text", "")
    elif isinstance(message, BusJobResponseMessage):
        try:  # a StrEnum crosses pipecat's serializer as its plain value
            kind = STATUS_KINDS.get(JobStatus(message.status))
        except ValueError:
            kind = None
        response = message.response if isinstance(message.response, dict) else {}
        text = response.get("text", "")
    else:
        return None
    if not isinstance(message.job_id, str) or not isinstance(text, str):
        return None
    if kind not in UPDATE_KINDS and kind not in STATUS_KINDS.values():
        return None
    return message.job_id, str(kind), text
