import pytest

from pipecat_tandem.background.tools import ToolEnv, ToolError, convert, units_tool
from pipecat_tandem.background.tools.units import DIMENSIONS, UNITS, parse_unit


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (100, "C", "F", 212),
        (32, "°F", "celsius", 0),
        (-40, "fahrenheit", "°C", -40),
        (0, "K", "C", -273.15),
        (300, "kelvin", "F", 80.33),
        (491.67, "rankine", "C", 0),
        (5, "km", "miles", 3.10686),
        (1, "mi", "ft", 5280),
        (12, "inches", "cm", 30.48),
        (1, "nautical mile", "m", 1852),
        (1, "lb", "g", 453.59237),
        (1, "stone", "lb", 14),
        (16, "oz", "lb", 1),
        (1, "gallon", "l", 3.785411784),
        (1, "imperial gallon", "litres", 4.54609),
        (1, "cup", "fl oz", 8),
        (1, "tbsp", "tsp", 3),
        (1, "cubic feet", "litres", 28.316846592),
        (60, "mph", "km/h", 96.56064),
        (10, "knots", "m/s", 5.14444),
        (1, "day", "hours", 24),
        (2, "weeks", "days", 14),
        (1, "year", "days", 365.25),
        (90, "minutes", "h", 1.5),
        (1, "GiB", "MB", 1073.741824),
        (1, "MB", "kB", 1000),
        (1, "Mb", "kB", 125),
        (8, "bits", "bytes", 1),
        (1, "acre", "sq m", 4046.8564224),
        (1, "square feet", "m²", 0.09290304),
        (1, "hectare", "m2", 10000),
        (1, "square mile", "acres", 640),
    ],
)
def test_converts(value, src, dst, expected):
    assert convert(value, src, dst) == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_round_trip_every_unit():
    for unit in UNITS.values():
        others = [u for u in UNITS.values() if u.dimension == unit.dimension]
        for other in others:
            there = convert(123.0, unit.symbol, other.symbol)
            assert convert(there, other.symbol, unit.symbol) == pytest.approx(123.0, rel=1e-9)


def test_every_dimension_is_populated():
    expected = {"length", "mass", "volume", "temperature", "speed", "time", "data", "area"}
    assert set(DIMENSIONS) == expected


def test_incompatible_units_list_the_known_ones():
    with pytest.raises(ToolError, match=r"cannot convert length \(km\) to mass \(kg\)") as e:
        convert(1, "km", "kg")
    assert "mi" in str(e.value) and "ft" in str(e.value)


def test_unknown_unit_lists_the_known_ones():
    with pytest.raises(ToolError, match="unknown unit 'parsec'") as e:
        convert(1, "parsec", "m")
    for dimension in DIMENSIONS:
        assert dimension in str(e.value)


@pytest.mark.parametrize(
    ("value", "src", "dst", "message"),
    [
        (-300, "C", "K", "below absolute zero"),
        (-1, "K", "C", "below absolute zero"),
        (float("nan"), "m", "ft", "finite number"),
        (float("inf"), "m", "ft", "finite number"),
        (1e200, "m", "ft", "finite number"),
        (True, "m", "ft", "must be a number"),
        ("5", "m", "ft", "must be a number"),
        (1, "", "m", "missing unit"),
        (1, "m", "   ", "missing unit"),
        (1, "m" * 100, "m", "too long"),
        (1, None, "m", "missing unit"),
    ],
)
def test_refuses_bad_input(value, src, dst, message):
    with pytest.raises(ToolError, match=message):
        convert(value, src, dst)


def test_case_distinguishes_bits_from_bytes():
    assert parse_unit("Mb").symbol == "Mbit"
    assert parse_unit("MB").symbol == "MB"
    assert parse_unit("mb").symbol == "MB"


def test_tool_call():
    tool = units_tool()
    assert tool.schema().required == ["value", "from_unit", "to_unit"]
    out = tool.call({"value": 100, "from_unit": "C", "to_unit": "F"}, ToolEnv())["result"]
    assert out == {
        "value": 212,
        "unit": "°F",
        "dimension": "temperature",
        "text": "100 °C = 212 °F",
    }
    assert (
        tool.call({"value": "1,000", "from_unit": "m", "to_unit": "km"}, ToolEnv())["result"][
            "value"
        ]
        == 1
    )
    assert "missing 'value'" in tool.call({"from_unit": "m", "to_unit": "km"}, ToolEnv())["error"]
    assert (
        "must be a number"
        in tool.call({"value": "lots", "from_unit": "m", "to_unit": "km"}, ToolEnv())["error"]
    )
    assert (
        "unit names" in tool.call({"value": 1, "from_unit": 3, "to_unit": "km"}, ToolEnv())["error"]
    )
    assert (
        "cannot convert"
        in tool.call({"value": 1, "from_unit": "kg", "to_unit": "km"}, ToolEnv())["error"]
    )
