import re
from datetime import datetime

import pytest

from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.tools import ToolEnv, ToolError, dates_tool
from pipecat_tandem.background.tools.dates import (
    add_months,
    parse_date,
    reference_time,
    task_expression,
)


def env(wall_time="2024-01-31T10:00:00+01:00"):
    return ToolEnv(packet=ContextPacket(job_id="j1", task="t", wall_time=wall_time))


def call(env_=None, **args):
    out = dates_tool().call(args, env_ or env())
    if "error" in out:
        raise ToolError(out["error"])
    return out["result"]


def test_today_comes_from_the_packet():
    out = call(operation="today")
    assert out["date"] == "2024-01-31"
    assert out["weekday"] == "Wednesday"
    assert out["time"] == "10:00"
    assert out["reference"] == "packet wall_time"


def test_no_or_bad_wall_time_falls_back_to_the_local_clock():
    assert "no wall_time" in call(ToolEnv(), operation="today")["reference"]
    assert "unparseable" in call(env("yesterday-ish"), operation="today")["reference"]
    assert "no wall_time" in reference_time(None)[1]


def test_what_day_is_it_in_45_days():
    out = call(operation="add", days=45)
    assert (out["date"], out["weekday"]) == ("2024-03-16", "Saturday")
    assert out["from"]["date"] == "2024-01-31"


def test_hours_count_from_the_moment_of_the_request():
    out = call(operation="add", hours=20)
    assert out["datetime"] == "2024-02-01T06:00+01:00"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"months": 1}, "2024-02-29"),  # month end clamps, leap year
        ({"date": "2023-01-31", "months": 1}, "2023-02-28"),
        ({"date": "2024-02-29", "years": 1}, "2025-02-28"),
        ({"date": "2024-02-29", "years": 4}, "2028-02-29"),
        ({"date": "2024-12-31", "days": 1}, "2025-01-01"),
        ({"date": "2024-02-28", "days": 1}, "2024-02-29"),
        ({"date": "2023-02-28", "days": 1}, "2023-03-01"),
        ({"date": "2024-03-31", "months": -1}, "2024-02-29"),
        ({"date": "2024-01-01", "weeks": 2}, "2024-01-15"),
        ({"date": "2024-01-01", "years": "1", "months": "2", "days": "3"}, "2025-03-04"),
    ],
)
def test_add(args, expected):
    assert call(operation="add", **args)["date"] == expected


def test_subtract():
    assert call(operation="subtract", date="2024-03-01", days=1)["date"] == "2024-02-29"
    assert call(operation="subtract", date="2024-03-31", months=1)["date"] == "2024-02-29"


def test_difference():
    out = call(operation="difference", date="2024-01-01", other_date="2025-01-01")
    assert (out["days"], out["weeks"], out["extra_days"]) == (366, 52, 2)
    assert "366 day(s) after" in out["text"]
    back = call(operation="difference", date="2025-01-01", other_date="2024-01-01")
    assert back["days"] == -366 and "before" in back["text"]
    same = call(operation="difference", date="2024-05-05", other_date="May 5, 2024")
    assert same["days"] == 0 and "same day" in same["text"]
    assert call(operation="difference", other_date="December 25")["days"] == 329
    timed = call(operation="difference", date="now", other_date="2024-02-01T12:00")
    assert timed["hours"] == 26


@pytest.mark.parametrize(
    ("text", "weekday"),
    [
        ("2024-02-29", "Thursday"),
        ("2000-01-01", "Saturday"),
        ("July 4, 1976", "Sunday"),
        ("4 July 1976", "Sunday"),
        ("March 1st 2024", "Friday"),
        ("2024/03/01", "Friday"),
        ("tomorrow", "Thursday"),
        ("yesterday", "Tuesday"),
        ("next friday", "Friday"),
    ],
)
def test_weekday(text, weekday):
    assert call(operation="weekday", date=text)["weekday"] == weekday


def test_next_weekday_is_strictly_after_today():
    assert call(operation="weekday", date="wednesday")["date"] == "2024-02-07"
    assert call(operation="weekday", date="friday")["date"] == "2024-02-02"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "unknown operation ''"),
        ({"operation": "explode"}, "unknown operation 'explode'"),
        ({"operation": "weekday", "date": "2024-02-30"}, "day is out of range"),
        ({"operation": "weekday", "date": "2023-02-29"}, "day is out of range"),
        ({"operation": "weekday", "date": "2024-13-01"}, "month must be in"),
        ({"operation": "weekday", "date": "the day after the party"}, "could not read the date"),
        ({"operation": "weekday", "date": "x" * 200}, "date too long"),
        ({"operation": "add", "months": 1.5}, "whole number"),
        ({"operation": "add", "days": "soon"}, "must be a number"),
        ({"operation": "add", "days": True}, "must be a number"),
        ({"operation": "add", "days": float("nan")}, "finite number"),
        ({"operation": "add", "days": 1e12}, "at most"),
        ({"operation": "add", "date": "9999-12-31", "days": 1}, "outside the supported calendar"),
        ({"operation": "subtract", "date": "0001-01-01", "years": 1}, "outside the supported"),
        ({"operation": "difference"}, "needs 'other_date'"),
    ],
)
def test_refuses_bad_input(args, message):
    with pytest.raises(ToolError, match=message):
        call(**args)


def test_parse_date_rejects_empty():
    now, _ = reference_time(env())
    with pytest.raises(ToolError, match="missing date"):
        parse_date("  ", now=now)


def test_add_months_clamps():
    now, _ = reference_time(env())
    assert add_months(now, 13).date().isoformat() == "2025-02-28"


# The one-string form (what the step protocol offers a small model). "Now" is
# Wednesday 2 December 2026, the labeled set's wall time.
DEC_2 = "2026-12-02T10:00:00+00:00"


def expr(expression, wall_time=DEC_2):
    return call(env(wall_time), expression=expression)


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("days_between(2026-12-02, 2027-01-18)", 47),
        ("days_between('2026-12-02', '2027-01-18')", 47),
        ("2027-01-18 - 2026-12-02", 47),
        ("how many days are there between 2026-12-02 and 2027-01-18", 47),
        ("days_until(christmas)", 23),
        ("days_until(2026-12-25)", 23),
        ("difference(2026-12-25)", 23),
        # A day without a year that has passed means the next one when counting towards it.
        ("days_until(the first of March)", 89),
        ("days until March 1st", 89),
        ("days_until(new year's day)", 30),
        ("days_since(2026-11-02)", 30),
    ],
)
def test_expression_differences(expression, days):
    assert expr(expression)["days"] == days


@pytest.mark.parametrize(
    ("expression", "spoken"),
    [
        ("today + 45 days", "Saturday 16 January 2027"),
        ("45 days from today", "Saturday 16 January 2027"),
        ("add_days(today, 45)", "Saturday 16 January 2027"),
        ("add_days(45)", "Saturday 16 January 2027"),
        ("add(today, 45 days)", "Saturday 16 January 2027"),
        ("in 3 weeks", "Wednesday 23 December 2026"),
        ("add_weeks(2026-12-02, 3)", "Wednesday 23 December 2026"),
        ("subtract_days(2026-12-02, 2)", "Monday 30 November 2026"),
        ("2 weeks before christmas", "Friday 11 December 2026"),
        ("next friday", "Friday 4 December 2026"),
        ("weekday(next Friday)", "Friday 4 December 2026"),
        ("this friday", "Friday 4 December 2026"),
        ("last monday", "Monday 30 November 2026"),
        ("weekday(Christmas this year)", "Friday 25 December 2026"),
        ("weekday(4th of July 2026)", "Saturday 4 July 2026"),
        ("what day of the week was the 4th of July 2026", "Saturday 4 July 2026"),
        ("today()", "Wednesday 2 December 2026"),
        ("3 hours from now", "Wednesday 2 December 2026 at 13:00"),
    ],
)
def test_expression_dates(expression, spoken):
    assert expr(expression)["spoken"] == spoken


def test_a_holiday_that_has_passed_this_year_is_next_years():
    assert expr("weekday(christmas)", "2026-12-28T09:00:00+00:00")["date"] == "2027-12-25"
    assert expr("weekday(christmas 2030)")["date"] == "2030-12-25"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "unknown operation ''"),  # nothing given at all
        ("explode(2026-12-02)", "unknown date function"),
        ("add_days(today, soon)", "could not convert|must be a number"),
        ("when the cows come home", "could not read the date"),
        ("x" * 300, "expression too long"),
    ],
)
def test_expression_refuses_what_it_cannot_read(expression, message):
    out = dates_tool().call({"expression": expression}, env(DEC_2))
    assert "error" in out
    assert re.search(message, out["error"])


def test_the_misses_of_the_operation_form_are_forgiven():
    # difference with one date: from today to it (the model often leaves other_date out)
    assert call(env(DEC_2), operation="difference", date="2027-01-18")["days"] == 47
    # add whose date already says where to go
    out = call(env(DEC_2), operation="add", date="45 days from today")
    assert out["date"] == "2027-01-16"
    # add with nothing to add is an error, never "the same day as today"
    with pytest.raises(ToolError, match="needs days"):
        call(env(DEC_2), operation="add")


def test_a_bare_month_is_its_first_day():
    assert expr("days_until(march)")["days"] == 89
    assert expr("weekday(march 2027)")["date"] == "2027-03-01"


def test_a_difference_names_the_date_it_counts_to():
    out = expr("days_until(4th of July 2026)")
    assert (out["days"], out["to"], out["to_date"]) == (-151, "Saturday 4 July 2026", "2026-07-04")


@pytest.mark.parametrize(
    ("task", "expression"),
    [
        ("what is the date next Friday", "next friday"),
        ("What date will it be three weeks from today?", "three weeks from today"),
        ("how many days until the first of March", "how many days until 1 march"),
        ("what day of the week is Christmas this year", "what day of week is christmas this year"),
        # Not a bare date question: the model decides.
        ("how many days until my birthday", None),
        ("what day is my dentist appointment", None),
        ("what is the date", None),
        ("plan a trip next friday", None),
        ("what is 1234 times 5678", None),
    ],
)
def test_task_expression(task, expression):
    now = datetime.fromisoformat(DEC_2)
    assert task_expression(task, now) == expression


def test_a_span_whose_end_has_no_year_ends_after_its_start():
    # In a real call "from the 2nd of December to the 8th of January", asked on
    # 4 December, came out as -328 days: the end was this year's 8 January.
    from datetime import datetime

    from pipecat_tandem.background.tools.dates import evaluate_expression

    now = datetime(2026, 12, 4, 12, 0)
    span = evaluate_expression("days_between(the 2nd of December, the 8th of January)", now)
    assert span["days"] == 37 and "2027" in span["to"]
    assert evaluate_expression("days_between(2 December, 18 January)", now)["days"] == 47
    # Years that are said are kept, even backwards.
    assert evaluate_expression("days_between(2026-12-02, 2026-01-08)", now)["days"] == -328
