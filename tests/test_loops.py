"""A streamed reply that says one of its sentences again stops there."""

from __future__ import annotations

import pytest

from pipecat_tandem.policy.loops import SentenceLoopCutter


def _stream(text: str, size: int = 3) -> tuple[str, SentenceLoopCutter]:
    """Feed ``text`` in pieces of ``size`` characters (tokens cut words anywhere)."""
    loops = SentenceLoopCutter()
    spoken = "".join(loops.feed(text[i : i + size]) for i in range(0, len(text), size))
    return spoken + loops.finish(), loops


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_a_loop_stops_at_its_first_repeat(size):
    # Seen in pipecat's deferred-delivery eval, from the embedded 0.5B.
    looped = "O-I-C I've changed my mind. " + "I've changed my mind. " * 6
    spoken, loops = _stream(looped, size)
    assert spoken == "O-I-C I've changed my mind. I've changed my mind."
    assert loops.cut


def test_a_repeat_at_the_very_end_is_cut_too():
    spoken, loops = _stream("The sea is blue. The sea is blue.")
    assert spoken == "The sea is blue."
    assert loops.cut


def test_a_repeated_long_sentence_is_cut_and_nothing_after_it_said():
    story = (
        "Fluffy had a curious mind. Fluffy, a sea turtle, was born on a small island. "
        "Fluffy, a sea turtle, was born on a small island. And then it swam away."
    )
    spoken, loops = _stream(story)
    assert spoken == "Fluffy had a curious mind. Fluffy, a sea turtle, was born on a small island."
    assert loops.cut


@pytest.mark.parametrize(
    "reply",
    [
        "The capital of Italy is Rome. The capital of Germany is Berlin.",
        "Hello. Hello. Hello.",  # asked to say it three times
        "Knock knock. Who's there? Knock knock. Who's there?",  # short sentences
        "Why did the tomato turn red? Because it saw the salad dressing!",
        "It is 3.5 km away. It is 3.5 km away from the station, to be exact.",
        "Sure, here's one: why did the chicken cross the road",  # no end mark
        "",
    ],
)
def test_replies_without_a_loop_are_said_whole(reply):
    for size in (1, 4, 1000):
        spoken, loops = _stream(reply, size)
        assert spoken == reply
        assert not loops.cut


def test_text_is_released_as_it_comes_unless_it_could_be_a_repeat():
    loops = SentenceLoopCutter()
    assert loops.feed("The sea is ") == "The sea is "  # nothing said before: no wait
    assert loops.feed("blue. ") == "blue."
    assert loops.feed("The sea ") == ""  # could be "The sea is blue." again
    assert loops.feed("turtle") == " The sea turtle"  # it differs: all of it at once
    assert loops.feed(" swims.") == " swims."
    assert loops.finish() == ""
    assert not loops.cut


def test_a_word_cut_mid_token_is_held_while_it_may_repeat():
    loops = SentenceLoopCutter()
    loops.feed("I changed my mind. ")
    assert loops.feed("I chan") == ""
    assert loops.feed("ged my mind.") == ""  # its end: once a space shows "." is no decimal
    assert loops.feed(" And") == ""
    assert loops.cut
    assert loops.feed("More.") == "" and loops.finish() == ""


def test_a_held_unfinished_sentence_is_said_at_the_end():
    loops = SentenceLoopCutter()
    assert loops.feed("I changed my mind. I changed") == "I changed my mind."
    assert loops.finish() == " I changed"


def test_min_words_is_checked():
    with pytest.raises(ValueError, match="min_words"):
        SentenceLoopCutter(min_words=0)
    loops = SentenceLoopCutter(min_words=1)
    assert loops.feed("Hello. Hello. ") == "Hello." and loops.cut
