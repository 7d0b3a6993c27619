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

Operations (schema-driven): ``today``, ``add``, ``subtract``, ``difference`` and
``weekday``. Month and year steps clamp to the month end (Jan 31 + 1 month is
Feb 28 or 29), the way people count.
"""

from __future__ import annotations

import calendar
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
)
_NO_YEAR_FORMATS = ("%B %d", "%b %d", "%d %B", "%d %b")
_WEEKDAYS = [d.lower() for d in calendar.day_name]


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


def parse_date(text: str, *, now: datetime) -> tuple[datetime, bool]:
    """Parse a date or date-time relative to ``now``.

    Accepts ISO-8601 (``2026-05-01``, ``2026-05-01T14:30``), ``today``/``now``/
    ``tomorrow``/``yesterday``, ``next friday``/``friday`` (the next one after
    today), ``March 5, 2026``, ``5 March 2026``, ``March 5`` (this year) and
    ``2026/03/05``.

    Returns:
        ``(moment, has_time)``; naive inputs get ``now``'s timezone.

    Raises:
        ToolError: For anything else, with the accepted forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise ToolError("missing date")
    if len(text) > MAX_DATE_CHARS:
        raise ToolError(f"date too long (max {MAX_DATE_CHARS} chars)")
    s = re.sub(r"\s+", " ", text.strip().lower().replace(",", " ")).strip()
    s = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", s)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    relative = {"now": (now, True), "today": (midnight, False)}
    relative["tomorrow"] = (midnight + timedelta(days=1), False)
    relative["yesterday"] = (midnight - timedelta(days=1), False)
    if s in relative:
        return relative[s]
    weekday = s.removeprefix("next ").strip()
    if weekday in _WEEKDAYS:
        ahead = (_WEEKDAYS.index(weekday) - now.weekday() - 1) % 7 + 1
        return midnight + timedelta(days=ahead), False
    try:
        parsed = datetime.fromisoformat(text.strip())
        has_time = "t" in s or ":" in s
    except ValueError as e:
        if re.match(r"^\d{4}-\d{1,2}-\d{1,2}", s):
            raise ToolError(f"invalid date {text.strip()!r}: {e}") from None
        parsed, has_time = _parse_words(s, now)
    if parsed.tzinfo is None and now.tzinfo is not None:
        parsed = parsed.replace(tzinfo=now.tzinfo)
    elif parsed.tzinfo is not None and now.tzinfo is None:
        parsed = parsed.replace(tzinfo=None)
    return parsed, has_time


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
    raise ToolError(
        f"could not read the date {s!r}; use YYYY-MM-DD (optionally with THH:MM), "
        "'today', 'tomorrow', 'yesterday', a weekday ('next friday') or 'March 5, 2026'"
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


def _describe(moment: datetime, has_time: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "date": moment.date().isoformat(),
        "weekday": calendar.day_name[moment.weekday()],
    }
    if has_time:
        out["datetime"] = moment.isoformat(timespec="minutes")
        out["time"] = moment.strftime("%H:%M")
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
    direction = "after" if days > 0 else "before" if days < 0 else "the same day as"
    out["text"] = (
        f"{b.date().isoformat()} is {abs(days):g} day(s) {direction} {a.date().isoformat()}"
        if days
        else f"{b.date().isoformat()} is the same day as {a.date().isoformat()}"
    )
    return out


def _run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    operation = str(args.get("operation") or "").strip().lower()
    if operation not in OPERATIONS:
        raise ToolError(
            f"unknown operation {operation!r}; expected one of: {', '.join(OPERATIONS)}"
        )
    now, source = reference_time(env)
    date_arg = args.get("date")
    if date_arg in (None, ""):
        # "In 20 hours" counts from the moment of the request, "in 3 days" shows a date.
        start, has_time = now, operation == "today"
    else:
        start, has_time = parse_date(str(date_arg), now=now)
    result: dict[str, Any] = {"operation": operation, "reference": source}
    if operation == "today":
        result.update(_describe(start, has_time))
    elif operation == "weekday":
        result.update(_describe(start, has_time))
    elif operation in ("add", "subtract"):
        moved, uses_time = shift(start, args, sign=1 if operation == "add" else -1)
        result["from"] = _describe(start, has_time)
        result.update(_describe(moved, has_time or uses_time))
    else:
        other = args.get("other_date")
        if other in (None, ""):
            raise ToolError(
                "'difference' needs 'other_date' (and optionally 'date', default today)"
            )
        end, other_time = parse_date(str(other), now=now)
        result.update(_difference(start, end, has_time and other_time))
    return result


def dates_tool() -> Tool:
    """The ``dates`` tool for the background agent."""
    return Tool(
        name="dates",
        description=(
            "Date arithmetic relative to now (the moment of the request): today's date, "
            "the date N days/weeks/months/years/hours from a date, the number of days "
            "between two dates, or the weekday of a date."
        ),
        properties={
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
        required=["operation"],
        fn=_run,
    )
