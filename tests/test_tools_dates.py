import pytest

from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.tools import ToolEnv, ToolError, dates_tool
from pipecat_tandem.background.tools.dates import add_months, parse_date, reference_time


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
        ({"operation": "weekday", "date": "christmas"}, "could not read the date"),
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
