"""The session record under failure: the event log's disk fails, delivery accounting.

A full disk or an unwritable record file must cost the call nothing but the
record: ``EventLog.emit`` never raises, says so once, and counts what it could
not write. An output whose delivery failed is accounted for, not lost.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest

from pipecat_tandem.observe.event_log import EventLog, read_events
from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.policy.delivery import DeliveryScheduler


class FixedClock:
    """A session clock that stands still (the tests give times explicitly)."""

    def now(self) -> float:
        return 1.0


class FailingFile:
    """A text file whose writes fail with ``error`` after ``ok`` successful lines."""

    def __init__(self, error: int = errno.ENOSPC, ok: int = 0) -> None:
        self.error = error
        self.ok = ok
        self.lines: list[str] = []
        self.closed = False

    def write(self, text: str) -> int:
        if len(self.lines) >= self.ok:
            raise OSError(self.error, "No space left on device")
        self.lines.append(text)
        return len(text)

    def close(self) -> None:
        self.closed = True
        # Closing flushes what a buffered writer still holds: that fails too.
        raise OSError(self.error, "No space left on device")


def _log_on(file: Any, tmp_path: Path) -> EventLog:
    log = EventLog(FixedClock(), path=tmp_path / "s.jsonl")
    log._file.close()  # type: ignore[union-attr]
    log._file = file
    return log


#
# The event log
#


def test_a_full_disk_mid_call_never_raises_and_counts_what_was_dropped(tmp_path, caplog):
    disk = FailingFile(ok=2)
    log = _log_on(disk, tmp_path)
    with _loguru_to(caplog):
        for i in range(5):
            log.emit("cue", n=i)  # must not raise: it runs inside processors
        log.close()
    assert len(disk.lines) == 2
    assert log.dropped == 3
    assert [e["n"] for e in log.events] == [0, 1, 2, 3, 4]  # memory keeps them all
    warnings = [r for r in caplog.records if "event log" in r.getMessage()]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]  # the failure, then the total
    assert "No space left" in warnings[0].getMessage()
    assert "3 event(s)" in warnings[1].getMessage()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_real_enospc_from_the_os_is_survived():
    # /dev/full fails every write with ENOSPC: the real error path of a full disk.
    log = EventLog(FixedClock(), path="/dev/full")
    log.emit("user_started")
    log.emit("user_stopped")
    log.close()
    assert log.dropped == 2
    assert log.write_error is not None and log.write_error.errno == errno.ENOSPC


def test_a_failed_write_stops_writing_so_no_torn_lines_follow(tmp_path):
    disk = FailingFile(ok=1)
    log = _log_on(disk, tmp_path)
    log.emit("a")
    log.emit("b")  # fails
    disk.ok = 100  # space comes back; the file already has a hole, keep it closed
    log.emit("c")
    assert [json.loads(line)["kind"] for line in disk.lines] == ["a"]
    assert log.dropped == 2


def test_an_unopenable_record_file_costs_only_the_record(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    log = EventLog(FixedClock(), path=blocker / "sub" / "s.jsonl")  # parent is a file
    log.emit("user_started")
    log.emit("user_stopped")
    assert log.dropped == 2
    assert [e["kind"] for e in log.events] == ["user_started", "user_stopped"]
    log.close()


def test_an_unserializable_field_drops_that_event_only(tmp_path):
    log = EventLog(FixedClock(), path=tmp_path / "s.jsonl")
    loop: dict[str, Any] = {}
    loop["self"] = loop  # json cannot write a cycle
    log.emit("a")
    log.emit("b", detail=loop)
    log.emit("c")
    log.close()
    events, bad = read_events(tmp_path / "s.jsonl")
    assert [e["kind"] for e in events] == ["a", "c"] and bad == 0
    assert log.dropped == 1


def test_a_healthy_log_drops_nothing(tmp_path):
    log = EventLog(FixedClock(), path=tmp_path / "s.jsonl")
    log.emit("a", job_id="job-1", x=1)
    log.close()
    log.close()  # idempotent
    log.emit("late")  # after close: kept in memory, not a write failure
    events, bad = read_events(tmp_path / "s.jsonl")
    assert events == [{"t": 1.0, "kind": "a", "job_id": "job-1", "x": 1}] and bad == 0
    assert log.dropped == 0 and log.write_error is None


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_the_interleaver_keeps_its_gap_tracking_and_delivers_on_a_full_disk():
    # Probe row 34: the raise came before the speaking state was tracked and the
    # frame pushed; now every frame is handled as on a healthy disk.
    from pipecat.frames.frames import (
        ErrorFrame,
        LLMMessagesAppendFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection
    from pipecat.tests.utils import SleepFrame, run_test

    from pipecat_tandem.frames import BackgroundResultFrame
    from pipecat_tandem.processors import ResultInterleaver
    from tests.support.virtual_time import run_virtual

    def run(log: EventLog) -> tuple[list[Any], list[Any], ResultInterleaver]:
        il = ResultInterleaver(min_gap_s=0.5, event_log=log)
        frames = [
            UserStartedSpeakingFrame(),
            BackgroundResultFrame(job_id="j1", text="forty-two", task="first"),
            SleepFrame(1.0),  # the user is still speaking: nothing may go out
            UserStoppedSpeakingFrame(),
            SleepFrame(1.5),
        ]
        down, up = run_virtual(
            run_test(il, frames_to_send=frames, frames_to_send_direction=FrameDirection.DOWNSTREAM)
        )
        return down, up, il

    healthy_down, _, _ = run(EventLog())
    down, up, il = run(EventLog(path="/dev/full"))
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = [type(f).__name__ for f in down]
    assert kinds == [type(f).__name__ for f in healthy_down]
    [delivery] = [f for f in down if isinstance(f, LLMMessagesAppendFrame)]
    assert "forty-two" in delivery.messages[0]["content"]
    assert il.event_log.dropped == len(il.event_log.events) > 0
    assert not any(e["user_speaking"] for e in il.event_log.of_kind("delivered"))


#
# Metrics: a delivery that failed is accounted for
#


def test_an_output_settled_delivery_failed_is_not_counted_as_lost():
    scheduler = DeliveryScheduler()
    item = scheduler.add(job_id="job-1", text="42", now=1.0)
    assert item is not None
    events: list[dict[str, Any]] = [
        {"t": 1.0, "kind": "result_ready", "job_id": "job-1", "output_id": item.output_id}
    ]
    scheduler.fail("job-1", "wording raised", now=2.0)
    events += scheduler.drain_events()
    assert [e["kind"] for e in events] == ["result_ready", "delivery_failed"]
    m = compute_metrics(events)
    assert m.outputs == 1
    assert m.lost == 0
    assert m.delivery_failures == 1


def test_a_ready_output_never_settled_is_still_lost():
    events = [{"t": 1.0, "kind": "result_ready", "job_id": "job-1", "output_id": "job-1#1"}]
    m = compute_metrics(events)
    assert m.lost == 1 and m.delivery_failures == 0


#
# Helpers
#


class _loguru_to:
    """Route loguru records into pytest's ``caplog`` for the duration of a block."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog
        self._id: int | None = None

    def __enter__(self) -> None:
        from loguru import logger

        self._id = logger.add(self._caplog.handler, format="{message}", level="WARNING")

    def __exit__(self, *exc: object) -> None:
        from loguru import logger

        if self._id is not None:
            logger.remove(self._id)
