#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A reply to a request for a pastime that gives none of it. No I/O.

Asked for a joke, a story, a riddle (:func:`~pipecat_tandem.policy.topic.pastime_asked`),
the embedded 0.5B sometimes says something about it instead of giving it. All three
kinds below came from pipecat's deferred-delivery eval, where the caller's "a joke"
reaches the bot as "they joke", "it a joke" or "Tell me, a joke":

* it defines the pastime (:func:`defines`): "A joke is a short, funny, or amusing
  story ..." to "Tell me, a joke instead.", 14 of 16 samples on that context, after
  a story it had told as a definition ("A sea turtle is a marine creature ...");
* it says the request back and nothing else (:func:`echoes`): "Oh, I see. I'll
  change my mind and joke instead." to "I've changed my mind. Tell me they joke
  instead.", 10 of 16 samples;
* its first sentence says back the user's other words before it goes elsewhere
  (:func:`parrots`): "Oh, I see, I've changed my mind. I've been looking for a sea
  turtle in San Francisco for a long time.";
* it offers another pastime (:func:`offers_other`): "Sure, here's a short story
  about a sea turtle: ..." to "Tell me they joke instead.", 8 of 48 samples with
  the story the user had cut short left out of its view.

On the same contexts the 1.5B told a joke in 8 of 8, 7 of 8 and 8 of 8 samples, so
:class:`~pipecat_tandem.policy.refusals.RefusalSniffer` takes such a reply as a
refusal and it gets the second opinion. Asked for a pastime, a reply is held until
its first word of its own ("did" in "Sure, here's one: why did ..."): about five
words of a joke.
"""

from __future__ import annotations

import re

from pipecat_tandem.background.jobs import content_words
from pipecat_tandem.policy.topic import PASTIME_WORDS, singular


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, apostrophes straightened ("i'm", "joke")."""
    return re.findall(r"[a-z0-9']+", text.replace("\u2019", "'").lower())


#: What follows "A joke is" in a definition ("A joke is a short, funny story ...").
_DEFINING = frozenset(
    "a an the something what when where usually often typically basically simply one any "
    "meant".split()
)
_ARTICLES = ("", "a ", "an ", "the ")


def _plural(thing: str) -> str:
    return thing[:-1] + "ies" if thing.endswith("y") else thing + "s"


def defines(opening: str, thing: str, *, ended: bool = True) -> str:
    """Whether a reply opens by defining ``thing`` (``yes``, ``no`` or ``maybe``).

    "A joke is a short, funny story ..." and "Jokes are what ..." define "joke";
    "Here's a joke: ..." and "A joke about turtles: ..." do not. ``maybe`` while
    the opening may still become one ("A joke is" so far).

    Args:
        opening: The reply so far, from its first word that is not an interjection.
        thing: What the user asked for, singular and lower case ("joke", "fun fact").
        ended: The reply's text has moved past its last word (or ended).
    """
    said = words(opening)
    text = " ".join(said)
    for head in (
        f"{a}{t} {v} " for a in _ARTICLES for t in (thing, _plural(thing)) for v in ("is", "are")
    ):
        if not text.startswith(head):
            if head.startswith(text) or (not ended and head.startswith(text + " ")):
                return "maybe"  # "A joke", "A joke is" so far
            continue
        at = len(head.split())
        if len(said) <= at:
            return "maybe"
        after = said[at]
        if not ended and len(said) == at + 1:  # it may still be growing ("a" -> "about")
            return "maybe" if any(d.startswith(after) for d in _DEFINING) else "no"
        return "yes" if after in _DEFINING else "no"
    return "no"


#: Words that promise a pastime without giving any of it ("Sure, here's one", "Okay,
#: I'll tell you a joke now"), beside the user's own words.
_PROMISING = frozenset(
    "sure here okay alright right course happy glad will can could would love absolutely yes "
    "yeah understand understood see got noted "
    "certainly definitely gladly now one another coming away good great fun funny little "
    "quick short new".split()
)


def _root(word: str) -> str:
    # "changed" is "change", "jokes" is "joke": five letters tell them apart enough here.
    return word[:5]


def _own_roots(asked: str) -> set[str]:
    """The roots a reply may say without giving anything: the request's and a promise's."""
    return {_root(w) for w in content_words(asked)} | {_root(w) for w in _PROMISING}


def echoes(reply: str, asked: str) -> bool:
    """Whether a reply has no word of its own beside the request's and a promise's.

    "Oh, I see. I'll change my mind and joke instead." to "I've changed my mind.
    Tell me they joke instead." (pipecat's deferred eval) and "Sure, I can tell you
    a joke!" give nothing of the joke asked for; "Why did the turtle cross the
    road?" does.

    Args:
        reply: The reply so far, from its first word that is not an interjection.
        asked: The user's words.
    """
    own = _own_roots(asked)
    return all(_root(w) in own for w in content_words(reply))


#: Words a pastime request is made of besides the pastime ("tell me a joke").
_ASKING = frozenset("tell give read recite sing share make write know hear".split())


def parrots(sentence: str, asked: str, thing: str) -> bool:
    """Whether a sentence only says back the user's other words (two or more).

    "Oh, I see, I've changed my mind." to "I've changed my mind. Tell me it a joke
    instead." (pipecat's deferred eval; the 0.5B went on "I've been looking for a
    sea turtle in San Francisco for a long time."); "Sure, I'll tell you a joke!"
    says back only the request itself, and is not.

    Args:
        sentence: A reply's first sentence, without interjections.
        asked: The user's words.
        thing: The pastime they ask for (:func:`~pipecat_tandem.policy.topic.pastime_asked`).
    """
    if not echoes(sentence, asked):
        return False
    other = {_root(w) for w in content_words(asked)}
    other -= {_root(w) for w in _ASKING | set(thing.split()) | {_plural(thing)}}
    return len({_root(w) for w in content_words(sentence)} & other) >= 2


def offers_other(reply: str, asked: str, thing: str) -> bool:
    """Whether a reply's first word of its own names a pastime other than the one asked.

    "Sure, here's a short story about a sea turtle: ..." to "Tell me they joke
    instead." names a story ("short" only promises); "Sure, here's a joke about a
    story" and "Why did the story ..." do not offer one.

    Args:
        reply: The reply so far, from its first word that is not an interjection.
        asked: The user's words.
        thing: The pastime they ask for (:func:`~pipecat_tandem.policy.topic.pastime_asked`).
    """
    own = _own_roots(asked)
    kept = content_words(reply)
    for word in words(reply):
        named = singular(word)
        if named in thing.split():
            return False  # the pastime asked for comes first
        if word not in kept or _root(word) in own:
            continue
        return named in PASTIME_WORDS
    return False
