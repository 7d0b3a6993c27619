"""A reply that gives none of the pastime asked for (policy/pastimes.py)."""

from __future__ import annotations

import pytest

from pipecat_tandem.policy.pastimes import defines, echoes, parrots

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
