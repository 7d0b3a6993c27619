"""The tandem-job RTVI schema (v1): event translation and client-message validation, no loop."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import TranscriptionFrame

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.frames import (
    BackgroundDeliveryFrame,
    BackgroundErrorFrame,
    BackgroundJobStateFrame,
    BackgroundProgressFrame,
    BackgroundResultFrame,
    JobState,
)
from pipecat_tandem.transports.client_events import ClientEventEncoder
from pipecat_tandem.transports.rtvi_job_schema import (
    CANCEL_TYPE,
    EVENTS,
    MAX_COMMAND_BYTES,
    JobCommandError,
    JobEventTranslator,
    is_job_command,
    parse_job_command,
)


def events(frames):
    encoder = ClientEventEncoder(clock=ManualClock())
    translator = JobEventTranslator()
    out = []
    for frame in frames:
        message = encoder.encode(frame)
        if message is not None:
            out += translator.translate(message)
    return out


def test_a_job_lifecycle_in_order_with_sequence_numbers_and_its_task():
    out = events(
        [
            BackgroundJobStateFrame(job_id="job-1", state=JobState.QUEUED, task="weather"),
            BackgroundJobStateFrame(job_id="job-1", state=JobState.RUNNING, task="weather"),
            BackgroundProgressFrame(job_id="job-1", text="calling the weather tool"),
            BackgroundJobStateFrame(job_id="job-1", state=JobState.DONE, task="weather"),
            BackgroundResultFrame(job_id="job-1", text="75 F", task="weather"),
            BackgroundDeliveryFrame(job_ids=["job-1"], kind="delivered", text="75 F"),
            TranscriptionFrame(text="thanks", user_id="u", timestamp="now"),
        ]
    )
    assert [e["event"] for e in out] == [
        "delegated",
        "running",
        "progress",
        "result_ready",
        "delivered",
    ]
    assert [e["seq"] for e in out] == [1, 2, 3, 4, 5]
    assert {e["type"] for e in out} == {"tandem-job"} and {e["version"] for e in out} == {1}
    assert all(e["task"] == "weather" and e["job_id"] == "job-1" for e in out)
    assert out[3]["text"] == "75 F" and out[3]["final"] is True and out[3]["stale"] is False
    assert out[4]["delivery"] == "delivered" and out[4]["job_ids"] == ["job-1"]
    assert set(e["event"] for e in out) <= set(EVENTS)


def test_terminal_events_are_sent_once_and_a_failure_is_one_event():
    out = events(
        [
            BackgroundJobStateFrame(job_id="job-1", state=JobState.QUEUED, task="a"),
            BackgroundJobStateFrame(job_id="job-1", state=JobState.STALE, detail="moved on"),
            BackgroundJobStateFrame(job_id="job-1", state=JobState.STALE, detail="moved on"),
            BackgroundJobStateFrame(job_id="job-2", state=JobState.QUEUED, task="b"),
            BackgroundJobStateFrame(job_id="job-2", state=JobState.FAILED, detail="tool broke"),
            BackgroundErrorFrame(job_id="job-2", error="tool broke", task="b"),
            BackgroundJobStateFrame(job_id="job-3", state=JobState.QUEUED, task="c"),
            BackgroundJobStateFrame(job_id="job-3", state=JobState.CANCELLED, detail="user"),
            BackgroundJobStateFrame(job_id="job-3", state=JobState.CANCELLED, detail="stopped"),
        ]
    )
    pairs = [(e["job_id"], e["event"]) for e in out]
    assert pairs == [
        ("job-1", "delegated"),
        ("job-1", "stale"),
        ("job-2", "delegated"),
        ("job-2", "failed"),
        ("job-3", "delegated"),
        ("job-3", "cancelled"),
    ]
    assert out[1]["reason"] == "moved on" and out[3]["error"] == "tool broke"
    assert out[5]["reason"] == "user"


def test_a_job_first_seen_running_opens_with_delegated_and_a_merged_delivery_names_each_job():
    out = events(
        [
            BackgroundJobStateFrame(job_id="job-7", state=JobState.RUNNING, task="timer"),
            BackgroundJobStateFrame(job_id="job-8", state=JobState.QUEUED, task="x"),
            BackgroundDeliveryFrame(job_ids=["job-7", "job-8"], kind="delivered", text="both"),
        ]
    )
    assert [(e["job_id"], e["event"]) for e in out] == [
        ("job-7", "delegated"),
        ("job-7", "running"),
        ("job-8", "delegated"),
        ("job-7", "delivered"),
        ("job-8", "delivered"),
    ]


def test_garbage_in_translates_to_nothing():
    translator = JobEventTranslator()
    for message in [{}, {"type": "job_state"}, {"type": "job_state", "job_id": 3}, {"type": "x"}]:
        assert translator.translate(message) == []
    assert translator.translate({"type": "delivery", "job_ids": None}) == []


def test_a_valid_cancel():
    command = parse_job_command(CANCEL_TYPE, {"job_id": " job-3 ", "reason": "  not needed\n"})
    assert (command.job_id, command.reason) == ("job-3", "not needed")
    assert parse_job_command(CANCEL_TYPE, {"job_id": "job-3", "reason": None}).reason == ""
    assert (
        is_job_command("tandem-anything") and not is_job_command("my-app") and not is_job_command(3)
    )


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        ("tandem-delete-everything", {"job_id": "job-1"}, "unknown message type"),
        (CANCEL_TYPE, None, "must be an object"),
        (CANCEL_TYPE, [], "must be an object"),
        (CANCEL_TYPE, "job-1", "must be an object"),
        (CANCEL_TYPE, {}, "missing job_id"),
        (CANCEL_TYPE, {"job_id": 3}, "must be a string, got a number"),
        (CANCEL_TYPE, {"job_id": True}, "got a boolean"),
        (CANCEL_TYPE, {"job_id": "   "}, "job_id is empty"),
        (CANCEL_TYPE, {"job_id": "j" * 65}, "too long"),
        (CANCEL_TYPE, {"job_id": "job\x00-1"}, "control characters"),
        (CANCEL_TYPE, {"job_id": "job-1", "reason": 5}, "reason must be a string"),
        (CANCEL_TYPE, {"job_id": "job-1", "reason": "x" * 201}, "reason is too long"),
        (CANCEL_TYPE, {"job_id": "job-1", "force": True}, "unknown field"),
        (CANCEL_TYPE, {"job_id": "job-1", "pad": "x" * MAX_COMMAND_BYTES}, "too large"),
    ],
)
def test_malformed_commands_are_refused_with_a_sentence(kind, data, words):
    with pytest.raises(JobCommandError) as info:
        parse_job_command(kind, data)
    assert words in str(info.value)
    assert len(str(info.value)) < 200
