"""The interleaver's timer survives a delivery that raises (issue 13, defect 3, second half)."""

from pipecat.frames.frames import LLMMessagesAppendFrame, LLMTextFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.frames import BackgroundResultFrame
from pipecat_tandem.policy.delivery import DeliveryFailed, DeliveryScheduler
from pipecat_tandem.policy.wording import DeliveryWording
from pipecat_tandem.processors import ResultInterleaver
from tests.support.virtual_time import run_virtual


def run(interleaver, frames):
    return run_virtual(
        run_test(
            interleaver, frames_to_send=frames, frames_to_send_direction=FrameDirection.DOWNSTREAM
        )
    )


def deliveries(frames):
    return [f for f in frames if isinstance(f, LLMMessagesAppendFrame | LLMTextFrame)]


class FlakyWording(DeliveryWording):
    """Raises on the first delivery that carries a ``bad`` job."""

    def weave(self, items):
        if any(i.job_id == "bad" for i in items):
            raise KeyError("task")  # e.g. a template naming a field that does not exist
        return super().weave(items)


def test_a_wording_failure_does_not_stop_later_deliveries():
    il = ResultInterleaver(min_gap_s=0.5, wording=FlakyWording())
    frames = [
        BackgroundResultFrame(job_id="bad", text="oops", task="first"),
        SleepFrame(1.0),
        BackgroundResultFrame(job_id="good", text="42", task="second"),
        SleepFrame(1.0),
    ]
    down, _ = run(il, frames)
    [d] = deliveries(down)
    assert "42" in d.messages[0]["content"] and "oops" not in d.messages[0]["content"]
    # The session end confirms the delivery still in flight.
    assert il.scheduler.status == {"bad#1": "delivery_failed", "good#1": "delivered"}
    failed = [e for e in il.event_log.events if e["kind"] == "delivery_failed"]
    assert [e["job_id"] for e in failed] == ["bad"] and "KeyError" in failed[0]["reason"]


def test_a_push_failure_does_not_stop_later_deliveries(monkeypatch):
    il = ResultInterleaver(min_gap_s=0.5, verbatim=True)
    real_push = il.push_frame
    calls = {"n": 0}

    async def flaky_push(frame, direction=FrameDirection.DOWNSTREAM):
        if isinstance(frame, LLMTextFrame) and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("transport gone for a moment")
        await real_push(frame, direction)

    monkeypatch.setattr(il, "push_frame", flaky_push)
    frames = [
        BackgroundResultFrame(job_id="j1", text="first answer"),
        SleepFrame(1.0),
        BackgroundResultFrame(job_id="j2", text="second answer"),
        SleepFrame(1.0),
    ]
    down, _ = run(il, frames)
    assert [d.text for d in deliveries(down)] == ["second answer"]
    assert il.scheduler.status["j1#1"] == "delivery_failed"
    assert il.scheduler.status["j2#1"] == "delivered"


def test_wording_failure_keeps_outputs_pending_until_failed():
    s = DeliveryScheduler(min_gap_s=0.5, wording=FlakyWording())
    s.add(job_id="bad", text="x", now=0.0)
    try:
        s.poll(1.0)
    except DeliveryFailed as e:
        assert e.job_ids == ["bad"] and e.output_ids == ["bad#1"]
    else:
        raise AssertionError("expected DeliveryFailed")
    assert [p.output_id for p in s.pending] == ["bad#1"]  # not lost unaccounted
    s.fail("bad", "wording", 1.0)
    assert s.pending == [] and s.status["bad#1"] == "delivery_failed"
    assert s.add(job_id="bad", text="again", now=1.1) is None  # never retried
    assert s.poll(2.0) is None


def test_fail_settles_in_flight_and_requeues_other_jobs_merged_with_it():
    s = DeliveryScheduler(min_gap_s=0.5)
    s.add(job_id="a", text="1", now=0.0)
    s.add(job_id="b", text="2", now=0.0)
    d = s.poll(1.0)
    assert d is not None and d.job_ids == ["a", "b"]
    s.fail("a", "push failed", 1.0)
    assert s.in_flight is None
    assert s.status == {"a#1": "delivery_failed", "b#1": "pending"}
    again = s.poll(1.1)
    assert again is not None and again.job_ids == ["b"]


def test_fail_marks_a_silent_delivery_named_by_output_id():
    from pipecat_tandem.frames import DeliveryPolicy

    s = DeliveryScheduler(min_gap_s=0.5)
    s.add(job_id="s", text="note", now=0.0, policy=DeliveryPolicy.SILENT)
    d = s.poll(0.1)
    assert d is not None and s.status["s#1"] == "delivered"
    s.drain_events()
    s.fail("s", "push failed", 0.2, output_ids=["s#1"])
    assert s.status["s#1"] == "delivery_failed"
    assert [e["kind"] for e in s.drain_events()] == ["delivery_failed"]


def test_a_broken_event_log_does_not_stop_the_timer(monkeypatch):
    il = ResultInterleaver(min_gap_s=0.5)
    real_emit = il.event_log.emit
    broken = {"on": False}

    def emit(kind, **fields):
        if broken["on"] and kind == "delivered":
            broken["on"] = False
            raise OSError("disk full")
        return real_emit(kind, **fields)

    monkeypatch.setattr(il.event_log, "emit", emit)
    broken["on"] = True
    frames = [
        BackgroundResultFrame(job_id="j1", text="first"),
        SleepFrame(1.0),
        BackgroundResultFrame(job_id="j2", text="second"),
        SleepFrame(1.0),
    ]
    down, _ = run(il, frames)
    texts = [d.messages[0]["content"] for d in deliveries(down)]
    assert len(texts) == 1 and "second" in texts[0]
    assert il.scheduler.status["j1#1"] == "delivery_failed"
