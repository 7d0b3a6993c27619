"""Context packets (serialization, full copies) and metrics on hand-made logs."""

import json

import pytest
from pipecat.processors.aggregators.llm_context import LLMContext, LLMSpecificMessage

from pipecat_tandem.background.packet import (
    CameraSnapshot,
    ContextPacket,
    JobSummary,
    PacketBuilder,
    copy_messages,
)
from pipecat_tandem.observe.event_log import EventLog, read_events
from pipecat_tandem.observe.metrics import compute_metrics, percentile

CONVERSATION = [
    {"role": "user", "content": "what is 1234 times 5678"},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "delegate", "arguments": '{"task": "1234*5678"}'},
            }
        ],
    },  # fmt: skip
    {"role": "tool", "tool_call_id": "c1", "content": '{"job_id": "job-1"}'},
    {"role": "assistant", "content": "I'm on it."},
]


def test_packet_is_a_full_deep_copy_and_round_trips_through_json():
    ctx = LLMContext(messages=[dict(m) for m in CONVERSATION])
    ctx.add_message(LLMSpecificMessage(llm="anthropic", message={"role": "user", "content": "x"}))
    b = PacketBuilder()
    b.add_utterance("user", "what is 1234 times 5678", 1.0, 2.0)
    b.add_utterance("user", "   ", 2.0, 2.1)  # empty utterances are not kept
    b.add_cue("visual_change", 1.5, 0.8)
    b.set_camera(CameraSnapshot(2, 1, 1.9, bytes(range(6))))
    p = b.build(job_id="job-1", task="1234*5678", policy="when_idle", now=2.5, wall_time="2026-11-24T10:00:00+00:00",
                deadline_s=30, messages=ctx.get_messages(), other_jobs=[JobSummary("job-0", "x", "running", 3.0)])  # fmt: skip
    ctx.get_messages()[0]["content"] = "mutated later"
    assert p.messages[0]["content"] == "what is 1234 times 5678"  # a copy, not a view
    assert p.messages[1]["tool_calls"][0]["function"]["name"] == "delegate"
    assert p.messages[-1] == {
        "llm_specific": "anthropic",
        "message": {"role": "user", "content": "x"},
    }
    assert len(p.transcript) == 1 and p.cues[0]["kind"] == "visual_change"
    back = ContextPacket.from_json(p.to_json())
    assert back == p and back.camera.rgb == bytes(range(6))


def test_packet_rejects_bad_versions_and_malformed_data():
    with pytest.raises(ValueError, match="version"):
        ContextPacket.from_dict({"version": "tandem.packet/0", "job_id": "x", "task": "y"})
    with pytest.raises(ValueError, match="malformed"):
        ContextPacket.from_dict({"version": "tandem.packet/1", "task": "y"})
    with pytest.raises(json.JSONDecodeError):
        ContextPacket.from_json("{not json")


def test_copy_messages_stringifies_unserializable_values():
    out = copy_messages([{"role": "user", "content": "hi", "extra": object()}, 42])
    assert isinstance(out[0]["extra"], str) and out[1]["role"] == "unknown"


def test_event_log_writes_jsonl_and_reader_skips_malformed(tmp_path):
    path = tmp_path / "s" / "log.jsonl"
    log = EventLog(path=path)
    log.emit("delegated", job_id="job-1", t=1.0, task="x")
    log.close()
    log.close()
    with path.open("a") as f:
        f.write("{broken\n\n[1,2]\n")
    events, bad = read_events(path)
    assert [e["kind"] for e in events] == ["delegated"] and bad == 2


def _ready(t, oid, kind="result"):
    return {
        "t": t,
        "kind": "result_ready",
        "job_id": oid.split("#")[0],
        "output_id": oid,
        "output_kind": kind,
    }


def _delivered(t, oids, user=False, bot=False, kind="delivered", policy="when_idle", stale=False):
    return {"t": t, "kind": "delivered", "mode": "weave", "delivery": kind, "policy": policy,
            "user_speaking": user, "bot_speaking": bot,
            "items": [{"output_id": o, "stale": stale, "treatment": "result"} for o in oids]}  # fmt: skip


def test_metrics_on_a_hand_made_log_with_known_answers():
    events = [
        _ready(1.0, "a#1"), _ready(2.0, "b#1"), _ready(3.0, "c#1"), _ready(4.0, "d#1", "failure"),
        _delivered(1.5, ["a#1"]),
        {"t": 1.7, "kind": "delivery_interrupted", "output_ids": ["a#1"]},
        _delivered(2.5, ["a#1", "b#1"], kind="redelivered"),
        {"t": 3.0, "kind": "confirmed", "output_id": "a#1"},
        {"t": 3.0, "kind": "merged", "output_id": "b#1"},
        _delivered(5.0, ["d#1"], user=True, bot=True),
        _delivered(6.0, ["d#1"]),  # repeated without a cut-off
        {"t": 6.5, "kind": "confirmed", "output_id": "d#1"},
        _delivered(7.0, ["c#1"], stale=True),  # stale read as a plain result
        # c#1 is never accounted for: lost
    ]  # fmt: skip
    m = compute_metrics(list(reversed(events)))  # order does not matter
    assert (m.outputs, m.deliveries, m.delivered_outputs) == (4, 5, 4)
    assert m.deliveries_over_user == 1 and m.deliveries_over_bot == 1
    assert m.lost == 1 and m.repeated == 1 and m.stale_read_as_current == 1
    assert m.redeliveries == 1 and m.failures == 1
    assert sorted(m.latencies_s) == [0.5, 0.5, 1.0, 4.0]
    assert m.latency_p50_s == pytest.approx(0.75)


def test_metrics_of_an_empty_log_and_percentile_edges():
    m = compute_metrics([])
    assert m.outputs == 0 and m.latency_p50_s is None
    assert percentile([3.0], 95) == 3.0 and percentile([], 50) is None
