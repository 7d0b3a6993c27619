"""A reply that gives none of the pastime asked for (policy/pastimes.py)."""

from __future__ import annotations

import pytest

from pipecat_tandem.policy.pastimes import defines, echoes, offers_other, parrots
from pipecat_tandem.policy.refusals import RefusalSniffer, RefusalVerdict
from pipecat_tandem.policy.topic import PASTIME_WORDS, pastime_asked

#: The 0.5B to "Tell me, a joke instead." after a story it told as a definition.
DEFINITION = "A joke is a short, funny, or amusing story that is meant to be funny and not mean."
JOKE = "Sure, here's a joke: why was the sea turtle sad? It had no shell!"
MISHEARD = "Actually... I've changed my mind. Tell me it a joke instead."


@pytest.mark.parametrize(
    ("opening", "thing", "ended", "verdict"),
    [
        (DEFINITION, "joke", True, "yes"),
        ("Jokes are what people tell to make others laugh.", "joke", True, "yes"),
        ("A story is something that happened.", "story", True, "yes"),
        ("Stories are often told at night.", "story", True, "yes"),
        ("A fun fact is a fact that is fun.", "fun fact", True, "yes"),
        # Given, not defined.
        (JOKE, "joke", True, "no"),
        ("A joke about turtles: why did the turtle cross the road?", "joke", True, "no"),
        ("A joke is coming right up! Why did the turtle cross the road?", "joke", True, "no"),
        ("Why did the turtle cross the road?", "joke", True, "no"),
        ("A riddle is a puzzle.", "joke", True, "no"),  # not what was asked for
        # Still open: it may become one.
        ("A", "joke", False, "maybe"),
        ("A jo", "joke", False, "maybe"),
        ("A joke is", "joke", True, "maybe"),
        ("A joke is a", "joke", False, "maybe"),  # "a" may yet be "about"
        ("A joke is so", "joke", False, "maybe"),  # "something"?
        ("A joke is co", "joke", False, "no"),
        ("The capital", "joke", True, "no"),
    ],
)
def test_defines(opening, thing, ended, verdict):
    assert defines(opening, thing, ended=ended) == verdict


@pytest.mark.parametrize(
    ("reply", "asked", "echo"),
    [
        # The 0.5B to the misheard joke line in pipecat's deferred eval.
        (
            "I'll change my mind and joke instead.",
            "I've changed my mind. Tell me they joke instead.",
            True,
        ),
        ("Sure, I can tell you a joke!", "Tell me a joke.", True),
        ("Okay, here's one.", "Tell me a joke.", True),
        ("Why did the turtle cross the road?", "Tell me a joke.", False),
        ("Sure, here's a joke about turtles.", "Tell me a joke.", False),
        ("Sure, here's a joke about turtles.", "Tell me a joke about turtles.", True),
    ],
)
def test_echoes(reply, asked, echo):
    assert echoes(reply, asked) is echo


@pytest.mark.parametrize(
    ("sentence", "parroted"),
    [
        ("I've changed my mind.", True),  # the 0.5B, in pipecat's deferred eval
        ("I'll change my mind and joke instead.", True),
        ("Sure, I'll tell you a joke!", False),  # the request itself: a promise
        ("Sure!", False),
        ("I changed my mind too!", False),  # a word of its own
    ],
)
def test_parrots(sentence, parroted):
    assert parrots(sentence, MISHEARD, "joke") is parroted


@pytest.mark.parametrize(
    ("reply", "asked", "other"),
    [
        # The 0.5B to the misheard joke line, not shown the story the user cut short.
        ("Sure, here's a short story about a sea turtle:", MISHEARD, True),
        ("Here is a funny poem about the sea.", "Tell me a joke.", True),
        ("Okay! Stories are what I like best.", "Tell me a joke.", True),
        # The pastime asked for comes first, or a word of the reply's own.
        ("Sure, here's a joke about a story.", "Tell me a joke.", False),
        ("Why did the story end early?", "Tell me a joke.", False),
        ("Sure, jokes!", "Tell me a joke.", False),
        ("Here is a fun fact about turtles.", "Tell me a fun fact.", False),
        # A story asked for, a story about a song given.
        ("Once upon a time a song was lost.", "Tell me a story.", False),
        ("Sure!", "Tell me a joke.", False),
        ("", "Tell me a joke.", False),
    ],
)
def test_offers_other(reply, asked, other):
    thing = pastime_asked(asked)
    assert thing is not None
    assert offers_other(reply, asked, thing) is other


@pytest.mark.parametrize("word", sorted(PASTIME_WORDS))
def test_every_pastime_word_is_one_a_request_names(word):
    lead = {"fact": "fun ", "twister": "tongue "}.get(word, "")
    thing = pastime_asked(f"Tell me a {lead}{word}.")
    assert thing is not None and thing.split()[-1] == word


def test_another_pastime_is_held_back_as_not_followed_streamed_word_by_word():
    sniffer, spoken = RefusalSniffer(asked=MISHEARD), ""
    for word in "Sure, here's a short story about a sea turtle: Luna was born".split():
        spoken += sniffer.feed(word + " ")
    assert spoken == "" and sniffer.verdict is RefusalVerdict.REFUSAL
    sniffer = RefusalSniffer(asked=MISHEARD)
    for word in "Sure, here's a short joke: why did the story end?".split():
        spoken += sniffer.feed(word + " ")
    assert sniffer.verdict is RefusalVerdict.TEXT
    assert spoken.strip() == "Sure, here's a short joke: why did the story end?"
