"""Words said in the same breath as a delegated request go to its job, not to a turn of their own.

pipecat's ``async_tool_deferred_delivery_audio`` eval: "What's the weather in San
Francisco? Use Fahrenheit." was acknowledged on its first sentence (early STT, the
router), then "You stare in height." (tiny.en) became a turn of its own and the 0.5B
answered it "I'm sorry, but I can't assist with that." in three runs of three.
"""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.clock import LoopClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.pipelines.tandem import make_runner
from pipecat_tandem.policy.acknowledgements import acknowledge_follow_up
from pipecat_tandem.policy.routing import RuleRouter
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.turns.follow_on import FollowOn
from tests.support.fake_llm import FakeLLMService, FakeReply

# ---- the rule, on its own -------------------------------------------------------------


def test_no_pause_after_the_delegated_words_goes_on_with_the_job():
    follow = FollowOn()
    follow.speech_started(0.0)
    follow.delegated("job-1", 2.1)  # the first sentence, transcribed early
    follow.speech_stopped(3.4)
    assert follow.utterance(3.7) == "job-1"
    assert follow.utterance(3.9) == "job-1"  # a third sentence of the same breath too


def test_a_pause_inside_one_thought_still_goes_on():
    follow = FollowOn()
    follow.speech_started(0.0)
    follow.speech_stopped(2.0)
    follow.delegated("job-1", 2.3)
    follow.speech_started(2.8)  # 0.8 s: the longest pause the suite's callers make
    follow.speech_stopped(4.0)
    assert follow.utterance(4.3) == "job-1"


def test_a_caller_who_waited_for_the_reply_starts_a_new_turn():
    follow = FollowOn()
    follow.speech_started(0.0)
    follow.speech_stopped(2.0)
    follow.delegated("job-1", 2.3)
    follow.speech_started(3.7)  # heard "On it." and went on: 1.7 s
    follow.speech_stopped(5.0)
    assert follow.utterance(5.3) is None
    # Closed: later words are not the job's either, however they are timed.
    follow.speech_started(5.5)
    assert follow.utterance(6.5) is None


def test_nothing_goes_on_without_voice_timing_or_after_the_span():
    follow = FollowOn()
    follow.delegated("job-1", 1.0)
    assert follow.utterance(1.5) is None  # no VAD seen: a typed turn, a transport without VAD
    follow = FollowOn(max_span_s=5.0)
    follow.speech_started(0.0)
    follow.delegated("job-1", 1.0)
    assert follow.utterance(6.5) is None
    follow = FollowOn()
    assert follow.utterance(1.0) is None  # nothing delegated
    follow.speech_started(0.0)
    follow.delegated("job-1", 1.0)
    follow.close()
    assert follow.utterance(1.5) is None


@pytest.mark.parametrize("bad", [{"max_pause_s": 0}, {"max_span_s": -1.0}])
def test_bounds_must_be_positive(bad):
    with pytest.raises(ValueError):
        FollowOn(**bad)


# ---- through the delegation processor -------------------------------------------------


class RecordingAnswerer:
    """A stage that answers turns for the model (the awareness gate's role)."""

    def __init__(self) -> None:
        self.handled: list[tuple[str, str]] = []

    def handle(self, text: str, reply: str) -> bool:
        self.handled.append((text, reply))
        return True


WEATHER = "What is the weather in San Francisco?"


def _vad_start() -> VADUserStartedSpeakingFrame:
    return VADUserStartedSpeakingFrame(start_secs=0.2)


def _vad_stop() -> VADUserStoppedSpeakingFrame:
    return VADUserStoppedSpeakingFrame(stop_secs=0.4)


def _said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id="caller", timestamp="")


async def _call(frames: list) -> tuple[DelegationProcessor, RecordingAnswerer, list]:
    slow = FakeReply(text="It is 75 degrees and sunny.", delay_s=30.0)  # still running
    answerer = RecordingAnswerer()
    delegation = DelegationProcessor(
        runner=make_runner(lambda: FakeLLMService(lambda m: slow)),
        llm=FakeLLMService(),
        context=LLMContext(),
        clock=LoopClock(),
        event_log=EventLog(LoopClock()),
        router=RuleRouter(),
        answerer=answerer,
    )
    down, _ = await run_test(
        delegation, frames_to_send=frames, expected_down_frames=None, ignore_start=True
    )
    return delegation, answerer, down


async def test_the_second_sentence_of_a_delegated_request_goes_to_the_job():
    delegation, answerer, down = await _call(
        [
            _vad_start(),
            SleepFrame(0.2),
            _said(WEATHER),  # transcribed early: the voice goes on
            SleepFrame(0.6),
            _said("Use Fahrenheit."),
            SleepFrame(0.1),
            _vad_stop(),
            SleepFrame(0.2),
        ]
    )
    [job] = delegation.registry.jobs
    assert job.follow_ups == ["Use Fahrenheit."]
    # One thought, one job, and the model never answers the fragment: the machinery does.
    assert [reply for _, reply in answerer.handled][1] == acknowledge_follow_up(variant=1)
    assert answerer.handled[1][0] == "Use Fahrenheit."
    transcripts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert transcripts[1] == "Use Fahrenheit."  # the user's words are kept as said
    assert not job.stale_reason


async def test_a_question_after_the_acknowledgement_is_a_turn_of_its_own():
    delegation, answerer, down = await _call(
        [
            _vad_start(),
            SleepFrame(0.2),
            _said(WEATHER),
            SleepFrame(0.1),
            _vad_stop(),
            SleepFrame(2.0),  # the caller heard "On it." and paused 2 s
            _vad_start(),
            SleepFrame(0.3),
            _said("Meanwhile, what is the capital of Italy?"),
            SleepFrame(0.2),
        ]
    )
    [job] = delegation.registry.jobs
    assert job.follow_ups == []
    assert len(answerer.handled) == 1  # only the delegation's own acknowledgement


async def test_a_new_request_in_the_same_breath_is_a_job_of_its_own():
    delegation, answerer, _ = await _call(
        [
            _vad_start(),
            SleepFrame(0.2),
            _said(WEATHER),
            SleepFrame(0.5),
            _said("And convert five miles to kilometres."),
            SleepFrame(0.2),
        ]
    )
    assert [j.task for j in delegation.registry.jobs][0] == WEATHER
    assert len(delegation.registry.jobs) == 2
    assert delegation.registry.jobs[0].follow_ups == []


async def test_the_added_words_do_not_count_as_moving_away_from_the_request():
    # The eval's run: the fragment, then the story heard as "Tell me the short story ..."
    # (not a pastime with "the"): counted as two unrelated turns the look-up went stale
    # and its answer was offered ("want it?") instead of said.
    delegation, _, _ = await _call(
        [
            _vad_start(),
            SleepFrame(0.2),
            _said(WEATHER),
            SleepFrame(0.5),
            _said("You stare in height."),
            SleepFrame(0.1),
            _vad_stop(),
            SleepFrame(2.0),
            _vad_start(),
            SleepFrame(0.3),
            _said("Tell me the short story about a sea turtle."),
            SleepFrame(0.2),
        ]
    )
    [job] = delegation.registry.jobs
    assert job.task == WEATHER and job.follow_ups == ["You stare in height."]
    assert not job.stale_reason
