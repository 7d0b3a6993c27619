"""A hung interaction model and a streaming STT that never answers (issue 13).

Both used to leave the user in silence: the model's request never ended (the call
was silent until the user barged in, and every later turn queued behind it), and
a turn whose transcript never came was dropped like a cough. Each now ends in one
short sentence and the call goes on. The real tandem pipeline runs on virtual
time (``tests/test_speech_faults``'s harness).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.stt_service import STTService
from pipecat.utils.time import time_now_iso8601

from pipecat_tandem.observe.metrics import compute_metrics
from pipecat_tandem.policy.reply_deadline import ReplyDeadline
from pipecat_tandem.policy.speech_faults import SpeechApologies
from pipecat_tandem.policy.unheard_speech import UnheardSpeech
from tests.support.fake_llm import FakeReply
from tests.support.scenario import weaving_responder
from tests.support.virtual_time import run_virtual
from tests.test_scenarios import delegate_arith
from tests.test_speech_faults import STARTS, TEXTS, FaultySTT, FaultyTTS, _call

SORRY_HUNG = SpeechApologies().llm_hung
SORRY_STT = SpeechApologies().stt


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


#
# A streaming STT that never answers
#


class StreamingSTT(STTService):
    """A socket-style STT: audio goes out, the turn's transcript comes back at its end.

    Turn ``i`` is written as ``texts[i]`` (an interim first, then the final); an
    empty text is a cough (no words, so no transcript); turns in ``dead`` are never
    answered (the socket went quiet). ``run_stt`` returns at once, as a streaming
    service's does, so no per-step limit applies.
    """

    def __init__(self, texts: list[str], dead: set[int] = frozenset(), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._texts = texts
        self._dead = dead
        self.turns = 0

    def can_generate_metrics(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            i, self.turns = self.turns, self.turns + 1
            text = self._texts[i] if i < len(self._texts) else ""
            if text and i not in self._dead:
                now = time_now_iso8601()
                await self.push_frame(InterimTranscriptionFrame(text, "user", now))
                await self.push_frame(TranscriptionFrame(text, "user", now))


def test_a_streaming_stt_that_never_answers_is_told_once_and_the_call_goes_on():
    stt, tts = StreamingSTT(TEXTS, dead={1}), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts, transcript_timeout_s=3.0))
    assert stt.turns == 3
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", SORRY_STT, "Sure."]
    [unheard] = c.kinds("speech_unheard")
    assert 13.5 < unheard["t"] < 14.5  # the voice ended at 11 s, 3 s of waiting
    assert [e["service"] for e in c.kinds("speech_fault")] == ["stt"]
    assert len(c.kinds("speech_apology")) == 1
    assert compute_metrics(c.events).lost == 0


def test_a_cough_stays_quiet_with_a_streaming_stt():
    # 0.3 s of voice with no words: a cough, not a dead STT. Nothing is said.
    stt, tts = StreamingSTT([TEXTS[0], "", "hello again"]), FaultyTTS({})
    c = run_virtual(_call([1.0, (10.0, 0.3), 20.0], stt=stt, tts=tts, transcript_timeout_s=3.0))
    assert stt.turns == 3
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", "Sure."]
    assert not c.kinds("speech_unheard") and not c.kinds("speech_apology")


def test_a_silent_turn_with_the_stt_alive_is_not_told():
    stt, tts = StreamingSTT(TEXTS), FaultyTTS({})
    c = run_virtual(_call(STARTS, stt=stt, tts=tts, transcript_timeout_s=3.0))
    assert tts.voiced == ["I'm on it.", "The answer is 7006652.", "Sure.", "Sure."]
    assert not c.kinds("speech_unheard") and not c.kinds("speech_apology")


def test_unheard_speech_rule():
    u = UnheardSpeech(timeout_s=4.0, min_speech_s=0.8)
    u.speech_started(1.0)
    assert u.deadline() is None  # still speaking
    u.speech_stopped(2.0)
    assert u.deadline() == 6.0 and not u.due(5.9)
    assert u.due(6.0) and not u.due(7.0)  # once per turn
    # A cough: short voice, no words: quiet.
    u.speech_started(10.0)
    u.speech_stopped(10.4)
    assert not u.due(20.0) and u.quiet == 1
    # Two short spans in one turn add up to words.
    u.speech_started(30.0)
    u.speech_stopped(30.5)
    u.speech_started(30.7)
    u.speech_stopped(31.2)
    assert u.due(35.2) and u.unheard == 2
    # Any transcript settles the turn.
    u.speech_started(40.0)
    u.speech_stopped(42.0)
    u.transcript()
    assert u.deadline() is None and not u.due(100.0)


def test_unheard_speech_over_the_bot_is_left_to_pipecats_recovery():
    u = UnheardSpeech(timeout_s=4.0)
    u.speech_started(1.0, bot_speaking=True)
    u.speech_stopped(3.0)
    assert not u.due(10.0)
    u = UnheardSpeech(timeout_s=4.0, quiet_when_interrupting=False)
    u.speech_started(1.0, bot_speaking=True)
    u.speech_stopped(3.0)
    assert u.due(10.0)


@pytest.mark.parametrize(
    "kw", [{"timeout_s": 0}, {"timeout_s": float("nan")}, {"min_speech_s": -1}]
)
def test_unheard_speech_refuses_bad_durations(kw):
    with pytest.raises((TypeError, ValueError)):
        UnheardSpeech(**kw)
