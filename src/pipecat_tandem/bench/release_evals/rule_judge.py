#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A rule-based judge for the release scenarios' criteria (deterministic, instant).

The scenarios run here judge ten fixed criteria, each about something a rule can
check in the transcribed reply: a greeting, a joke, "75 degrees", a city name, a
report that is or is not delivered. :class:`RuleJudgeClassifier` answers the
harness's reply questions for exactly those criteria and refuses any other
(``ClassifierError``: the harness fails the turn rather than guess).

Outcomes follow the harness: ``continue`` for a reply that only holds the floor
("let me check", "on it", "Sure, here's a joke:") or is on its way to a ``yes``
(:data:`PENDING`: the joke told, the weather still to come), else ``yes`` or
``no``. Its accuracy is measured on the same labeled verdicts as the model judge
(``tests/data/release_evals/judge_labels.jsonl``); the rules were written after
those labels, by the same person, so that measure is optimistic. The replies
heard in real eval runs, labeled blind by a second labeler
(``judge_heard.jsonl``), are the measure its author did not label: 189 of the
first 194 agreed; the two rules behind the five misses were mended (a reading
of 75 must be said of the weather; a reply may open on a joke's punchline),
and the 32 replies of later runs, labeled after that, all agreed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pipecat.classifiers.base_classifier import ClassifierError

from pipecat_tandem.bench.release_evals.judge import LabelClassifier, split_criterion


def _has(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern, re.I)
    return lambda text: bool(compiled.search(text))


_HOLDING = _has(
    r"^\W*(sure|ok(ay)?|alright|on it|one moment|just a (moment|sec)|let me|i'?ll|"
    r"i am|i'm)\b[^.!?]*(check|look|think|work|get back|find|moment|on it)[^.!?]*[.!?]?\s*$"
)
#: A lead-in that announces what comes next and says nothing else ("Sure, here's a
#: joke about a sea turtle:"): the harness hears it as a response of its own when the
#: bot pauses before the punchline's sentence, so it holds the floor like "let me check".
_LEAD_IN = _has(
    r"^\W*((sure|ok(ay)?|alright|of course|absolutely)\W+)?here'?s (a|an|one|the|my|another)\b"
    # Up to the colon: "Sure, here's a fun fact: The average ..." has told it.
    r"[^.!?:]*[.!?:]?\s*$"
)
_GREETING = _has(
    r"\b(hello|hi|hey|welcome|greetings|good (morning|afternoon|evening)|how can i|"
    r"what can i|help you|assist you|i'?m your|my name is)\b|\?\s*$"
)
#: A joke told: a riddle's setup or a joke's announced telling. Not the word "joke"
#: alone: "A joke is a short, funny thought that can be easily shared." (the 0.5B,
#: asked for one) talks about jokes and tells none.
_JOKE_FORM = re.compile(
    r"\b(why (did|do|does|don'?t|was|is|are|can'?t|couldn'?t|won'?t)|what do you call|"
    r"knock,? knock|what did the|what'?s the difference|how (do|does) you)\b"
    r"|\bhere'?s (a|one|another)\b[^.!?:]*[.!:]\s*\w"
    # A reply that opens on the punchline: its setup was said before it and went to
    # the conversation ("because it wanted to get to the other side. The current
    # temperature ..."; the caller's transcriber had lost "Why did the sea turtle
    # cross the road?" in one deferred run, and the blind second labeler said yes).
    r"|^\W*because\b",
    re.IGNORECASE,
)
_JOKE = _has(_JOKE_FORM.pattern)
_READING = re.compile(r"\b(75|seventy[- ]five)\b", re.I)
_REPORT_TURTLES = _has(r"(report|summary)[^.]*sea turtles?|sea turtles?[^.]*(report|summary)")
_TURTLE_CONTENT = _has(r"\bsea turtles? (are|live|nest|migrate|can|have)\b")
_CANCELLED = _has(r"\b(cancel+ed|stopped|won'?t|will not|no longer|dropped|as you asked)\b")
_VOLCANO_READY = _has(
    r"volcano\w*[^.]*(finished|ready|done|complete)|(finished|ready|done|complete)[^.]*volcano"
)
_TURTLE_READY = _has(r"turtle\w*[^.]*(finished|ready|done|complete)")
_PARIS_STORY = _has(r"\b(paris|seine|revolution|middle ages|notre[- ]dame|louvre)\b")


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
#: What makes "75" a statement of the weather: the city, the weather or the
#: temperature named, or "it's" / "it is" ("It's 75 degrees and sunny.").
_WEATHER_WORDS = re.compile(
    r"\b(san francisco|weather|temperature|forecast|sunny|cloudy|foggy|rain\w*|outside|"
    r"it'?s|it is|currently|right now|today)\b",
    re.I,
)


def _weather_reading(text: str) -> int | None:
    """Where ``text`` states 75 degrees as the weather, else ``None``.

    The reading counts in a sentence that names the weather, right after one that
    does, or as a sentence of its own ("Seventy-five degrees and clear."). Not
    "The user is looking at their height. which is 75 degrees Fahrenheit." (the
    0.5B garbling the result in three deferred runs, rule-judged yes at the time;
    the blind second labeler said no).
    """
    previous = ""
    for sentence in _SENTENCE.finditer(text):
        said = sentence.group(0)
        reading = _READING.search(said)
        if reading and (
            _WEATHER_WORDS.search(said)
            or _WEATHER_WORDS.search(previous)
            or not said[: reading.start()].strip(" ,")
        ):
            return sentence.start() + reading.start()
        previous = said
    return None


def _joke_then_weather(text: str) -> bool:
    joke = _JOKE_FORM.search(text)
    weather = _weather_reading(text)
    return bool(joke and weather is not None and joke.start() < weather)


#: Criterion → what a reply that is on its way to ``yes`` looks like (``continue``).
PENDING: dict[str, Callable[[str], bool]] = {
    # The joke first, the weather in a later response: pipecat's audio harness judges
    # each stretch of the bot's speech as it ends, so the joke alone is not yet a "no".
    "first, tells a joke, then informs that the weather": lambda t: bool(
        _JOKE(t) and not _READING.search(t)
    ),
}

#: Criterion (as the scenarios write it) → the rule deciding ``yes``.
RULES: dict[str, Callable[[str], bool]] = {
    # The longer criterion first: it contains "tells a joke".
    "first, tells a joke, then informs that the weather": _joke_then_weather,
    "the bot opens the conversation in some way": _GREETING,
    "tells a joke": _JOKE,
    "informs that the weather in san francisco is 75 degrees": lambda t: (
        _weather_reading(t) is not None
    ),
    "does not deliver or summarize a report about sea turtles": lambda t: (
        not ((_REPORT_TURTLES(t) or _TURTLE_CONTENT(t) or _TURTLE_READY(t)) and not _CANCELLED(t))
    ),
    "says a report about volcanoes is finished or ready": _VOLCANO_READY,
    "the capital of germany is berlin": _has(r"\bberlin\b"),
    "acknowledges the user's message": _has(r"\b(alex|italy|italian)\b"),
    "recalls that the user's name is alex and the destination is italy": lambda t: bool(
        re.search(r"\balex\b", t, re.I) and re.search(r"\bital(y|ian)\b", t, re.I)
    ),
    "the capital of japan is tokyo": lambda t: bool(
        re.search(r"\btokyo\b", t, re.I) and not _PARIS_STORY(t)
    ),
}


def rule_for(criterion: str) -> Callable[[str], bool] | None:
    """The rule of a known criterion (matched by its opening words), else ``None``."""
    text = criterion.lower()
    for key, rule in RULES.items():
        if key in text:
            return rule
    return None


def verdict(criterion: str, reply: str, options: Sequence[str] = ("yes", "no", "continue")) -> str:
    """``yes``, ``no`` or ``continue`` for one reply.

    Raises:
        ClassifierError: The criterion is not one the rules know.
    """
    rule = rule_for(criterion)
    if rule is None:
        raise ClassifierError(f"the rule judge has no rule for {criterion[:80]!r}")
    if "continue" in options and _LEAD_IN(reply):
        return "continue"  # before the rule: "here's a joke" names a joke, tells none
    if rule(reply):
        return "yes"
    if "continue" in options and (_HOLDING(reply) or _pending(criterion, reply)):
        return "continue"
    return "no"


def _pending(criterion: str, reply: str) -> bool:
    text = criterion.lower()
    return any(key in text and rule(reply) for key, rule in PENDING.items())


class RuleJudgeClassifier(LabelClassifier):
    """The harness's judge on :data:`RULES` (reply questions only)."""

    async def _label(self, state: Any, instructions: Any, options: Mapping[str, Any]) -> str:
        if "continue" not in options and "yes" not in options:
            raise ClassifierError("the rule judge answers reply questions only")
        reply = state.get("latest_bot_reply") if isinstance(state, dict) else None
        if reply is None:
            raise ClassifierError("the rule judge judges replies, not calls or whole runs")
        _, criterion = split_criterion(str(instructions))
        return verdict(criterion, str(reply), list(options))


def rule_judge(config: Mapping[str, Any]) -> RuleJudgeClassifier:
    """The harness's ``judge.eval.factory`` for :class:`RuleJudgeClassifier`."""
    return RuleJudgeClassifier()
