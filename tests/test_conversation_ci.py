"""The conversation suite's CI subset: a real caller on a real call, graded at the caller.

``tandem run`` on the embedded offline default, started as a subprocess on
127.0.0.1; a real aiortc peer speaks with piper's joe voice (not the bot's) in
real time, records the bot's audio as it arrives and transcribes it with Whisper
base (not the bot's recognizer). This is the product as a person has it: the
assertions are on what the caller heard, never on the pipeline's own logs.
Latency figures are reported by ``benchmarks/bench_conversation.py``, not asserted.
"""

from __future__ import annotations

import asyncio

import pytest

from pipecat_tandem.bench.caller import ci_subset
from pipecat_tandem.bench.caller.call import Caller
from pipecat_tandem.bench.caller.ears import CallerEars
from pipecat_tandem.bench.caller.grading import TurnResult
from pipecat_tandem.bench.caller.server import tandem_run
from pipecat_tandem.bench.caller.summary import markdown
from pipecat_tandem.bench.caller.voice import CallerVoice

pytestmark = pytest.mark.slow


async def _suite(tmp_path) -> list[TurnResult]:
    voice, ears = CallerVoice(steady=True), CallerEars()
    results: list[TurnResult] = []
    async with tandem_run(log=tmp_path / "server.log") as base:
        caller = Caller(base, voice, ears)
        for conversation in ci_subset():
            record = await caller.call(conversation)
            results += caller.grade(record, caller.hear(record))
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> list[TurnResult]:
    out = asyncio.run(_suite(tmp_path_factory.mktemp("conversation")))
    print("\n" + markdown(out))  # shown with -s, and in the report of a failure
    return out


def test_every_chat_question_is_answered_and_on_topic(results):
    chat = [r for r in results if r.kind == "chat"]
    assert len(chat) == 3
    assert all(r.latency_s is not None for r in chat), [(r.said, r.heard) for r in chat]
    assert sum(1 for r in chat if r.on_topic) >= 2, [(r.said, r.heard) for r in chat]


def test_a_delegated_word_problem_is_acknowledged_then_answered_with_the_answer(results):
    (job,) = [r for r in results if r.kind == "job"]
    assert job.latency_s is not None and job.on_topic, job.heard  # "On it, ..."
    assert job.answer_spoken, job.heard
    assert not job.not_an_answer, job.heard  # no plan, JSON or tool call read out


def test_the_timer_fires_on_time_and_nothing_claims_it_early(results):
    (timer,) = [r for r in results if r.kind == "timer"]
    assert timer.on_topic, timer.heard  # the acknowledgement
    assert not timer.early_claim, timer.heard
    assert timer.fired_s is not None and abs(timer.fired_s - 10.0) <= 1.0, timer


def test_can_you_see_me_is_answered_from_the_camera(results):
    # With a webcam: "Yes, ... I can see its picture."; audio only: "No, I can't see a camera".
    by_call = {r.conversation: r for r in results if r.kind == "sight"}
    assert set(by_call) == {"seen_on_camera", "no_camera_to_see"}
    for r in by_call.values():
        assert r.latency_s is not None and r.on_topic, (r.conversation, r.heard)


def test_the_bot_never_speaks_over_the_caller(results):
    assert [r.said for r in results if r.spoke_over_user] == []
