#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The session event log: one JSON object per line, every timestamp in session time.

Kinds written by the plugin: ``user_started``, ``user_stopped``, ``bot_started``,
``bot_stopped``, ``transcript``, ``delegated``, ``job_state``, ``progress``,
``result_ready``, ``delivered``, ``merged``, ``dropped_stale``,
``dropped_session_end``, ``delivery_interrupted``, ``duplicate_ignored``,
``failed``, ``cue``, ``error``. Metrics and the timeline picture are computed
from these lines (:mod:`pipecat_tandem.observe.metrics`).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import IO, Any

from pipecat_tandem.clock import LoopClock, SessionClock


class EventLog:
    """Collects session events in memory and, optionally, appends them to a JSONL file.

    Args:
        clock: The session clock (one per session, shared by every processor).
        path: A ``.jsonl`` file to append to (parent folders are created).
        keep: How many events to keep in memory (oldest are forgotten; the file keeps all).

    Example::

        log = EventLog(clock, path="sessions/abc.jsonl")
        log.emit("delegated", job_id="job-1", task="what is 2+2")
    """

    def __init__(
        self,
        clock: SessionClock | None = None,
        *,
        path: str | Path | None = None,
        keep: int = 10_000,
    ) -> None:
        self.clock: SessionClock = clock or LoopClock()
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._file: IO[str] | None = None
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered: a crash loses at most the line being written.
            self._file = self.path.open("a", encoding="utf-8", buffering=1)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Events kept in memory, oldest first."""
        return list(self._events)

    def emit(
        self, kind: str, *, job_id: str | None = None, t: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Record one event (``t`` defaults to the clock's now)."""
        event = {
            "t": round(self.clock.now() if t is None else t, 6),
            "kind": kind,
            "job_id": job_id,
        }
        event.update(fields)
        self._events.append(event)
        if self._file is not None:
            self._file.write(json.dumps(event, default=str, separators=(",", ":")) + "\n")
        return event

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        """Kept events of the given kinds."""
        return [e for e in self._events if e["kind"] in kinds]

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_events(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """Read a JSONL event log; returns ``(events, malformed_line_count)``."""
    events: list[dict[str, Any]] = []
    bad = 0
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                bad += 1
                continue
            if (
                isinstance(event, dict)
                and isinstance(event.get("t"), int | float)
                and "kind" in event
            ):
                events.append(event)
            else:
                bad += 1
    return events, bad
