"""The user's last words move the end of the turn where the voice alone misleads."""

from __future__ import annotations

import asyncio
import functools
import math

import pytest
from pipecat.frames.frames import TranscriptionFrame

from pipecat_tandem.turns import SpeculativeTurnStopStrategy
from pipecat_tandem.turns.fresh_transcript_turn_stop_strategy import (
    FreshTranscriptTurnStopStrategy,
)
from pipecat_tandem.turns.transcript_end import Ending, TurnEndByWords, ending
from tests.support.turn_call import COMPLETE, INCOMPLETE, Call, call, user_messages

# Short waits: the strategy runs on the loop's real clock, like the other turn tests.
WORDS = TurnEndByWords(open_quiet_s=0.6, finished_quiet_s=0.5)

STRATEGIES = [
    functools.partial(FreshTranscriptTurnStopStrategy, words=WORDS),
    functools.partial(SpeculativeTurnStopStrategy, words=WORDS, speculate=False),
    functools.partial(SpeculativeTurnStopStrategy, words=WORDS),
]


# -- the words ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Meanwhile.",  # tiny.en ends a lone opener with a period
        "by the way",
        "Anyway",
        "Actually,",
        "um",
        "Write me a report about the ocean,",
        "Tell me about the",
        "I want to go, and",
        "So I asked my",
        "It was longer than",
        "Well — ",
        "Let me think...",
    ],
)
def test_words_that_cannot_end_a_sentence_are_open(text):
    assert ending(text) is Ending.OPEN


@pytest.mark.parametrize(
    "text",
    ["And what do cows drink?", "what is the capital of Italy?", "Are you still there?", "Why?"],
)
def test_a_punctuated_question_is_finished(text):
    assert ending(text) is Ending.FINISHED


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "?!",
        "Tell me a joke.",
        "Stop.",
        "Actually, never mind.",  # an opener followed by what it opened
        "What are you waiting for",  # no question mark: the recognizer did not hear one
        "Who is it for.",  # a preposition can end a spoken sentence
        "Okay.",
        "The man in the red hat. The end.",
        "Meanwhile, what is the capital of Italy",
        "Work out 17% of 2300 and 40.",  # a number is a word
    ],
)
def test_other_words_say_nothing(text):
    assert ending(text) is Ending.UNSURE


def test_a_question_that_ends_on_an_open_word_is_open():
    # "What is the capital of the?" is a cut-off question, not a finished one.
    assert ending("What is the capital of the?") is Ending.OPEN


def test_the_word_lists_can_be_replaced():
    assert ending("Alors", openers={"alors"}) is Ending.OPEN
    assert ending("Meanwhile.", openers=set()) is Ending.UNSURE
    assert ending("the cat sat on the", open_last_words=set()) is Ending.UNSURE


def test_the_wait_by_verdict_and_words():
    words = TurnEndByWords(open_quiet_s=0.8, finished_quiet_s=0.7)
    assert words.wait_s("Meanwhile.", voice_says_complete=True, quiet_s=0.45) == pytest.approx(0.35)
    assert words.wait_s("Meanwhile.", voice_says_complete=True, quiet_s=2.0) == 0.0
    assert words.wait_s("Tell me a joke.", voice_says_complete=True, quiet_s=0.2) == 0.0
    assert words.wait_s("Is it?", voice_says_complete=False, quiet_s=0.2) == pytest.approx(0.5)
    assert words.wait_s("Is it?", voice_says_complete=False, quiet_s=3.0) == 0.0
    assert words.wait_s("So I went", voice_says_complete=False, quiet_s=0.2) is None
    assert words.wait_s("Meanwhile.", voice_says_complete=False, quiet_s=5.0) is None


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "1"])
@pytest.mark.parametrize("name", ["open_quiet_s", "finished_quiet_s"])
def test_a_bad_wait_is_refused(name, bad):
    with pytest.raises(ValueError, match=name):
        TurnEndByWords(**{name: bad})


# -- in the turn ------------------------------------------------------------------------


async def _stretch(c: Call, text: str, verdict) -> None:
    await c.speak(text)
    await c.until(lambda: c.analyzer.analyzing.is_set())
    c.analyzer.answer(verdict)
    await c.until(lambda: not c.analyzer.analyzing.is_set())


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_an_opener_the_voice_calls_complete_waits_for_the_sentence(strategy):
    # "Meanwhile," p 0.97 at the comma with the caller's voice: the turn ended, a
    # reply started and the question came as a second turn.
    async with call(strategy_cls=strategy) as c:
        await _stretch(c, "Meanwhile.", COMPLETE)
        await asyncio.sleep(0.15)  # the pause inside the sentence (0.2 s VAD + this)
        assert c.out.spoken() == ""
        await _stretch(c, "what is the capital of Italy?", COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: Meanwhile. what is the capital of Italy?"
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["Meanwhile. what is the capital of Italy?"]
        assert c.strategy.held_open_by_words == 0  # the voice came back first


async def test_without_the_words_the_opener_is_a_turn_of_its_own():
    # The same call with pipecat's decision alone: the defect the words fix.
    plain = functools.partial(FreshTranscriptTurnStopStrategy, words=None)
    async with call(strategy_cls=plain) as c:
        await _stretch(c, "Meanwhile.", COMPLETE)
        await c.until(lambda: len(c.llm.contexts) == 1)
        assert "capital" not in str(c.llm.contexts[0])


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_an_opener_alone_still_ends_the_turn_after_a_longer_quiet(strategy):
    async with call(strategy_cls=strategy) as c:
        loop = asyncio.get_running_loop()
        await _stretch(c, "Anyway.", COMPLETE)
        held_from = loop.time()
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        # Voice quiet for open_quiet_s (0.6 s), of which the VAD's 0.2 s had passed.
        assert loop.time() - held_from >= 0.3
        assert c.out.spoken() == "You said: Anyway."
        assert c.strategy.held_open_by_words == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_finished_question_ends_the_turn_though_the_voice_says_go_on(strategy):
    # "How many legs does a cat have?" p 0.04-0.24: the turn waited for the
    # analyzer's silence limit (this fake analyzer has none: it would wait forever).
    async with call(strategy_cls=strategy) as c:
        await _stretch(c, "And what do cows drink?", INCOMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: And what do cows drink?"
        assert c.strategy.ended_by_words == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_voice_after_a_finished_question_keeps_the_turn_open(strategy):
    async with call(strategy_cls=strategy) as c:
        await _stretch(c, "Can I ask you something?", INCOMPLETE)
        await asyncio.sleep(0.1)  # the user goes on before finished_quiet_s
        await _stretch(c, "What is the largest ocean?", COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken().startswith("You said: Can I ask you something?")
        await c.until(lambda: len(user_messages(c.context)) == 1)
        assert user_messages(c.context) == ["Can I ask you something? What is the largest ocean?"]


async def test_without_the_words_a_finished_question_waits_for_the_analyzer():
    plain = functools.partial(FreshTranscriptTurnStopStrategy, words=None)
    async with call(strategy_cls=plain) as c:
        await _stretch(c, "And what do cows drink?", INCOMPLETE)
        await asyncio.sleep(1.0)
        assert c.llm.contexts == []


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_unfinished_words_leave_an_incomplete_turn_open(strategy):
    async with call(strategy_cls=strategy) as c:
        await _stretch(c, "So on Monday I went", INCOMPLETE)
        await asyncio.sleep(1.0)
        assert c.out.spoken() == ""
        await _stretch(c, "to the market.", COMPLETE)
        await asyncio.wait_for(c.out.replies.wait(), 5.0)
        assert c.out.spoken() == "You said: So on Monday I went to the market."


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_call_ends_cleanly_while_the_words_hold_the_turn(strategy):
    async with call(strategy_cls=strategy) as c:
        await _stretch(c, "Meanwhile.", COMPLETE)
        await c.until(lambda: c.strategy._words_wait is not None)
    # The wait is cancelled with the call, not left running (pipecat answers the
    # turn's words at the end of the call, as without the words).
    assert c.strategy._words_wait is None


async def test_a_transcript_sent_without_a_vad_stop_is_left_to_pipecat():
    # No VAD stop: no voice end to count the quiet from; pipecat's own fallback runs.
    async with call(strategy_cls=functools.partial(FreshTranscriptTurnStopStrategy)) as c:
        await c.send(TranscriptionFrame("Meanwhile.", "user", "now", finalized=True))
        await asyncio.sleep(0.3)
        assert c.strategy._words_wait is None
