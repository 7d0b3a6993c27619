"""A turn ends on the words said after the user's last pause, not on earlier ones."""

from __future__ import annotations

import asyncio
import functools

import pytest
from pipecat.frames.frames import (
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.utils.time import time_now_iso8601

from pipecat_tandem.turns import SpeculativeTurnStopStrategy
from pipecat_tandem.turns.fresh_transcript_turn_stop_strategy import (
    FreshTranscriptTurnStopStrategy,
)
from tests.support.turn_call import COMPLETE, INCOMPLETE, Call, call, user_messages

FIRST = "So let me tell you about my week."
LAST = "What should I do this weekend?"


async def _two_stretches(c: Call, verdict_after_s: float = 0.0) -> None:
    """A first stretch with its words ("go on", says the analyzer), then a last one
    the analyzer calls complete (after ``verdict_after_s``: a loaded machine) before
    its words (if any) are transcribed."""
    await c.speak(FIRST)
    await c.until(lambda: c.analyzer.analyzing.is_set())
    c.analyzer.answer(INCOMPLETE)
    await c.until(lambda: not c.analyzer.analyzing.is_set())
    await c.send(VADUserStartedSpeakingFrame(), *[c.audio()] * 3)
    await c.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), c.audio())
    await c.until(lambda: c.analyzer.analyzing.is_set())
    await asyncio.sleep(verdict_after_s)
    c.analyzer.answer(COMPLETE)
    await c.until(lambda: not c.analyzer.analyzing.is_set())
    await asyncio.sleep(0.1)  # the STT is still working on the last words


async def test_the_turn_waits_for_the_last_stretchs_words():
    async with call(strategy_cls=FreshTranscriptTurnStopStrategy) as c:
        await _two_stretches(c)
        assert c.llm.contexts == []  # not answered on the first sentence alone
        await c.send(TranscriptionFrame(LAST, "user", "now", finalized=True))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == f"You said: {FIRST} {LAST}"
        assert len(c.llm.contexts) == 1
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == [f"{FIRST} {LAST}"]


async def test_pipecats_strategy_ends_the_turn_on_the_earlier_words():
    # The defect this strategy exists for (seen in a call: a monologue's question
    # answered 2.5 s late, after a first reply to the turn without it).
    async with call(strategy_cls=TurnAnalyzerUserTurnStopStrategy) as c:
        await _two_stretches(c)
        await c.until(lambda: len(c.llm.contexts) == 1)
        assert LAST not in str(c.llm.contexts[0])


async def test_a_last_stretch_without_words_ends_on_the_earlier_ones():
    quick = functools.partial(FreshTranscriptTurnStopStrategy, late_transcript_s=0.3)
    async with call(strategy_cls=quick) as c:
        await _two_stretches(c)  # and no words come: a cough after the sentence
        assert c.llm.contexts == []  # its words may still come
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == f"You said: {FIRST}"


async def test_words_of_one_stretch_end_the_turn_at_once():
    async with call(strategy_cls=FreshTranscriptTurnStopStrategy) as c:
        await c.speak("Tell me a joke.")
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Tell me a joke."


@pytest.mark.parametrize(
    "strategy",
    [
        FreshTranscriptTurnStopStrategy,
        # No speculation: its early start on the first sentence is a context of its own.
        functools.partial(SpeculativeTurnStopStrategy, speculate=False),
    ],
)
async def test_a_slow_verdict_still_waits_for_the_last_stretchs_words(strategy):
    # A loaded machine (issue 13 soak, 41 calls of 100): smart-turn answered after
    # the words' wait had run out, its "complete" ended the turn on the first
    # sentence, and the question's words, a few ms later, opened a new turn.
    quick = functools.partial(strategy, late_transcript_s=0.2)
    async with call(strategy_cls=quick) as c:
        await _two_stretches(c, verdict_after_s=0.4)  # longer than the words' wait
        await c.send(TranscriptionFrame(LAST, "user", "now"))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert LAST in str(c.llm.contexts[0])  # old code: the first sentence alone
        assert len(c.llm.contexts) == 1


async def test_earlier_words_overtaken_by_the_vads_start_do_not_end_the_turn():
    # The VAD's frames are system frames: under load the first sentence's transcript,
    # made before the user spoke again, reached the strategy after the VAD's start.
    async with call(strategy_cls=FreshTranscriptTurnStopStrategy) as c:
        await c.speak(None)
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(INCOMPLETE)
        await c.until(lambda: not c.analyzer.analyzing.is_set())
        made_before = TranscriptionFrame(FIRST, "user", time_now_iso8601())
        await asyncio.sleep(0.01)
        await c.send(VADUserStartedSpeakingFrame(), *[c.audio()] * 3)
        await c.until(lambda: c.strategy._vad_user_speaking)
        await c.send(made_before)
        await c.until(lambda: FIRST in (c.strategy._text, c.strategy._said_before))
        await c.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), c.audio())
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await c.until(lambda: not c.analyzer.analyzing.is_set())
        await asyncio.sleep(0.1)  # the STT is still working on the last words
        assert c.llm.contexts == []  # old code: answered on the first sentence alone
        await c.send(TranscriptionFrame(LAST, "user", time_now_iso8601()))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert len(c.llm.contexts) == 1
        assert user_messages(c.context) == [f"{FIRST} {LAST}"]


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "1"])
@pytest.mark.parametrize("name", ["late_transcript_s", "no_words_s"])
def test_a_bad_wait_is_refused(name, bad):
    with pytest.raises(ValueError, match=name):
        FreshTranscriptTurnStopStrategy(turn_analyzer=object(), **{name: bad})


async def _a_cough(c: Call, verdict) -> asyncio.Event:
    """A stretch of voice with no words, judged ``verdict``; set when the turn stops."""
    stopped = asyncio.Event()

    async def on_stopped(*_: object) -> None:
        stopped.set()

    c.strategy.add_event_handler("on_user_turn_stopped", on_stopped)
    await c.speak(None)
    await c.until(lambda: c.analyzer.analyzing.is_set())
    c.analyzer.answer(verdict)
    return stopped


@pytest.mark.parametrize("verdict", [COMPLETE, INCOMPLETE])
@pytest.mark.parametrize("strategy", [FreshTranscriptTurnStopStrategy, SpeculativeTurnStopStrategy])
async def test_a_turn_with_no_words_ends_empty_after_no_words_s(strategy, verdict):
    # A cough: the strategy ends the turn itself (the harness's watchdog is 30 s), so
    # the pipeline's watchdog can be a long safety net that does not race the VAD.
    quick = functools.partial(strategy, no_words_s=0.3)
    async with call(strategy_cls=quick) as c:
        stopped = await _a_cough(c, verdict)
        await asyncio.wait_for(stopped.wait(), 2.0)
        # An empty turn, as the watchdog's: no user words (pipecat may ask to repeat).
        assert user_messages(c.context) == []


async def test_without_no_words_s_an_empty_turn_is_left_to_the_watchdog():
    off = functools.partial(FreshTranscriptTurnStopStrategy, no_words_s=None)
    async with call(strategy_cls=off) as c:
        stopped = await _a_cough(c, COMPLETE)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stopped.wait(), 0.8)


async def test_words_or_voice_before_no_words_s_keep_an_empty_turn_open():
    quick = functools.partial(FreshTranscriptTurnStopStrategy, no_words_s=0.3)
    async with call(strategy_cls=quick) as c:
        stopped = await _a_cough(c, INCOMPLETE)
        await c.until(lambda: not c.analyzer.analyzing.is_set())
        # The user goes on before the wait is over: the turn is not ended empty.
        await c.send(VADUserStartedSpeakingFrame(), *[c.audio()] * 3)
        await asyncio.sleep(0.6)
        assert not stopped.is_set()
        await c.send(VADUserStoppedSpeakingFrame(stop_secs=0.2), c.audio())
        await c.until(lambda: c.analyzer.analyzing.is_set())
        c.analyzer.answer(COMPLETE)
        await c.send(TranscriptionFrame(LAST, "user", time_now_iso8601()))
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert user_messages(c.context) == [LAST]
