#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What a spoken background answer must be, checked before anyone hears it.

A background result is read aloud (verbatim with a small interaction model), so
it must be an *answer*: a short sentence or two with the key fact first. It must
never be the model's plan ("To determine the number of minutes we can use..."),
a tool call or any JSON, code or markdown. These checks are pure functions used
by the background agent on its final answer and by the runner on whatever a
worker returns (a remote or user-supplied worker included).

Examples::

    unspeakable_reason('{"name": "dates", "arguments": {}}')   # -> "JSON or a tool call"
    unspeakable_reason("Step 1: convert days to hours.")        # -> "a plan"
    unspeakable_reason("Three and a half days is 5,040 minutes.")  # -> None
    carries_value("It is 5,040 minutes.", 5040)                # -> True
    miscopies("It is 7,006,625.", 7006652, known=[])           # -> True
    miscopies("Five factorial is 120.", 5, known=[Fraction(5)])  # -> False
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from fractions import Fraction

#: Spoken answers longer than this are cut at a sentence end (or a word).
MAX_ANSWER_WORDS = 30

_JSON_OR_CALL = re.compile(
    r"""[{}\[\]]|<\s*/?\s*tool_call|"\s*(name|arguments|parameters|tool|function)\s*"\s*:"""
    r"""|\b(function_call|tool_call|tool_calls)\b""",
    re.I,
)
_MARKDOWN = re.compile(
    r"```|\*\*|__|^\s{0,3}#{1,6}\s|^\s*[-*•]\s+\S|^\s*\d+[.)]\s+\S|\|\s*-{3}", re.M
)
_CODE = re.compile(r"\b(def|return|import|lambda|print)\b\s*[\w(]|=>|;\s*$|\w+\(\w+=", re.M)
# Phrases of reasoning out loud or of a plan, as these models write them when they
# narrate instead of answering. Matched at the start of a sentence.
_PLAN = re.compile(
    r"(^|[.!?]\s+)(step\s*\d|first,?\s+(we|i|let)|to (determine|find|calculate|compute|answer|"
    r"solve|work out)\b|we (can|need|will|should|must) (use|call|calculate|compute|convert|"
    r"first)|let'?s\b|let me\b|i (will|'ll|need to|can) (use|call|calculate|compute|check|"
    r"look)|here'?s (the|how)|using the \w+ (tool|function)|the (tool|function) \w+ )",
    re.I,
)
_TOOL_WORDS = re.compile(r"\b(calculator|convert_units|search_documents|look_at_camera)\b")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")


def unspeakable_reason(text: object) -> str | None:
    """Why ``text`` must not be spoken as an answer, or ``None`` when it may.

    Args:
        text: A candidate answer.

    Returns:
        A short reason ("empty", "JSON or a tool call", "markdown", "code",
        "a plan", "too long") or ``None``.
    """
    if not isinstance(text, str) or not re.search(r"[A-Za-z0-9]", text):
        return "empty"
    if _JSON_OR_CALL.search(text):
        return "JSON or a tool call"
    if _MARKDOWN.search(text):
        return "markdown"
    if _CODE.search(text):
        return "code"
    if _PLAN.search(text.strip()) or _TOOL_WORDS.search(text):
        return "a plan"
    if len(text.split()) > 3 * MAX_ANSWER_WORDS:
        return "too long"
    return None


#: "The user" as a person ("The user is looking at their height."), not a thing
#: ("the user manual", "the user's guide").
_THE_USER = re.compile(
    r"\bthe user(?:'s)?\b(?!'?s?\s+(?:manual|guide|interface|name|account|id|settings|agreement))",
    re.I,
)


def speaks_of_the_user(text: str) -> bool:
    """Whether an answer talks about the user instead of to them.

    The answer is said to the user, so "the user" is "you". The 1.5B wrote "The
    user is looking at the camera at a height of 75 degrees Fahrenheit." for a
    weather job whose follow-up was a misheard "Use Fahrenheit." ("You stare in
    height."): read aloud, the user hears themselves discussed. Not a reason to
    drop the answer (its facts may be right), only to ask once more.
    """
    return _THE_USER.search(text) is not None


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(?=\S)")
_INLINE_ITEM = re.compile(r"(?<=[.!?;,])\s+\d+[.)]\s+(?=[A-Za-z])")


def flatten_lists(text: str) -> str:
    """A list written as lines, read as one spoken sentence run ("tips" answers).

    Small models answer "give me three tips" with a numbered or bulleted list even
    when told not to. The items themselves are a fine answer; only the markup is
    not: markers and bold are dropped and the items joined with full stops. Text
    with no list is returned unchanged.

    Args:
        text: A candidate answer.

    Returns:
        The text with list lines joined into sentences and ``**``/``__`` removed.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not any(_LIST_ITEM.match(line) for line in lines) and "**" not in text:
        return text
    items = [_LIST_ITEM.sub("", line).replace("**", "").replace("__", "").strip() for line in lines]
    # "1. Prepare well. 2. Dress smartly." on one line: the later numbers go too.
    items = [_INLINE_ITEM.sub(" ", item) for item in items]
    return " ".join(i if i[-1] in ".!?:;," else i + "." for i in items if i)


_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
                "september", "october", "november", "december")  # fmt: skip
_ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


#: A task that asks for a weekday ("what day of the week is ...").
ASKS_WEEKDAY = re.compile(r"\b(day of the week|weekday|what day|which day)\b", re.I)


def date_problem(
    answer: str, iso_date: str, *, known: Iterable[str] = (), task: str = ""
) -> str | None:
    """Why ``answer`` misstates the date tool's ``iso_date``, or ``None`` when it agrees.

    The answer disagrees when it names another weekday and not the date's, names
    the date's month with another day of the month, writes a date in digits
    (which a voice reads out badly) that is not one of the task's own, or leaves
    out the weekday a task asks for ("what day of the week is ...").

    Args:
        answer: The model's answer.
        iso_date: The tool's date, ``YYYY-MM-DD``.
        known: Texts whose digit dates the answer may repeat (the task).
        task: The task, to tell whether it asks for the weekday.
    """
    low = answer.lower()
    year, month, day = (int(x) for x in iso_date.split("-"))
    weekday = _WEEKDAY_NAMES[date(year, month, day).weekday()]
    named = {w for w in _WEEKDAY_NAMES if re.search(rf"\b{w}\b", low)}
    if named and weekday not in named:
        return f"it names the wrong weekday (the tool says {weekday.capitalize()})"
    if not named and ASKS_WEEKDAY.search(task):
        return f"it does not say the weekday ({weekday.capitalize()})"
    month_name = _MONTH_NAMES[month - 1]
    if re.search(rf"\b{month_name}\b", low):
        pattern = (
            rf"\b(\d{{1,2}})(?:st|nd|rd|th)?(?: of)? {month_name}\b|\b{month_name} (\d{{1,2}})\b"
        )
        days = {int(a or b) for a, b in re.findall(pattern, low)}
        if days and day not in days:
            return f"it gives the wrong day (the tool says {day} {month_name.capitalize()})"
    allowed = {d for t in known for d in _ISO_DATE.findall(t)}
    if any(d not in allowed for d in _ISO_DATE.findall(answer)):
        return "it writes a date in digits; say it in words"
    return None


def shorten(text: str, max_words: int = MAX_ANSWER_WORDS) -> str:
    """Cut an answer to at most ``max_words`` words, at a sentence end when one fits.

    Args:
        text: The answer.
        max_words: Word budget.

    Returns:
        The whole text when it fits; else its longest run of whole sentences
        within the budget; else its first ``max_words`` words with a full stop.
    """
    words = text.split()
    if len(words) <= max_words:
        return " ".join(words)
    sentences = re.findall(r"[^.!?]+[.!?]+(?:\s|$)", text.strip())
    kept: list[str] = []
    for sentence in sentences:
        if len(" ".join([*kept, sentence]).split()) > max_words:
            break
        kept.append(sentence.strip())
    if kept:
        return " ".join(kept)
    return " ".join(words[:max_words]).rstrip(",;:") + "."


def _as_fraction(token: str) -> Fraction | None:
    try:
        return Fraction(token.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[Fraction]:
    """The numbers written in ``text`` as exact fractions ("5,040" → 5040, "2.5", "3/4")."""
    found = (_as_fraction(t) for t in _NUMBER.findall(text))
    return [n for n in found if n is not None]


def carries_value(answer: str, value: int | float | Fraction | str) -> bool:
    """Whether ``answer`` states ``value``, exactly or rounded the way people say it.

    An exact value must appear as written (commas allowed: "5,040"). A value with
    more decimals counts as carried when the answer gives it rounded to the digits
    it writes, with at least two significant digits ("3.14" for 3.14159, "1,235"
    for 1234.56, not "3").

    Args:
        answer: The spoken answer.
        value: The tool's value.
    """
    target = value if isinstance(value, Fraction) else _as_fraction(str(value))
    if target is None:
        return str(value).strip().lower() in answer.lower()
    for token in _NUMBER.findall(answer):
        number = _as_fraction(token)
        if number is None:
            continue
        if number == target:
            return True
        plain = token.replace(",", "").lstrip("-")
        if "/" in plain:
            continue
        decimals = len(plain.partition(".")[2])
        significant = len(plain.replace(".", "").lstrip("0"))
        if significant >= 2 and round(target, decimals) == number:
            return True
    return False


def _integer_digits(number: Fraction) -> str:
    return str(abs(number.numerator) // number.denominator)


def looks_miscopied(number: Fraction, value: Fraction) -> bool:
    """Whether ``number`` looks like ``value`` copied wrongly (not a different quantity).

    A miscopy keeps the size of the number: the same count of whole digits (at least
    two) and sign, and the same leading digit or the same digits in another order
    ("7,000,002" or "7,006,625" for 7,006,652). A number of another size ("120" for 5,
    "7" for "7 million", "1,942.2" for 397.8) is a different quantity: perhaps the
    right one, so it is never treated as a miscopy.

    Args:
        number: A number the answer states.
        value: The tool's value.
    """
    if number == value or (number < 0) != (value < 0):
        return False
    a, b = _integer_digits(number), _integer_digits(value)
    if len(a) != len(b) or len(a) < 2:
        return False
    return a[0] == b[0] or sorted(a) == sorted(b)


def miscopies(answer: str, value: int | float | Fraction, known: Iterable[Fraction]) -> bool:
    """Whether ``answer`` garbles the tool's ``value`` (so stating the value is safer).

    Grounding must never turn a right answer into a wrong one, so this is conservative:
    it is False when the answer states the value (exactly or rounded, see
    :func:`carries_value`), when each of its numbers is ``known`` (in the task or in
    some tool's result), and when its other numbers are of another size than the value.

    Args:
        answer: The model's answer.
        value: The trusted tool value (a calculator result that is not an error).
        known: Numbers of the task and of every tool result of the job.
    """
    target = value if isinstance(value, Fraction) else _as_fraction(repr(value))
    if target is None or carries_value(answer, target):
        return False
    seen = set(known)
    return any(looks_miscopied(n, target) for n in numbers_in(answer) if n not in seen)


_SPECIFIC = re.compile(r"[\w-]*\d[\w:.-]*\w|\d")


def _normalized(token: str) -> str:
    return re.sub(r"[^0-9a-z]", "", token.lower())


def ungrounded_specifics(answer: str, sources: Iterable[str]) -> list[str]:
    """Codes, numbers and times in ``answer`` that no source text holds.

    A record of the user's (a booking reference, a door code, an appointment time)
    can only come from their notes or what they said; a small model asked for one
    it was not given writes a plausible one ("1234567890"). Tokens with a digit are
    compared without case or punctuation ("QX7-2291" holds "qx72291").

    Args:
        answer: The answer to check.
        sources: Texts the answer may quote (tool results, the conversation).

    Returns:
        The tokens of ``answer`` found in no source, in order.
    """
    pool = " ".join(_normalized(t) for s in sources for t in _SPECIFIC.findall(str(s)))
    held = set(pool.split())
    return [t for t in _SPECIFIC.findall(answer) if _normalized(t) not in held]
