"""A result cut off again and again is never lost (issue 13, defect 10).

* A delivery cut off before the bot said its first word does not use up a redelivery.
* A result that runs out of redeliveries goes into the context silently (so the model
  can bring it up when asked) and is accounted ``into_context``, not ``merged`` or
  ``delivered``.
"""

from pipecat_tandem.frames import DeliveryPolicy
from pipecat_tandem.observe.metrics import ACCOUNTED, compute_metrics
from pipecat_tandem.policy.delivery import DeliveryScheduler
from tests.support.fake_llm import FakeReply
from tests.support.scenario import _RESULT, say, weaving_responder
from tests.test_scenarios import delegate_arith, scenario


def _sched(**kw):
    return DeliveryScheduler(min_gap_s=0.5, **kw)


def _cut(s, t, *, heard):
    """Emit the next delivery at ``t`` and let the user cut it off (after a word or not)."""
    d = s.poll(t)
    assert d is not None, f"nothing delivered at {t}"
    if heard:
        s.bot_started(t + 0.2)
    s.user_started(t + 0.3)
    if heard:
        s.bot_stopped(t + 0.3)
    s.user_stopped(t + 0.5)
    return d


# --- the scheduler (pure) -----------------------------------------------------------------


def test_a_cut_off_before_the_first_word_does_not_use_up_a_redelivery():
    s = _sched(max_redeliveries=1)
    s.add(job_id="a", text="42", now=0.0, task="the answer")
    t = 0.5
    for _ in range(5):  # far more than max_redeliveries, none of them heard
        _cut(s, t, heard=False)
        assert s.status["a#1"] == "pending"
        t += 1.0
    d = s.poll(t)
    assert d is not None and d.mode == "weave" and "42" in d.text
    # Nothing of it was heard yet: not worded as "say it again".
    assert "cut off" not in d.text
    s.bot_started(t + 0.2)
    s.bot_stopped(t + 2.0)
    assert s.status["a#1"] == "delivered"


def test_a_result_out_of_redeliveries_goes_into_the_context_silently():
    s = _sched(max_redeliveries=2)
    s.add(job_id="a", text="42", now=0.0, task="the answer")
    t = 0.5
    for _ in range(3):  # the first delivery and both redeliveries, each cut off when heard
        _cut(s, t, heard=True)
        t += 1.0
    assert s.status["a#1"] == "pending"  # not settled into nothing
    d = s.poll(t)
    assert d is not None and d.mode == "silent" and d.kind == "into_context"
    assert "42" in d.text and "the answer" in d.text
    assert s.status["a#1"] == "into_context"
    assert s.in_flight is None and s.poll(t + 5.0) is None
    kinds = [e["kind"] for e in s.drain_events()]
    assert kinds.count("into_context") == 1
    assert "merged" not in kinds and "confirmed" not in kinds


def test_every_output_of_a_merged_delivery_goes_into_the_context_not_merged_into_nothing():
    s = _sched(max_redeliveries=0)
    s.add(job_id="a", text="1", now=0.0, task="A")
    s.add(job_id="b", text="2", now=0.0, task="B")
    d = _cut(s, 0.5, heard=True)
    assert d.job_ids == ["a", "b"]
    d = s.poll(1.5)
    assert d is not None and d.mode == "silent" and d.job_ids == ["a", "b"]
    assert s.status == {"a#1": "into_context", "b#1": "into_context"}


def test_the_cut_off_delivery_is_always_returned_for_retraction():
    # Its woven message must leave the context even when its redeliveries are used up:
    # the silent note takes its place, without the "tell the user now" instruction.
    s = _sched(max_redeliveries=0)
    s.add(job_id="a", text="1", now=0.0)
    d = s.poll(0.5)
    s.bot_started(0.6)
    assert s.user_started(0.7) is d


def test_a_silent_policy_output_is_still_accounted_delivered():
    s = _sched()
    s.add(job_id="s", text="note", now=0.0, policy=DeliveryPolicy.SILENT)
    d = s.poll(0.1)
    assert d is not None and d.kind == "delivered" and s.status["s#1"] == "delivered"


def test_the_session_end_while_the_user_speaks_drops_an_unplaced_note_accounted():
    s = _sched(max_redeliveries=0)
    s.add(job_id="a", text="1", now=0.0)
    s.poll(0.5)
    s.bot_started(0.6)
    s.user_started(0.7)
    s.close(1.0)
    assert s.status["a#1"] == "dropped_session_end"


# --- metrics ------------------------------------------------------------------------------


def test_metrics_count_into_context_outputs_as_accounted_and_not_repeated():
    s = _sched(max_redeliveries=1)
    s.add(job_id="a", text="1", now=0.0)
    events = [{"t": 0.0, "kind": "result_ready", "job_id": "a", "output_id": "a#1"}]
    t = 0.5
    for _ in range(2):
        d = _cut(s, t, heard=True)
        events.append(_delivered(d))
        t += 1.0
    d = s.poll(t)
    events.append(_delivered(d))
    events += s.drain_events()
    assert "into_context" in ACCOUNTED
    m = compute_metrics(events)
    assert m.lost == 0 and m.repeated == 0 and m.into_context == 1
    assert m.redeliveries == 1  # the silent note is not a redelivery


def _delivered(d):
    return {
        "t": d.at,
        "kind": "delivered",
        "job_ids": d.job_ids,
        "mode": d.mode,
        "delivery": d.kind,
        "policy": d.items[0].policy.value,
        "items": [{"output_id": i.output_id, "job_id": i.job_id} for i in d.items],
    }


# --- the whole call (real pipeline, fake models, a bot that speaks) ------------------------


def _barge_ins(*times):
    script = say(1.0, "what is 1234 times 5678")
    for t in times:
        script += say(t, "wait", 0.3)
    return script


def test_barge_ins_before_the_first_word_never_use_up_the_result():
    # Each delivery goes out at a gap and the user speaks 40 ms later, while the model is
    # still composing it: nothing of it is heard, three times (one more than the two
    # redeliveries allowed). The fourth delivery is heard to the end, as a delivery.
    r = scenario(_barge_ins(4.35, 5.8, 7.25), until=20)
    m = r.metrics
    assert m.lost == 0 and m.repeated == 0 and m.deliveries_over_user == 0
    heard = [u.text for u in r.output.spoken if not u.interrupted and "7006652" in u.text]
    assert heard == ["The answer is 7006652."]
    [confirmed] = r.of_kind("confirmed")
    last = [u for u in r.output.spoken if "7006652" in u.text][-1]
    assert confirmed["t"] >= last.end  # settled when heard, not when cut off
    assert len(r.of_kind("delivered")) == 4 and m.into_context == 0


def remembering_responder():
    """The weaving fake, which also answers "what was the answer" from a context note."""
    weave = weaving_responder(delegate_arith)

    def respond(messages):
        last = messages[-1] if messages else {}
        if last.get("role") == "user" and "what was the answer" in str(last.get("content")):
            notes = [
                a
                for m in messages
                if m.get("role") == "developer"
                and "Background work has finished" not in str(m.get("content"))
                for a in _RESULT.findall(str(m.get("content")))
            ]
            return FakeReply(text=f"It was {notes[-1]}." if notes else "I don't know.")
        return weave(messages)

    return respond


def test_a_result_cut_off_while_heard_too_often_stays_in_the_context_and_can_be_asked_for():
    # The user barges in 0.5 s into each delivery, once the bot has started saying it.
    # After the two redeliveries the result goes into the context silently; asked
    # about it later, the model answers from it.
    script = _barge_ins(4.9, 6.9, 8.9) + say(12.0, "what was the answer", 1.0)
    r = scenario(script, interaction=remembering_responder(), until=25)
    m = r.metrics
    assert m.lost == 0 and m.repeated == 0 and m.deliveries_over_user == 0
    assert [e["output_id"] for e in r.of_kind("into_context")] == ["job-1#1"]
    assert not r.of_kind("merged") and not r.of_kind("confirmed")
    assert r.tandem.interleaver.scheduler.status == {"job-1#1": "into_context"}
    assert m.into_context == 1 and m.redeliveries == 2
    cut = [u for u in r.output.spoken if u.text.startswith("The answer is")]
    assert len(cut) == 3 and all(u.interrupted for u in cut)
    assert r.spoken_texts()[-1] == "It was 7006652."
    # The woven messages were all taken back out; the note alone carries the result.
    developer = [
        str(m["content"])
        for m in r.tandem.context.get_messages()
        if m.get("role") == "developer" and "7006652" in str(m.get("content"))
    ]
    assert len(developer) == 1 and "Background work has finished" not in developer[0]
