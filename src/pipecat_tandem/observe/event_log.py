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

from loguru import logger

from pipecat_tandem.clock import LoopClock, SessionClock


class EventLog:
    """Collects session events in memory and, optionally, appends them to a JSONL file.

    Args:
        clock: The session clock (one per session, shared by every processor).
        path: A ``.jsonl`` file to append to (parent folders are created).
        keep: How many events to keep in memory (oldest are forgotten; the file keeps all).

    Attributes:
        dropped: Events that could not be written to the file (0 without a file).
        write_error: The error that stopped writing to the file, if one did.

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
        self.dropped = 0
        self.write_error: OSError | None = None
        self._bad_field_reported = False
        self._closed_reported = False
        self.path = Path(path) if path else None
        if self.path:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Line-buffered: a crash loses at most the line being written.
                self._file = self.path.open("a", encoding="utf-8", buffering=1)
            except OSError as e:
                self._stop_writing(e)

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
        if self.path is not None:
            self._write(event)
        return event

    def _write(self, event: dict[str, Any]) -> None:
        if self._file is None:
            # Counted only when the file failed: an event after close() is not a loss.
            if self.write_error is not None:
                self.dropped += 1
            return
        try:
            line = json.dumps(event, default=str, separators=(",", ":")) + "\n"
        except (TypeError, ValueError) as e:  # a cycle or an odd key in one event's fields
            self.dropped += 1
            if not self._bad_field_reported:
                self._bad_field_reported = True
                logger.warning(
                    f"event log {self.path}: cannot write a {event['kind']!r} event: {e}"
                )
            return
        try:
            self._file.write(line)
        except OSError as e:
            self.dropped += 1
            self._stop_writing(e)

    def _stop_writing(self, error: OSError) -> None:
        # After a failed write the file may end in a torn line, and a disk that was
        # full once tends to stay so: stop writing rather than fail on every event
        # (these calls run inside the pipeline's processors) or leave holes later.
        self.write_error = error
        logger.warning(
            f"event log {self.path}: cannot write ({error}); the rest of this session is "
            "kept in memory only"
        )
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # flushing the unwritten line fails the same way

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        """Kept events of the given kinds."""
        return [e for e in self._events if e["kind"] in kinds]

    def close(self) -> None:
        """Flush and close the file (idempotent); report how many events it misses."""
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as e:  # the last buffered line could not be flushed
                self.dropped += 1
                self.write_error = e
        if self.dropped and not self._closed_reported:
            self._closed_reported = True
            logger.warning(f"event log {self.path}: {self.dropped} event(s) were not written")


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
