"""A hung interaction model and a streaming STT that never answers (issue 13).

Both used to leave the user in silence: the model's request never ended (the call
was silent until the user barged in, and every later turn queued behind it), and
a turn whose transcript never came was dropped like a cough. Each now ends in one
short sentence and the call goes on. The real tandem pipeline runs on virtual
time (``tests/test_speech_faults``'s harness).
"""

from __future__ import annotations

from typing import Any

import pytest

from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.policy.reply_deadline import ReplyDeadline
from pipecat_tandem.policy.speech_faults import SpeechApologies
from tests.support.fake_llm import FakeReply
from tests.support.scenario import weaving_responder
from tests.support.virtual_time import run_virtual
from tests.test_scenarios import delegate_arith
from tests.test_speech_faults import STARTS, TEXTS, FaultySTT, FaultyTTS, _call

SORRY_HUNG = SpeechApologies().llm_hung


def _hangs_on(words: str):
    weave = weaving_responder(delegate_arith)
    hung: list[int] = []

    def respond(messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        if last.get("role") == "user" and words in str(last.get("content")):
            hung.append(1)
            return FakeReply(hang=True)
        return weave(messages)

    return respond, hung


def test_a_hung_interaction_model_is_given_up_and_the_next_turn_is_answered():
    # The model never answers "how are you" (a stalled socket): after the deadline
    # the user hears one sentence, and "hello again" ten seconds later is answered.
    respond, hung = _hangs_on("how are you")
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts, interaction=respond, reply_timeout_s=4.0))
    assert hung == [1]
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", SORRY_HUNG, "Sure."]
    [timeout] = c.kinds("reply_timeout")
    [said] = c.kinds("speech_apology")
    assert said["text"] == SORRY_HUNG and said["t"] - timeout["t"] < 1.0
    # Asked when the turn ends (~11.3 s), given up 4 s later, not before.
    assert 15.0 < timeout["t"] < 16.0
    assert [e["service"] for e in c.kinds("speech_fault")] == ["llm_hung"]
    assert compute_metrics(c.events).lost == 0


def test_a_hung_model_with_a_result_waiting_still_delivers_it():
    # The model hangs on the weave of the result itself: after the deadline the
    # user is told, and the interleaver (which waits for the model's response to
    # end) is not held forever: the next turn is answered.
    weave = weaving_responder(delegate_arith)
    hung: list[int] = []

    def respond(messages: list[dict[str, Any]]) -> FakeReply:
        if not hung and "7006652" in str(messages[-1].get("content")):
            hung.append(1)
            return FakeReply(hang=True)
        return weave(messages)

    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts, interaction=respond, reply_timeout_s=4.0))
    assert hung == [1]
    # The apology waits for the unheard delivery to be settled (the user's next
    # turn); the result is then delivered again and heard once.
    assert tts.voiced.count(SORRY_HUNG) == 1
    assert tts.voiced.count("The answer is 7006652.") == 1
    assert tts.voiced[-1] == "Sure."
    assert len(c.kinds("reply_timeout")) == 1
    m = compute_metrics(c.events)
    assert m.lost == 0 and m.repeated == 0


def test_a_slow_model_inside_the_deadline_is_left_alone():
    stt, tts = FaultySTT(TEXTS, {}), FaultyTTS({})

    def slow(messages: list[dict[str, Any]]) -> FakeReply:
        reply = weaving_responder(delegate_arith)(messages)
        reply.delay_s = 3.0
        return reply

    c = run_virtual(_call(STARTS, stt=stt, tts=tts, interaction=slow, reply_timeout_s=4.0))
    assert not c.kinds("reply_timeout") and not c.kinds("speech_apology")
    assert sorted(tts.voiced) == sorted(["I'm on it.", "The answer is 7006652.", "Sure.", "Sure."])


#
# The rule, without a loop
#


def test_deadline_runs_from_the_request_to_the_first_output():
    d = ReplyDeadline(timeout_s=10.0)
    d.requested(1.0)
    assert d.deadline() == 11.0 and not d.expire(10.9)
    d.output()
    assert d.deadline() is None and not d.expire(100.0)
    d.ended(30.0)
    assert d.pending == 0


def test_a_request_queued_behind_a_streaming_reply_waits_from_its_end():
    d = ReplyDeadline(timeout_s=10.0)
    d.requested(0.0)
    d.output()  # the first reply streams for a long time
    d.requested(1.0)  # queued behind it
    assert d.deadline() is None and not d.expire(20.0)
    d.ended(25.0)
    assert d.deadline() == 35.0
    assert d.expire(35.0) and not d.expire(36.0)  # once
    assert d.expired == 1 and d.pending == 0


def test_an_interruption_clears_what_is_owed():
    d = ReplyDeadline(timeout_s=5.0)
    d.requested(0.0)
    d.interrupted()
    assert not d.expire(100.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "10"])
def test_deadline_refuses_a_bad_timeout(bad):
    with pytest.raises((TypeError, ValueError)):
        ReplyDeadline(timeout_s=bad)
