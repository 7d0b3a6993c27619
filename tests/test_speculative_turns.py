"""The reply starts while the turn analyzer decides, and only a finished turn hears it."""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)

from tests.support.turn_call import COMPLETE, INCOMPLETE, call, user_messages


async def test_the_reply_starts_before_the_verdict_and_is_heard_only_after_it():
    async with call() as c:
        await c.speak("What is the capital of France?")
        await c.until(lambda: len(c.llm.contexts) == 1)  # the analyzer has not answered
        assert c.analyzer.analyzing.is_set()
        await asyncio.sleep(0.05)
        assert c.out.spoken() == ""  # held back until the turn is over
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: What is the capital of France?"
        assert len(c.llm.contexts) == 1  # the early reply was the reply: no second run
        assert c.strategy.speculations_confirmed == c.strategy.speculations_started == 1
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["What is the capital of France?"]
        assert c.analyzer.appended_while_analyzing == 0  # audio waited for the verdict


async def test_an_unfinished_turn_withdraws_the_early_reply_and_answers_all_of_it():
    async with call() as c:
        await c.speak("So I was thinking")
        await c.until(lambda: len(c.llm.contexts) == 1)
        c.analyzer.answer(INCOMPLETE)  # smart-turn: the user is not done
        await c.until(lambda: any(isinstance(f, EagerEndOfTurnCancelFrame) for f in c.out.frames))
        await c.speak("about the weekend.")
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        # Only the second speculation-free run is spoken, and it answers the whole turn.
        assert c.out.spoken() == "You said: So I was thinking about the weekend."
        assert c.strategy.speculations_started == 1  # the second words joined earlier ones
        assert c.strategy.speculations_confirmed == 0
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["So I was thinking about the weekend."]


async def test_voice_during_the_analysis_withdraws_the_reply_at_once():
    async with call() as c:
        await c.speak("Hello")
        await c.until(lambda: len(c.llm.contexts) == 1)
        await c.send(VADUserStartedSpeakingFrame())  # the user goes on, analyzer still busy
        await c.until(lambda: any(isinstance(f, EagerEndOfTurnCancelFrame) for f in c.out.frames))
        assert c.analyzer.analyzing.is_set()
        c.analyzer.answer(COMPLETE)  # a stale "complete": pipecat keeps the turn open
        await asyncio.sleep(0.1)
        assert c.out.spoken() == ""
        await c.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), c.audio())
        await c.send(TranscriptionFrame("there.", "user", "now", finalized=True))
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Hello there."


async def test_words_after_the_verdict_take_pipecats_usual_path():
    async with call() as c:
        await c.speak(None)
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await c.until(lambda: not c.analyzer.analyzing.is_set())
        await c.send(TranscriptionFrame("Late words.", "user", "now", finalized=True))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Late words."
        assert c.strategy.speculations_started == 0


async def test_without_speculation_the_analysis_still_does_not_block_the_aggregator():
    async with call(speculate=False) as c:
        await c.speak("Tell me a joke.")
        await asyncio.sleep(0.1)
        assert c.llm.contexts == []  # nothing starts before the verdict
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Tell me a joke."
        assert c.strategy.speculations_started == 0


@pytest.mark.parametrize("text", ["", "   "])
async def test_blank_words_start_nothing(text):
    async with call() as c:
        await c.speak(text)
        await c.until(lambda: c.analyzer.analyzing.is_set())
        await asyncio.sleep(0.05)
        assert c.llm.contexts == [] and c.strategy.speculations_started == 0


async def test_the_pipeline_ends_cleanly_during_an_analysis():
    async with call() as c:
        await c.speak("Are you there?")
        await c.until(lambda: len(c.llm.contexts) == 1)
        # Leaving the block sends EndFrame while the analysis is still pending.


async def test_a_second_stop_during_the_analysis_is_analyzed_in_turn():
    async with call() as c:
        await c.speak("Hello")
        await c.until(lambda: len(c.llm.contexts) == 1)
        await c.speak("there.")  # voice, a second stop and more words, all before a verdict
        await asyncio.sleep(0.05)
        assert c.strategy.speculations_started == 1  # not again on half the turn
        c.analyzer.answer(COMPLETE)  # stale: the voice came back
        await c.until(lambda: c.analyzer.analyses == 2 and c.analyzer.analyzing.is_set())
        await c.send(c.audio(), c.audio())  # held for the second analysis too
        await asyncio.sleep(0.05)
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Hello there."
        assert c.analyzer.appended_while_analyzing == 0
