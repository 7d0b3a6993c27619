#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A unit conversion tool backed by a plain table.

Each unit belongs to one dimension (length, mass, volume, temperature, speed,
time, data, area) and has a factor to that dimension's base unit. Temperatures
are affine (an offset as well as a factor), so they convert through kelvin.
US customary volumes are used for ``gallon``/``cup``/``pint``; the imperial ones
have their own names (``imperial gallon``). Data sizes distinguish decimal
(``kB``, ``MB``: powers of 1000) from binary (``KiB``, ``MiB``: powers of 1024),
and ``Mb``/``Mbit`` (bits) from ``MB`` (bytes) when the case says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError
from pipecat_tandem.policy.number_words import number_words_to_digits

MAX_ABS_VALUE = 1e100
"""Largest accepted magnitude of a value to convert."""

MAX_UNIT_CHARS = 40
"""Longest accepted unit name."""


@dataclass(frozen=True)
class Unit:
    """A unit in the table.

    Parameters:
        symbol: Canonical short name.
        dimension: What it measures.
        factor: Base units per one of this unit (for temperature: kelvin per degree).
        offset: Added after scaling to reach the base unit (temperature only).
    """

    symbol: str
    dimension: str
    factor: float
    offset: float = 0.0


_INCH = 0.0254
_FOOT = 0.3048
_YARD = 0.9144
_MILE = 1609.344
_LITRE = 0.001
_US_GALLON = 3.785411784 * _LITRE
_POUND = 0.45359237

# symbol, dimension, factor to base, aliases (matched case-insensitively unless listed
# in _CASE_SENSITIVE).
_TABLE: list[tuple[str, str, float, tuple[str, ...]]] = [
    # length (metre)
    ("m", "length", 1.0, ("meter", "meters", "metre", "metres")),
    ("km", "length", 1000.0, ("kilometer", "kilometers", "kilometre", "kilometres")),
    ("cm", "length", 0.01, ("centimeter", "centimeters", "centimetre", "centimetres")),
    ("mm", "length", 0.001, ("millimeter", "millimeters", "millimetre", "millimetres")),
    ("um", "length", 1e-6, ("µm", "micrometer", "micrometers", "micron", "microns")),
    ("nm", "length", 1e-9, ("nanometer", "nanometers", "nanometre", "nanometres")),
    ("in", "length", _INCH, ("inch", "inches", '"')),
    ("ft", "length", _FOOT, ("foot", "feet", "'")),
    ("yd", "length", _YARD, ("yard", "yards")),
    ("mi", "length", _MILE, ("mile", "miles")),
    ("nmi", "length", 1852.0, ("nautical mile", "nautical miles")),
    ("ly", "length", 9.4607304725808e15, ("light year", "light years", "lightyear")),
    # mass (kilogram)
    ("kg", "mass", 1.0, ("kilogram", "kilograms", "kilo", "kilos")),
    ("g", "mass", 0.001, ("gram", "grams", "gramme", "grammes")),
    ("mg", "mass", 1e-6, ("milligram", "milligrams")),
    ("ug", "mass", 1e-9, ("µg", "microgram", "micrograms")),
    ("t", "mass", 1000.0, ("tonne", "tonnes", "metric ton", "metric tons")),
    ("lb", "mass", _POUND, ("lbs", "pound", "pounds")),
    ("oz", "mass", _POUND / 16, ("ounce", "ounces")),
    ("st", "mass", _POUND * 14, ("stone", "stones")),
    ("short ton", "mass", _POUND * 2000, ("ton", "tons", "us ton", "short tons")),
    # volume (cubic metre)
    ("m3", "volume", 1.0, ("cubic meter", "cubic meters", "cubic metre", "cubic metres")),
    ("l", "volume", _LITRE, ("liter", "liters", "litre", "litres")),
    ("ml", "volume", 1e-6, ("milliliter", "milliliters", "millilitre", "millilitres", "cc")),
    ("cl", "volume", 1e-5, ("centiliter", "centiliters", "centilitre", "centilitres")),
    ("dl", "volume", 1e-4, ("deciliter", "deciliters", "decilitre", "decilitres")),
    ("cm3", "volume", 1e-6, ("cubic centimeter", "cubic centimeters")),
    ("gal", "volume", _US_GALLON, ("gallon", "gallons", "us gallon", "us gallons")),
    ("imp gal", "volume", 4.54609 * _LITRE, ("imperial gallon", "imperial gallons")),
    ("qt", "volume", _US_GALLON / 4, ("quart", "quarts")),
    ("pt", "volume", _US_GALLON / 8, ("pint", "pints")),
    ("cup", "volume", _US_GALLON / 16, ("cups",)),
    ("fl oz", "volume", _US_GALLON / 128, ("fluid ounce", "fluid ounces", "floz")),
    ("tbsp", "volume", _US_GALLON / 256, ("tablespoon", "tablespoons")),
    ("tsp", "volume", _US_GALLON / 768, ("teaspoon", "teaspoons")),
    ("ft3", "volume", _FOOT**3, ("cubic foot", "cubic feet")),
    ("in3", "volume", _INCH**3, ("cubic inch", "cubic inches")),
    # speed (metre per second)
    ("m/s", "speed", 1.0, ("meters per second", "metres per second", "mps")),
    ("km/h", "speed", 1000 / 3600, ("kph", "kmh", "kilometers per hour", "kilometres per hour")),
    ("mph", "speed", _MILE / 3600, ("miles per hour", "mi/h")),
    ("kn", "speed", 1852 / 3600, ("knot", "knots", "kt")),
    ("ft/s", "speed", _FOOT, ("feet per second", "fps")),
    # time (second)
    ("s", "time", 1.0, ("sec", "secs", "second", "seconds")),
    ("ms", "time", 1e-3, ("millisecond", "milliseconds")),
    ("us", "time", 1e-6, ("µs", "microsecond", "microseconds")),
    ("ns", "time", 1e-9, ("nanosecond", "nanoseconds")),
    ("min", "time", 60.0, ("mins", "minute", "minutes")),
    ("h", "time", 3600.0, ("hr", "hrs", "hour", "hours")),
    ("day", "time", 86400.0, ("d", "days")),
    ("week", "time", 604800.0, ("wk", "weeks")),
    # Julian year (365.25 days) and a twelfth of it, the usual conversion convention.
    ("month", "time", 2629800.0, ("months",)),
    ("year", "time", 31557600.0, ("yr", "yrs", "years")),
    # data (byte)
    ("bit", "data", 0.125, ("bits",)),
    ("B", "data", 1.0, ("byte", "bytes")),
    ("kB", "data", 1e3, ("kilobyte", "kilobytes", "kb")),
    ("MB", "data", 1e6, ("megabyte", "megabytes", "mb")),
    ("GB", "data", 1e9, ("gigabyte", "gigabytes", "gb")),
    ("TB", "data", 1e12, ("terabyte", "terabytes", "tb")),
    ("PB", "data", 1e15, ("petabyte", "petabytes", "pb")),
    ("KiB", "data", 1024.0, ("kibibyte", "kibibytes", "kib")),
    ("MiB", "data", 1024.0**2, ("mebibyte", "mebibytes", "mib")),
    ("GiB", "data", 1024.0**3, ("gibibyte", "gibibytes", "gib")),
    ("TiB", "data", 1024.0**4, ("tebibyte", "tebibytes", "tib")),
    ("kbit", "data", 125.0, ("kilobit", "kilobits", "kbps")),
    ("Mbit", "data", 125e3, ("megabit", "megabits", "mbps")),
    ("Gbit", "data", 125e6, ("gigabit", "gigabits", "gbps")),
    # area (square metre)
    ("m2", "area", 1.0, ("square meter", "square meters", "square metre", "square metres")),
    ("km2", "area", 1e6, ("square kilometer", "square kilometers", "square kilometres")),
    ("cm2", "area", 1e-4, ("square centimeter", "square centimeters")),
    ("mm2", "area", 1e-6, ("square millimeter", "square millimeters")),
    ("ha", "area", 1e4, ("hectare", "hectares")),
    ("acre", "area", 4046.8564224, ("acres", "ac")),
    ("ft2", "area", _FOOT**2, ("square foot", "square feet", "sqft")),
    ("in2", "area", _INCH**2, ("square inch", "square inches")),
    ("yd2", "area", _YARD**2, ("square yard", "square yards")),
    ("mi2", "area", _MILE**2, ("square mile", "square miles")),
]

# Temperatures: kelvin = value * factor + offset.
_TEMPERATURES: list[tuple[str, float, float, tuple[str, ...]]] = [
    ("°C", 1.0, 273.15, ("c", "celsius", "centigrade", "degc", "degrees celsius")),
    ("°F", 5 / 9, 273.15 - 32 * 5 / 9, ("f", "fahrenheit", "degf", "degrees fahrenheit")),
    ("K", 1.0, 0.0, ("k", "kelvin", "kelvins")),
    ("°R", 5 / 9, 0.0, ("r", "rankine", "degr", "degrees rankine")),
]

# Spellings whose case carries meaning (bits vs bytes); looked up before lowercasing.
_CASE_SENSITIVE: dict[str, str] = {"Mb": "Mbit", "Gb": "Gbit", "Kb": "kbit", "b": "bit"}

UNITS: dict[str, Unit] = {}
"""Canonical symbol → unit."""

_ALIASES: dict[str, str] = {}

for _sym, _dim, _factor, _aliases in _TABLE:
    UNITS[_sym] = Unit(_sym, _dim, _factor)
    for _name in (_sym, *_aliases):
        _ALIASES[_name.lower()] = _sym
for _sym, _factor, _offset, _aliases in _TEMPERATURES:
    UNITS[_sym] = Unit(_sym, "temperature", _factor, _offset)
    for _name in (_sym, *_aliases):
        _ALIASES[_name.lower()] = _sym

DIMENSIONS: tuple[str, ...] = tuple(dict.fromkeys(u.dimension for u in UNITS.values()))
"""The dimensions the table knows."""


def _known_units(dimension: str | None = None) -> str:
    dims = [dimension] if dimension else list(DIMENSIONS)
    parts = []
    for d in dims:
        symbols = ", ".join(u.symbol for u in UNITS.values() if u.dimension == d)
        parts.append(f"{d}: {symbols}")
    return "; ".join(parts)


def parse_unit(name: str) -> Unit:
    """Look a unit up by symbol, name or common spelling.

    Args:
        name: E.g. ``"km"``, ``"miles"``, ``"°F"``, ``"square feet"``, ``"MiB"``.

    Raises:
        ToolError: For an unknown unit; the message lists the known ones.
    """
    if not isinstance(name, str) or not name.strip():
        raise ToolError("missing unit name")
    if len(name) > MAX_UNIT_CHARS:
        raise ToolError(f"unit name too long (max {MAX_UNIT_CHARS} chars)")
    raw = name.strip()
    if raw in _CASE_SENSITIVE:
        return UNITS[_CASE_SENSITIVE[raw]]
    key = re.sub(r"\s+", " ", raw.lower().replace("²", "2").replace("³", "3").replace("^", ""))
    bare = re.sub(r"^(?:degrees?|deg) ", "", key.replace("°", "")).strip()
    candidates = [
        key,
        bare,
        re.sub(r"^(?:sq|square) (.+)$", r"\g<1>2", bare),
        re.sub(r"^cubic (.+)$", r"\g<1>3", bare),
        bare.replace(" ", ""),
    ]
    symbol = next((_ALIASES[c] for c in candidates if c in _ALIASES), None)
    if symbol is None:
        raise ToolError(f"unknown unit {raw!r}. Known units — {_known_units()}")
    return UNITS[symbol]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` between two units of the same dimension.

    Raises:
        ToolError: Unknown or incompatible units, a non-finite or huge value, or a
            temperature below absolute zero.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"value must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        raise ToolError(f"value must be a finite number below {MAX_ABS_VALUE:g} in magnitude")
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    if src.dimension != dst.dimension:
        raise ToolError(
            f"cannot convert {src.dimension} ({src.symbol}) to {dst.dimension} ({dst.symbol}). "
            f"Known units — {_known_units(src.dimension)}"
        )
    base = value * src.factor + src.offset
    if src.dimension == "temperature" and base < -1e-9:
        raise ToolError(f"{value:g} {src.symbol} is below absolute zero")
    return (base - dst.offset) / dst.factor


def _round_sig(x: float, digits: int = 10) -> float | int:
    r = float(f"{x:.{digits}g}")
    return int(r) if r.is_integer() and abs(r) < 1e15 else r


def _run(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    raw = args.get("value")
    if raw is None:
        raise ToolError("missing 'value' (the number to convert)")
    if isinstance(raw, str):
        try:
            raw = float(raw.replace(",", "").strip())
        except ValueError:
            raise ToolError(f"value must be a number, got {str(raw)[:40]!r}") from None
    from_unit, to_unit = args.get("from_unit"), args.get("to_unit")
    if not isinstance(from_unit, str) or not isinstance(to_unit, str):
        raise ToolError("'from_unit' and 'to_unit' must be unit names such as 'km' or 'mi'")
    result = convert(raw, from_unit, to_unit)
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    value = _round_sig(result)
    return {
        "value": value,
        "unit": dst.symbol,
        "dimension": dst.dimension,
        "text": f"{_round_sig(raw)} {src.symbol} = {value} {dst.symbol}",
    }


_NUMBER = r"(-?\d[\d,]*(?:\.\d+)?)"
# "convert 26.2 miles to kilometres", "what is 100 degrees fahrenheit in celsius"
_CONVERT_TO = re.compile(
    rf"^(?:convert |what is |what's |how much is |how far is |how long is )?{_NUMBER} (.+?) "
    r"(?:to|in|into|in to|as) (.+)$"
)
# "how many centimetres are in 5 feet", "how many pounds is 70 kilograms"
_HOW_MANY = re.compile(
    rf"^how (?:many|much) (.+?) (?:are there in|are in|is there in|in|is|are) {_NUMBER} (.+)$"
)


def task_conversion(task: str) -> dict[str, Any] | None:
    """The task itself as ``convert_units`` arguments, when it is a plain conversion.

    "convert 26.2 miles to kilometres", "how many centimetres are in five feet": a
    question that is nothing but a conversion is run before the model's first step
    (a slow model saves writing the call). Anything the unit tool cannot read
    gives ``None``.

    Args:
        task: The task text.

    Returns:
        ``{"value", "from_unit", "to_unit"}`` or ``None``.
    """
    if not isinstance(task, str) or len(task) > 200:
        return None
    # Spoken tasks write small numbers as words: "how many hours are in two weeks".
    text = number_words_to_digits(" ".join(task.lower().replace("?", " ").split()).strip(" .!"))
    match = _CONVERT_TO.match(text)
    if match is not None:
        raw, from_unit, to_unit = match.groups()
    else:
        match = _HOW_MANY.match(text)
        if match is None:
            return None
        to_unit, raw, from_unit = match.groups()
    try:
        value = float(raw.replace(",", ""))
        convert(value, from_unit, to_unit)
    except (ToolError, ValueError):
        return None
    number: float | int = int(value) if value.is_integer() else value
    return {"value": number, "from_unit": from_unit, "to_unit": to_unit}


def units_tool() -> Tool:
    """The ``convert_units`` tool for the background agent."""
    return Tool(
        name="convert_units",
        description=(
            "Convert a quantity between units of length, mass, volume, temperature, speed, "
            "time, data size or area (e.g. 5 km to mi, 72 °F to °C, 3 GiB to MB)."
        ),
        properties={
            "value": {"type": "number", "description": "The quantity to convert."},
            "from_unit": {"type": "string", "description": "Unit of the value, e.g. 'km'."},
            "to_unit": {"type": "string", "description": "Target unit, e.g. 'mi'."},
        },
        required=["value", "from_unit", "to_unit"],
        fn=_run,
    )
