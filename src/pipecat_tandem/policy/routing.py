#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Fallback routing: does an utterance need the background model?

A 0.5B interaction model decides badly when to call ``delegate``: it invents tool
names, delegates greetings and answers arithmetic itself — wrongly. A
:class:`Router` makes the decision from the user's words instead, so delegation
works even with the smallest model. :class:`RuleRouter` is a transparent,
deterministic rule set (no model, microseconds per call):

* **arithmetic** — numbers with an operator or an arithmetic word
  ("17 percent of 2340", "square root of 7921", "1234 times 5678");
* **planning** — a request to plan, schedule or organize something;
* **look-up** — searching, finding, current facts (news, weather, prices,
  opening hours, the time or date), conversions;
* **careful work** — compare, analyze, explain why, write code or an email,
  summarize, step-by-step reasoning.

Social talk (greetings, thanks, feelings, questions about the assistant,
jokes, goodbyes, acknowledgements) wins over a weak signal, and anything else
stays with the interaction model. Empty, garbage or oversized input never
needs the background.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Utterances longer than this are not routed (a paste, not a spoken turn).
MAX_UTTERANCE_CHARS = 2_000
#: The task handed to the background is cut to this length.
MAX_TASK_CHARS = 500


@dataclass(frozen=True)
class RouteDecision:
    """Where an utterance should be answered.

    Parameters:
        needs_background: True if the background model should handle it.
        task: The task for the background (the cleaned utterance), or "".
        reason: A short machine-friendly reason ("arithmetic", "chit-chat", ...).
    """

    needs_background: bool
    task: str
    reason: str


@runtime_checkable
class Router(Protocol):
    """Decides whether an utterance needs the background model."""

    def route(self, utterance: str) -> RouteDecision:
        """Route one user utterance; never raises on bad input."""
        ...


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


_NUMBER = (
    r"(?:\d[\d,]*(?:\.\d+)?|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve|(?:thir|four|fif|six|seven|eigh|nine)teen|(?:twen|thir|for|fif|six|seven|eigh|nine)ty|"
    r"hundred|thousand|million)"
)

_ARITHMETIC = _rx(
    r"\d\s*[-+*/×÷^x]\s*\d",
    rf"{_NUMBER}\s+(?:times|plus|minus|multiplied by|divided by|over|to the power of)\b",
    rf"{_NUMBER}\s+(?:squared|cubed)\b",
    rf"\b(?:percent|per cent|%)\s+of\s+{_NUMBER}",
    r"\d\s*%",
    r"\b(?:square|cube)\s+root\b",
    r"\b(?:calculate|compute|work out|add up|sum of|product of|average of|factorial)\b",
    rf"\bhow much is\s+{_NUMBER}",
    rf"\b(?:what(?:'s| is)|whats)\s+{_NUMBER}\s+(?:and|by|into)\b",
    r"\b(?:tip|interest|mortgage|split the bill|per month|per year)\b.*\d",
    # Word problems: a quantity asked about numbers given ("how far ... 80 km an hour").
    rf"\bhow (?:far|fast|long|much|many)\b.*\b{_NUMBER}\b.*\b(?:per|an? hour|each|for)\b",
    rf"\b(?:split|share|divide)\b.*\b{_NUMBER}\b.*\b(?:between|among|by|ways)\b",
)

_UNIT_WORDS = (
    r"(?:miles?|kilomet(?:er|re)s?|km|met(?:er|re)s?|centimet(?:er|re)s?|cm|inch(?:es)?|feet|foot|"
    r"yards?|pounds?|lbs?|ounces?|oz|grams?|kilos?|kilograms?|kg|litres?|liters?|gallons?|"
    r"pints?|cups?|fahrenheit|celsius|kelvin|seconds?|minutes?|hours?|days?|weeks?|months?|years?)"
)

# "How many days are in a week?": one step of an everyday unit ladder is a fact a
# small model knows; sending it to the background only makes the caller wait.
_ONE_STEP = re.compile(
    rf"\bhow many ({_UNIT_WORDS}) (?:are )?(?:there )?in (?:a|an|one) ({_UNIT_WORDS})\b"
    r"(?!\s*(?:and|\+|plus|point|\d))",
    re.IGNORECASE,
)
_UNIT_SPELLING = {"feet": "foot", "inches": "inch", "kilo": "kilogram"}
_EVERYDAY_STEPS = frozenset(
    {
        ("second", "minute"), ("minute", "hour"), ("hour", "day"), ("day", "week"),
        ("month", "year"), ("week", "year"), ("day", "year"),
        ("inch", "foot"), ("foot", "yard"), ("millimeter", "centimeter"),
        ("centimeter", "meter"), ("meter", "kilometer"),
        ("gram", "kilogram"), ("ounce", "pound"),
    }
)  # fmt: skip


def _unit(word: str) -> str:
    w = word.lower().replace("metre", "meter")
    w = _UNIT_SPELLING.get(w, w)
    return w[:-1] if w.endswith("s") and w not in ("celsius",) else w


# "What is two plus two?": one operation on numbers up to twelve is mental
# arithmetic a small model gets right; a job for it only makes the caller wait.
_SMALL = r"(?:\d|1[0-2]|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_TIMES_TABLE = re.compile(
    rf"^(?:what(?:'s| is)|whats|how much is)?\s*{_SMALL}\s*"
    rf"(?:\+|-|\*|x|×|plus|minus|times|multiplied by|divided by)\s*{_SMALL}\s*[?.!]*$",
    re.IGNORECASE,
)


def _everyday_fact(clause: str) -> bool:
    m = _ONE_STEP.search(clause)
    return m is not None and (_unit(m.group(1)), _unit(m.group(2))) in _EVERYDAY_STEPS


_PLANNING = _rx(
    r"\bplan(?:ning)?\s+(?:a|an|my|our|the|for|out|some|this|next)\b",
    r"\b(?:help me|can you|could you|please)\s+(?:\w+\s+){0,2}"
    r"(?:plan|organi[sz]e|schedule|prepare)\b",
    r"\b(?:make|create|draw up|put together|build|design|give|write|need|want)\s+(?:me\s+)?"
    r"(?:a|an|my)\s+"
    r"(?:\w+[\s-]+){0,3}"
    r"(?:plan|schedule|itinerary|agenda|routine|budget|checklist|list|timeline|menu)\b",
    r"\bitinerary\b",
    r"\b(?:step[- ]by[- ]step|steps to)\b",
)

#: A question about the user's own records (a code, a booking, an appointment): not in
#: the conversation and not something a model knows, so only the user's notes can say.
#: ("What's the wifi password in my nose?" is how tiny.en heard "notes" in a call.)
PERSONAL_RECORD = _rx(
    r"\b(?:what|when|where|which|tell me|give me|read me|remind me of|find)\b[^.?!]*"
    r"\b(?:(?:my|our) (?:[\w'-]+\s+){0,3}(?:codes?|numbers?|pins?)|"
    r"(?:my|our|the) (?:[\w'-]+\s+){0,3}"
    r"(?:passwords?|passcodes?|(?:door|gate|alarm|access|entry) codes?|bookings?|reservations?|"
    r"(?:booking )?references?|appointments?))\b",
)

_LOOKUP = _rx(
    r"\b(?:look (?:up|into)|search(?: for)?|google|research|find (?:me|out|a|an|the|some)|"
    r"check (?:the|if|whether|what)|browse)\b",
    r"\b(?:latest|current|recent|today's|tonight's|tomorrow's|this week's|live)\s+"
    r"(?:\w+\s+){0,2}(?:news|weather|forecast|price|prices|score|scores|results|rate|rates)\b",
    r"\b(?:weather|forecast|temperature outside|stock price|exchange rate|opening hours|"
    r"open(?:ing)? times|business hours|showtimes|flight status)\b",
    r"\bwhat(?:'s| is)? the (?:time|date|day)\b",
    r"\bwhat time is it\b",
    r"\bwhat day (?:is|was|will)\b",
    r"\bhow many (?:days|weeks|months|hours|minutes) (?:until|till|since|between|are there)\b",
    r"\bconvert\b",
    r"\b(?:is it|will it|going to)\s+(?:rain|snow|be (?:sunny|cold|hot|windy))\b",
    r"\bwho won\b",
    r"\bhow many \w+ (?:in|are in) (?:a|an|one|\d)",
    # Units and conversions: "how many ounces are in two pounds", "72 degrees F in C".
    rf"\bhow many {_UNIT_WORDS}\b.*\b{_UNIT_WORDS}\b",
    rf"\b{_NUMBER}\s+(?:degrees\s+)?{_UNIT_WORDS}\b.*\b(?:in|to|into)\s+{_UNIT_WORDS}\b",
    # Dates and durations.
    r"\bday of the week\b",
    r"\bhow long (?:is it |will it take )?(?:from|between|until|till|since)\b",
    r"\b\d{1,2}:\d{2}\b.*\b\d{1,2}:\d{2}\b",
    # The user's document folder.
    r"\b(?:in|from|according to|does|did) (?:my|the) (?:\w+\s+){0,2}"
    r"(?:documents?|docs|notes|files?|folder|handbook|guide|manual|policy|contract|report)\b",
    r"\blook (?:in|through) (?:my|the)\b",
    r"\bcheck (?:my|our) \w+",
    PERSONAL_RECORD.pattern,
    r"\b(?:near me|nearby|around here|close to)\b",
)

#: What a writing request asks for ("write me a short report", "draft an email").
_WRITING = (
    r"(?:email|letter|essay|report|program|script|function|code|poem|story|speech|cover letter|"
    r"summary|article|note)"
)
_ANOTHER_ONE = re.compile(
    r"\b(?:write|draft|compose)\s+(?:me\s+|us\s+)?(?P<one>another(?: one)?|one more|a second one|"
    r"a second|one)\s+(?=(?:about|on|for)\b)",
    re.IGNORECASE,
)
_WRITTEN = re.compile(
    rf"\b(?:write|draft|compose)\s+(?:me\s+|us\s+)?(?:a|an|the|some)\s+(?:[\w-]+\s+){{0,2}}"
    rf"(?P<what>{_WRITING})\b",
    re.IGNORECASE,
)


def resolve_follow_up(task: str, earlier: list[str]) -> str:
    """Say what "one" is in a follow-up request, from the requests before it.

    "Also write one about volcanoes" after "Write me a report about sea turtles"
    becomes "Also write a report about volcanoes": the background sees the task
    alone, and only the named thing tells it (and its tool choice, see
    ``background.steps.required_tools``) that a report is wanted.

    Args:
        task: The new request.
        earlier: Earlier requests, newest first.

    Returns:
        The task with "one" named, or ``task`` unchanged when it has no such "one"
        or no earlier request says what was written.
    """
    match = _ANOTHER_ONE.search(task)
    if match is None:
        return task
    for previous in earlier:
        written = _WRITTEN.search(previous)
        if written is not None:
            what = written["what"].lower()
            article = "an" if what[0] in "aeiou" else "a"
            rest = task[match.end("one") :].lstrip()
            return f"{task[: match.start('one')]}{article} {what} {rest}"
    return task


_CAREFUL = _rx(
    r"\b(?:compare|comparison|analy[sz]e|evaluate|pros and cons|trade-?offs?)\b",
    r"\bexplain (?:why|how|in detail)\b",
    rf"\b(?:write|draft|compose)\s+(?:me\s+)?(?:a|an|the|some)\s+(?:\w+\s+){{0,2}}{_WRITING}\b",
    # "Also write one about volcanoes": another of the same, asked as a follow-up
    # (resolve_follow_up names what "one" is from the jobs before it).
    _ANOTHER_ONE.pattern,
    r"\b(?:debug|refactor|prove|derive|solve)\b",
    r"\bsummari[sz]e\b",
    r"\b(?:figure out|think (?:through|about)|reason about|recommend(?:ation)?s?)\b",
    r"\btranslate\b",
)

# A clause matching this anywhere is social talk, whatever else it contains
# ("thanks for planning my trip", "I'm tired of planning").
_SOCIAL = _rx(
    r"\bhow are you\b|\bhow's it going\b|\bwhat's up\b|\bhow have you been\b",
    r"^(?:thanks|thank you|cheers|much appreciated)\b",
    r"\b(?:i'?m|i am|feeling|i feel)\s+(?:\w+\s+){0,2}"
    r"(?:tired|sad|happy|bored|great|fine|good|okay|ok|stressed|excited|sleepy|hungry|sick|lonely)\b",
    r"\b(?:your name|who are you|what are you|are you (?:a )?(?:robot|human|real|an ai))\b",
    r"\b(?:tell|give) me (?:a |an |another )?(?:\w+ )?(?:joke|riddle|pun|fun fact)s?\b",
    r"\bsay something funny\b|\bmake me laugh\b",
    r"^(?:bye|goodbye|see you|talk (?:to you )?later|good night)\b",
    r"^(?:that|this|it)(?:'s| is| was| sounds| looks| seems)\b",
    r"\b(?:never ?mind|forget it|not now)\b",
)

# "I'm planning a trip to Italy" tells the assistant something; it asks for nothing. The
# statement is dropped before the clause is routed, so what the rest asks for still counts
# ("... and need an itinerary", "I'm planning to compare two phones").
_STATEMENT = re.compile(
    r"\b(?:i['’]?m|i am|we['’]?re|we are|i was|we were|(?:i|we)['’]?ve been|(?:i|we) have been)"
    r"\s+(?:\w+\s+)?planning\b",
    re.IGNORECASE,
)

# Openers are dropped from the start of a clause before routing the rest
# ("hey, can you look up ...", "okay so plan a trip").
_OPENER = re.compile(
    r"^(?:(?:hi|hello|hey|yo|hiya|howdy|greetings|good (?:morning|afternoon|evening)|ok|okay|"
    r"sure|yes|yeah|yep|no|nope|great|cool|nice|awesome|alright|right|so|well|um+|uh+|"
    r"please|there)\b[\s,!.]*)+",
    re.IGNORECASE,
)

# Clause boundaries: sentence ends, and commas/semicolons not inside a number.
_CLAUSES = re.compile(r"[.!?;]+\s*|,\s+(?=\D)")

_WORD = re.compile(r"[A-Za-z]{2,}")


class RuleRouter:
    """Routes utterances with transparent keyword and pattern rules.

    Example::

        router = RuleRouter()
        router.route("what's 17 percent of 2340")
        # RouteDecision(needs_background=True, task="what's 17 percent of 2340",
        #               reason="arithmetic")
    """

    def __init__(self, *, max_chars: int = MAX_UTTERANCE_CHARS) -> None:
        """Create a router.

        Args:
            max_chars: Longer utterances are not routed (``reason="oversized"``).

        Raises:
            ValueError: ``max_chars`` is not positive.
        """
        if max_chars < 1:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        self._max_chars = max_chars

    def route(self, utterance: str) -> RouteDecision:
        """Decide whether ``utterance`` needs the background model.

        Args:
            utterance: The user's words (a transcript).

        Returns:
            The decision; bad input (not a string, empty, no words, oversized)
            gives ``needs_background=False`` with the reason.
        """
        if not isinstance(utterance, str):
            return RouteDecision(False, "", "not text")
        text = " ".join(utterance.split())
        if not text:
            return RouteDecision(False, "", "empty")
        if len(text) > self._max_chars:
            return RouteDecision(False, "", "oversized")
        if not _WORD.search(text):
            return RouteDecision(False, "", "no words")
        task = text[:MAX_TASK_CHARS]
        # Arithmetic is specific enough to win anywhere in the utterance, unless every
        # clause with numbers is one a small model knows by heart.
        clauses = [_OPENER.sub("", c.strip()).strip() for c in _CLAUSES.split(text)]
        if _ARITHMETIC.search(text) and not all(
            _TIMES_TABLE.match(c) for c in clauses if _ARITHMETIC.search(c)
        ):
            return RouteDecision(True, task, "arithmetic")
        social = False
        for raw in _CLAUSES.split(text):
            clause = _OPENER.sub("", raw.strip()).strip()
            if not clause:
                continue
            if _SOCIAL.search(clause):
                social = True
                continue
            if _everyday_fact(clause):
                continue
            clause = _STATEMENT.sub(" ", clause)
            for pattern, reason in (
                (_PLANNING, "planning"),
                (_LOOKUP, "lookup"),
                (_CAREFUL, "reasoning"),
            ):
                if pattern.search(clause):
                    return RouteDecision(True, task, reason)
        return RouteDecision(False, "", "chit-chat" if social else "no signal")
