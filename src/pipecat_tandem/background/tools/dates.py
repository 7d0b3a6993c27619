#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A date and time arithmetic tool, relative to the moment of the delegation.

"Today" is the packet's ``wall_time`` (the wall clock when the interaction model
delegated), not the worker's clock, so a job that runs late or on another machine
still answers about the conversation's "now". Without a usable ``wall_time`` the
local clock is used and the result says so.

Two ways to ask, both in one tool:

- ``expression``: one date expression, in the words or the code-like form a
  small model writes most reliably (it copies the task's words instead of
  filling in several arguments right)::

      days_between(2026-12-02, 2027-01-18)     days_until(christmas)
      weekday(4 July 2026)                     today + 45 days
      add_weeks(2026-12-02, 3)                 next friday

- ``operation`` with ``date``, ``other_date`` and durations (``today``, ``add``,
  ``subtract``, ``difference``, ``weekday``), the schema-driven form.

Month and year steps clamp to the month end (Jan 31 + 1 month is Feb 28 or 29),
the way people count. A day without a year ("the first of March") is this year's,
except where the question looks forward ("days until ..."): then it is the next one.
"""

from __future__ import annotations

import calendar
import contextlib
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError

OPERATIONS = ("today", "add", "subtract", "difference", "weekday")
"""The operations the tool accepts."""

MAX_DATE_CHARS = 64
"""Longest accepted date string."""

# Largest accepted magnitude of each duration argument (beyond these the result
# leaves the supported calendar anyway).
_LIMITS: dict[str, float] = {
    "years": 10_000,
    "months": 120_000,
    "weeks": 530_000,
    "days": 3_660_000,
    "hours": 87_840_000,
    "minutes": 5_270_400_000,
}

_DATE_FORMATS = (
    "%Y/%m/%d",
    "%B %d %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%A %B %d %Y",
    "%A %d %B %Y",
    "%B %Y",  # a month of a year: its first day
)
_NO_YEAR_FORMATS = ("%B %d", "%b %d", "%d %B", "%d %b")
_WEEKDAYS = [d.lower() for d in calendar.day_name]
_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_ORDINALS = {
    w: i + 1
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
        "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
        "twentieth".split()
    )
} | {"twenty-first": 21, "twenty-second": 22, "twenty-third": 23, "thirtieth": 30,
     "thirty-first": 31}  # fmt: skip
# Fixed-date holidays people ask about by name (month, day).
_HOLIDAYS = {
    "christmas": (12, 25),
    "christmas eve": (12, 24),
    "boxing day": (12, 26),
    "new year's eve": (12, 31),
    "new years eve": (12, 31),
    "new year's": (1, 1),
    "new years": (1, 1),
    "new year": (1, 1),
    "halloween": (10, 31),
    "valentine's": (2, 14),
    "valentines": (2, 14),
    "valentine's day": (2, 14),
    "st patrick's": (3, 17),
}


def reference_time(env: ToolEnv | None) -> tuple[datetime, str]:
    """The "now" of a job: the packet's wall time, else the local clock.

    Returns:
        ``(now, source)`` where ``source`` says which clock was used.
    """
    wall = env.packet.wall_time if env is not None and env.packet is not None else ""
    if wall:
        try:
            return datetime.fromisoformat(wall.strip()), "packet wall_time"
        except ValueError:
            return datetime.now().astimezone(), f"local clock (unparseable wall_time {wall!r})"
    return datetime.now().astimezone(), "local clock (no wall_time in the packet)"


def _normalise(text: str) -> str:
    s = text.strip().lower().replace(",", " ").replace("’", "'")
    s = re.sub(r"[?!]+$|\.$", "", s)
    s = re.sub(r"\s+", " ", s).strip().strip("'\"").strip()
    for word, number in sorted(_ORDINALS.items(), key=lambda kv: -len(kv[0])):
        s = re.sub(rf"\b{word}\b", str(number), s)
    s = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", s)
    # "the 4 of july" -> "4 july"; "on friday" -> "friday"
    s = re.sub(r"^(the|on|of) ", "", s)
    s = re.sub(r"\b(\d{1,2}) of ", r"\1 ", s)
    return re.sub(r"\bthe ", "", s).strip()


def _holiday(s: str, now: datetime, midnight: datetime) -> datetime | None:
    names = "|".join(re.escape(h) for h in sorted(_HOLIDAYS, key=len, reverse=True))
    match = re.fullmatch(rf"({names})"
                         r"(?: day)?(?: (this year|next year|\d{4}))?", s)  # fmt: skip
    if match is None:
        return None
    month, day = _HOLIDAYS[match.group(1)]
    when = match.group(2)
    if when and when[0].isdigit():
        return midnight.replace(year=int(when), month=month, day=day)
    year = now.year + (when == "next year")
    moment = midnight.replace(year=year, month=month, day=day)
    if when is None and moment < midnight:
        moment = moment.replace(year=year + 1)  # "Christmas" in late December is next year's
    return moment


def parse_date(text: str, *, now: datetime, prefer_future: bool = False) -> tuple[datetime, bool]:
    """Parse a date or date-time relative to ``now``.

    Accepts ISO-8601 (``2026-05-01``, ``2026-05-01T14:30``), ``today``/``now``/
    ``tomorrow``/``yesterday``, ``next friday``/``this friday``/``friday`` (the next
    one after today), ``last friday``, ``March 5, 2026``, ``5 March 2026``, ``the
    first of March``, ``March 5`` (this year), ``2026/03/05`` and a few holidays
    (``christmas``, ``new year's day``, ``halloween``...: the next one, or of the
    year given).

    Args:
        text: The date.
        now: The job's "now".
        prefer_future: A date without a year that has passed this year means next
            year's (for "days until the first of March").

    Returns:
        ``(moment, has_time)``; naive inputs get ``now``'s timezone.

    Raises:
        ToolError: For anything else, with the accepted forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise ToolError("missing date")
    if len(text) > MAX_DATE_CHARS:
        raise ToolError(f"date too long (max {MAX_DATE_CHARS} chars)")
    s = _normalise(text)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    relative = {"now": (now, True), "today": (midnight, False), "right now": (now, True)}
    relative["tomorrow"] = (midnight + timedelta(days=1), False)
    relative["yesterday"] = (midnight - timedelta(days=1), False)
    relative["day after tomorrow"] = (midnight + timedelta(days=2), False)
    if s in relative:
        return relative[s]
    holiday = _holiday(s, now, midnight)
    if holiday is not None:
        return holiday, False
    which, _, weekday = s.rpartition(" ")
    if weekday in _WEEKDAYS and which in ("", "next", "this", "coming", "this coming", "last"):
        if which == "last":
            back = (now.weekday() - _WEEKDAYS.index(weekday) - 1) % 7 + 1
            return midnight - timedelta(days=back), False
        ahead = (_WEEKDAYS.index(weekday) - now.weekday() - 1) % 7 + 1
        return midnight + timedelta(days=ahead), False
    try:
        parsed = datetime.fromisoformat(text.strip())
        has_time = "t" in s or ":" in s
    except ValueError as e:
        if re.match(r"^\d{4}-\d{1,2}-\d{1,2}", s):
            raise ToolError(f"invalid date {text.strip()!r}: {e}") from None
        parsed, has_time = _parse_words(s, now)
        if prefer_future and _has_no_year(s) and parsed.date() < now.date():
            parsed = parsed.replace(year=parsed.year + 1)
    if parsed.tzinfo is None and now.tzinfo is not None:
        parsed = parsed.replace(tzinfo=now.tzinfo)
    elif parsed.tzinfo is not None and now.tzinfo is None:
        parsed = parsed.replace(tzinfo=None)
    return parsed, has_time


def _has_no_year(s: str) -> bool:
    return re.search(r"\b\d{4}\b", s) is None


def _parse_words(s: str, now: datetime) -> tuple[datetime, bool]:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(s, fmt), False
        except ValueError:
            continue
    for fmt in _NO_YEAR_FORMATS:
        try:
            # Parse with a leap year so "Feb 29" survives, then move to now's year.
            d = datetime.strptime(f"{s} 2000", f"{fmt} %Y")
            return d.replace(year=now.year), False
        except ValueError:
            continue
    if s in _MONTHS:
        # "Days until March": its first day, the way people count to a month.
        return datetime(now.year, _MONTHS.index(s) + 1, 1), False
    raise ToolError(
        f"could not read the date {s!r}; use YYYY-MM-DD (optionally with THH:MM), "
        "'today', 'tomorrow', 'yesterday', a weekday ('next friday'), 'March 5, 2026' or "
        "'christmas'"
    )


def _number(args: Mapping[str, Any], key: str, *, whole: bool) -> float:
    raw = args.get(key, 0)
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool):
        raise ToolError(f"'{key}' must be a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ToolError(f"'{key}' must be a number, got {str(raw)[:40]!r}") from None
    if not math.isfinite(value) or abs(value) > _LIMITS[key]:
        raise ToolError(f"'{key}' must be a finite number of at most {_LIMITS[key]:,.0f}")
    if whole and not value.is_integer():
        raise ToolError(f"'{key}' must be a whole number (use days or hours for fractions)")
    return value


def add_months(moment: datetime, months: int) -> datetime:
    """Shift by calendar months, clamping the day to the target month's end."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise ToolError("result is outside the supported calendar (years 1–9999)")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(moment: datetime, args: Mapping[str, Any], *, sign: int) -> tuple[datetime, bool]:
    """Apply the duration arguments (``years``...``minutes``) to ``moment``.

    Returns:
        ``(result, uses_time)`` where ``uses_time`` is set when hours/minutes were given.
    """
    months = int(_number(args, "years", whole=True) * 12 + _number(args, "months", whole=True))
    days = _number(args, "weeks", whole=False) * 7 + _number(args, "days", whole=False)
    hours = _number(args, "hours", whole=False)
    minutes = _number(args, "minutes", whole=False)
    try:
        out = add_months(moment, sign * months)
        out = out + sign * timedelta(days=days, hours=hours, minutes=minutes)
    except OverflowError:
        raise ToolError("result is outside the supported calendar (years 1–9999)") from None
    return out, bool(hours or minutes or days % 1)


def spoken_date(moment: datetime) -> str:
    """A date the way it is said: ``Friday 4 December 2026``."""
    weekday, month = calendar.day_name[moment.weekday()], calendar.month_name[moment.month]
    return f"{weekday} {moment.day} {month} {moment.year}"


def _describe(moment: datetime, has_time: bool) -> dict[str, Any]:
    # "spoken" is what the answer should say: a small model copies a month name
    # far more reliably than it turns 2027-01-16 into words.
    out: dict[str, Any] = {
        "date": moment.date().isoformat(),
        "weekday": calendar.day_name[moment.weekday()],
        "spoken": spoken_date(moment),
    }
    if has_time:
        out["datetime"] = moment.isoformat(timespec="minutes")
        out["time"] = moment.strftime("%H:%M")
        out["spoken"] += f" at {out['time']}"
    return out


def _difference(a: datetime, b: datetime, with_time: bool) -> dict[str, Any]:
    if with_time:
        seconds = (b - a).total_seconds()
        days: float = round(seconds / 86400, 4)
        out: dict[str, Any] = {"days": days, "hours": round(seconds / 3600, 2)}
    else:
        whole = (b.date() - a.date()).days
        weeks, rest = divmod(abs(whole), 7)
        out = {"days": whole, "weeks": weeks, "extra_days": rest}
        days = whole
    # The date counted to, in words and as ISO: "how many days until" answers with
    # the count, "what day was ..." (asked as a difference) with its weekday.
    out["to"], out["to_date"] = spoken_date(b), b.date().isoformat()
    direction = "after" if days > 0 else "before" if days < 0 else "the same day as"
    out["text"] = (
        f"{b.date().isoformat()} is {abs(days):g} day(s) {direction} {a.date().isoformat()}"
        if days
        else f"{b.date().isoformat()} is the same day as {a.date().isoformat()}"
    )
    return out


#
# Expressions: one string instead of several arguments
#

_UNIT = r"(years?|months?|weeks?|days?|hours?|minutes?)"
_COUNT = r"(\d+(?:\.\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
_COUNT_WORDS = {"a": 1, "an": 1} | {
    w: i + 1
    for i, w in enumerate("one two three four five six seven eight nine ten eleven twelve".split())
}
_OFFSET_AFTER = re.compile(rf"^{_COUNT} {_UNIT} (from|after|since|before|until|prior to) (.+)$")
_OFFSET_NOW = re.compile(rf"^(?:in )?{_COUNT} {_UNIT} (ago|from now|from today|later|hence)$")
_OFFSET_IN = re.compile(rf"^in {_COUNT} {_UNIT}$")
_OFFSET_SIGN = re.compile(rf"^(.+?) ?(\+|-|plus|minus) ?{_COUNT} ?{_UNIT}$")
_CALL = re.compile(r"^([a-z_ ]+?) ?\((.*)\)$")
_BETWEEN = re.compile(
    r"^(?:how many |number of )?(?:days|weeks) (?:are there |is it )?(?:between|from) (.+?) "
    r"(?:and|to|until|till) (.+)$"
)
_UNTIL = re.compile(
    r"^(?:how many |number of )?(?:days|weeks) (?:left |remaining |is it )?"
    r"(?:until|till|to|before) (.+)$"
)
_SINCE = re.compile(r"^(?:how many |number of )?(?:days|weeks) (?:since|after|from) (.+)$")
_WEEKDAY_OF = re.compile(
    r"^(?:what |which )?(?:weekday|day of (?:the )?week|day)(?: is| was| of| for| will be)* (.+)$"
)

# Function names of the code-like form, by meaning.
_UNTIL_NAMES = {"days_until", "until", "days_to", "days_till", "days_left", "countdown"}
_SINCE_NAMES = {"days_since", "since", "days_ago"}
_BETWEEN_NAMES = {"days_between", "difference", "diff", "between", "days", "date_diff",
                  "datediff", "days_from"}  # fmt: skip
_DATE_NAMES = {"weekday", "day_of_week", "dayofweek", "what_day", "date", "day", "describe",
               "parse", "today", "now", "get_date", "date_of"}  # fmt: skip


def _count(token: str) -> float:
    return float(_COUNT_WORDS[token]) if token in _COUNT_WORDS else float(token)


def _origin(now: datetime, unit: str) -> datetime:
    # "In 3 hours" counts from this moment; "in 3 days" names a day, not a time.
    if unit.startswith(("hour", "minute")):
        return now
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _offset(start: datetime, count: str, unit: str, sign: int) -> tuple[datetime, bool]:
    key = unit if unit.endswith("s") else unit + "s"
    return shift(start, {key: _count(count)}, sign=sign)


def parse_term(text: str, *, now: datetime, prefer_future: bool = False) -> tuple[datetime, bool]:
    """A date, possibly moved by a duration (``today + 45 days``, ``3 weeks after 2026-12-02``).

    Args:
        text: The term.
        now: The job's "now".
        prefer_future: See :func:`parse_date`.

    Returns:
        ``(moment, has_time)``.

    Raises:
        ToolError: The term is not a date.
    """
    s = _normalise(text) if isinstance(text, str) else text
    if not isinstance(s, str) or not s:
        raise ToolError("missing date")
    if m := _OFFSET_NOW.match(s) or _OFFSET_IN.match(s):
        count, unit = m.group(1), m.group(2)
        sign = -1 if m.lastindex == 3 and m.group(3) == "ago" else 1
        return _offset(_origin(now, unit), count, unit, sign)
    if m := _OFFSET_AFTER.match(s):
        base, has_time = parse_term(m.group(4), now=now, prefer_future=prefer_future)
        sign = -1 if m.group(3) in ("before", "until", "prior to") else 1
        moved, uses_time = _offset(base, m.group(1), m.group(2), sign)
        return moved, has_time or uses_time
    if (m := _OFFSET_SIGN.match(s)) and not re.fullmatch(r"\d{4}-\d{1,2}", m.group(1)):
        base, has_time = parse_term(m.group(1), now=now, prefer_future=prefer_future)
        sign = -1 if m.group(2) in ("-", "minus") else 1
        moved, uses_time = _offset(base, m.group(3), m.group(4), sign)
        return moved, has_time or uses_time
    return parse_date(s, now=now, prefer_future=prefer_future)


def _split_args(inner: str) -> list[str]:
    return [a.strip().strip("'\"").strip() for a in inner.split(",") if a.strip()]


def _date_result(moment: datetime, has_time: bool, how: str) -> dict[str, Any]:
    return {"operation": how, **_describe(moment, has_time)}


def _between(a: str, b: str, now: datetime, *, future: bool) -> dict[str, Any]:
    start, t1 = parse_term(a, now=now)
    end, t2 = parse_term(b, now=now, prefer_future=future or start.date() >= now.date())
    if end < start and _has_no_year(_normalise(b)):
        # "From the 2nd of December to the 8th of January": an end without a year is
        # the first one after the start (it came out as -328 days in a real call).
        with contextlib.suppress(ValueError):  # 29 February has no next-year twin
            end = end.replace(year=end.year + 1)
    return {"operation": "difference", **_difference(start, end, t1 and t2)}


def _call(name: str, args: list[str], now: datetime) -> dict[str, Any]:
    name = name.strip().replace(" ", "_").removeprefix("dates.")
    unit = re.fullmatch(rf"(add|plus|subtract|minus|sub)(?:_?{_UNIT})?", name)
    if unit is not None:
        sign = 1 if unit.group(1) in ("add", "plus") else -1
        if unit.group(2) is None:  # add(2026-12-02, 45 days) / add(45 days)
            origin, amount = (
                (args[0], args[1]) if len(args) == 2 else ("today", args[0] if args else "")
            )
            term = f"{origin} {'+' if sign > 0 else '-'} {amount}"
            moment, has_time = parse_term(term, now=now)
            return _date_result(moment, has_time, "add" if sign > 0 else "subtract")
        if len(args) == 1:
            args = ["today", args[0]]
        if len(args) != 2:
            raise ToolError(f"{name}() takes a date and a number, e.g. {name}(today, 3)")
        start, has_time = parse_term(args[0], now=now)
        moved, uses_time = _offset(start, args[1], unit.group(2), sign)
        return _date_result(moved, has_time or uses_time, "add" if sign > 0 else "subtract")
    if name in _UNTIL_NAMES and len(args) == 1:
        return _between("today", args[0], now, future=True)
    if name in _SINCE_NAMES and len(args) == 1:
        return _between(args[0], "today", now, future=False)
    if name in _BETWEEN_NAMES | _UNTIL_NAMES and len(args) == 2:
        return _between(args[0], args[1], now, future=False)
    if name in _BETWEEN_NAMES and len(args) == 1:
        return _between("today", args[0], now, future=True)
    if name in _DATE_NAMES and len(args) <= 1:
        moment, has_time = parse_term(args[0] if args else "today", now=now)
        return _date_result(moment, has_time, "weekday" if "day" in name else "date")
    raise ToolError(
        f"unknown date function {name}({', '.join(args)}); use days_between(a, b), "
        "days_until(d), days_since(d), weekday(d), add_days(d, n), add_weeks(d, n), "
        "add_months(d, n), subtract_days(d, n)"
    )


def evaluate_expression(text: str, now: datetime) -> dict[str, Any]:
    """Evaluate one date expression (see the module docstring for the forms).

    Args:
        text: The expression, as a model or a person writes it.
        now: The job's "now".

    Returns:
        A date (``date``, ``weekday``, ``spoken``) or a difference (``days``,
        ``weeks``, ``extra_days``, ``text``), with the ``operation`` it was read as.

    Raises:
        ToolError: Nothing in it reads as a date.
    """
    if not isinstance(text, str) or not text.strip():
        raise ToolError("missing 'expression' (e.g. days_until(2027-03-01) or today + 45 days)")
    if len(text) > 2 * MAX_DATE_CHARS:
        raise ToolError(f"expression too long (max {2 * MAX_DATE_CHARS} chars)")
    # The call form first, before commas (its argument separators) are normalised away.
    if m := _CALL.match(re.sub(r"\s+", " ", text.strip().lower()).rstrip(".;")):
        return _call(m.group(1), _split_args(m.group(2)), now)
    s = _normalise(text)
    if m := _BETWEEN.match(s):
        return _between(m.group(1), m.group(2), now, future=False)
    if m := _UNTIL.match(s):
        return _between("today", m.group(1), now, future=True)
    if m := _SINCE.match(s):
        return _between(m.group(1), "today", now, future=False)
    if m := _WEEKDAY_OF.match(s):
        moment, has_time = parse_term(m.group(1), now=now)
        return _date_result(moment, has_time, "weekday")
    # Two dates around a minus or "to": their difference ("2027-01-18 - 2026-12-02").
    for sep in (" - ", " to ", " and "):
        if sep in s:
            later, _, earlier = s.partition(sep)
            try:
                if sep == " - ":
                    return _between(earlier, later, now, future=False)
                return _between(later, earlier, now, future=False)
            except ToolError:
                break
    moment, has_time = parse_term(s, now=now)
    return _date_result(moment, has_time, "date")


_DATE_QUESTION = re.compile(
    r"^(?:what|which)(?:'s| is| was| will be)? (?:the )?date (?:is it |was it |will it be |is |"
    r"was |will be )?"
)


def task_expression(task: str, now: datetime) -> str | None:
    """The task itself as a date expression, when it reads as one.

    "what day of the week is Christmas this year", "how many days until the first
    of March", "what date is it 45 days from today": a question that is nothing but
    a date expression is answered by the tool before the model writes a step,
    which saves a slow model a whole decoding step. Anything else (a question with
    other words in it) gives ``None`` and the model calls the tool itself.

    Args:
        task: The task text.
        now: The job's "now".

    Returns:
        The expression (the task without its "what is the date" opening), or ``None``.
    """
    if not isinstance(task, str) or len(task) > 2 * MAX_DATE_CHARS:
        return None
    expression = _DATE_QUESTION.sub("", _normalise(task)).strip()
    if not expression:
        return None
    try:
        evaluate_expression(expression, now)
    except (ToolError, ValueError, OverflowError):
        return None
    return expression


def _run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    now, source = reference_time(env)
    expression = args.get("expression")
    if isinstance(expression, str) and expression.strip():
        return {**evaluate_expression(expression, now), "reference": source}
    operation = str(args.get("operation") or "").strip().lower()
    date_arg = args.get("date")
    if not operation and date_arg not in (None, ""):
        operation = "weekday"  # a bare date: say what day it is
    if operation not in OPERATIONS:
        raise ToolError(
            f"unknown operation {operation!r}; expected one of: {', '.join(OPERATIONS)} "
            "(or give one 'expression')"
        )
    if date_arg in (None, ""):
        # "In 20 hours" counts from the moment of the request, "in 3 days" shows a date.
        start, has_time = now, operation == "today"
    else:
        start, has_time = parse_term(
            str(date_arg), now=now, prefer_future=operation == "difference"
        )
    result: dict[str, Any] = {"operation": operation, "reference": source}
    if operation == "today":
        result.update(_describe(start, has_time))
    elif operation == "weekday":
        result.update(_describe(start, has_time))
    elif operation in ("add", "subtract"):
        if not any(args.get(k) not in (None, "", 0) for k in _LIMITS):
            if date_arg not in (None, ""):
                # The date argument already says where to go ("45 days from today"):
                # it is the answer, not a start to add nothing to.
                result.update(_describe(start, has_time))
                return result
            raise ToolError(f"'{operation}' needs days, weeks, months, years, hours or minutes")
        moved, uses_time = shift(start, args, sign=1 if operation == "add" else -1)
        result["from"] = _describe(start, has_time)
        result.update(_describe(moved, has_time or uses_time))
    else:
        other = args.get("other_date")
        if other in (None, ""):
            if date_arg in (None, ""):
                raise ToolError(
                    "'difference' needs 'other_date' (and optionally 'date', default today)"
                )
            # One date given: the days from today to it, the way "how many days until" means.
            start, end, other_time = now, start, has_time
            has_time = False
        else:
            end, other_time = parse_term(str(other), now=now, prefer_future=True)
        result.update(_difference(start, end, has_time and other_time))
    return result


def dates_tool() -> Tool:
    """The ``dates`` tool for the background agent."""
    return Tool(
        name="dates",
        description=(
            "Date arithmetic relative to now (the moment of the request): today's date, "
            "the date N days/weeks/months/years/hours from a date, the number of days "
            "between two dates, or the weekday of a date. Give one 'expression' such as "
            "'days_until(2027-03-01)', 'weekday(christmas)', 'today + 45 days', "
            "'days_between(2026-12-02, 2027-01-18)'."
        ),
        properties={
            "expression": {
                "type": "string",
                "description": "One date expression: days_between(a, b), days_until(d), "
                "days_since(d), weekday(d), add_days(d, n), today + 3 weeks, next friday.",
            },
            "operation": {"type": "string", "enum": list(OPERATIONS)},
            "date": {
                "type": "string",
                "description": "Start date: YYYY-MM-DD, 'today' (default), 'next friday'...",
            },
            "other_date": {"type": "string", "description": "Second date, for 'difference'."},
            "years": {"type": "integer"},
            "months": {"type": "integer"},
            "weeks": {"type": "number"},
            "days": {"type": "number"},
            "hours": {"type": "number"},
            "minutes": {"type": "number"},
        },
        required=[],
        fn=_run,
        # The step protocol offers a small model the one-string form only: it writes
        # one expression well and fills several related arguments badly.
        extra={"step_properties": {"expression": {"type": "string"}}},
    )
