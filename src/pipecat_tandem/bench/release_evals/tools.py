#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The release-eval scenarios' tools, as background tools, and the bot's services.

pipecat's async-tool scenarios assume a bot with ``get_current_weather`` (75 °F in
San Francisco, after a delay) and ``write_report`` (about 30 s of work that can be
cancelled). In the tandem these are the *background's* tools: the interaction
model delegates the request, the background model calls the tool.

:func:`build` is a ``TANDEM_BOT_SERVICES`` builder: the preset services (the
embedded default, or the specs given) with these two tools next to the built-in
offline ones::

    TANDEM_BOT_SERVICES=pipecat_tandem.bench.release_evals.tools:build python -m pipecat_tandem.bot
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from pipecat_tandem.background.tools.base import Tool, ToolEnv, ToolError

#: How long the weather look-up takes (the scenarios' "after a delay").
WEATHER_DELAY_S = 2.0
#: How long a report takes to write (the scenarios' "~30 s").
REPORT_S = 30.0
#: The fixed readings: a stand-in for a weather service, as in pipecat's examples.
_FAHRENHEIT = {"san francisco": (75, "sunny"), "london": (59, "cloudy"), "tokyo": (68, "rainy")}
#: Names of the tools this module adds (the adapter maps their calls).
EVAL_TOOL_NAMES = ("get_current_weather", "write_report")


def _get_current_weather(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    city = str(args.get("location", "")).split(",")[0].strip().lower()
    unit = str(args.get("format", "fahrenheit")).lower()
    if unit not in ("fahrenheit", "celsius"):
        raise ToolError("format must be fahrenheit or celsius")
    # The look-up's latency is the point of the async scenarios: the result has
    # to land after the conversation has moved on.
    time.sleep(WEATHER_DELAY_S)
    if city not in _FAHRENHEIT:
        raise ToolError(f"no weather for {city or 'that place'}")
    fahrenheit, conditions = _FAHRENHEIT[city]
    value = fahrenheit if unit == "fahrenheit" else round((fahrenheit - 32) * 5 / 9)
    return {
        "location": city.title(),
        "temperature": value,
        "format": unit,
        "conditions": conditions,
    }


def _write_report(args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
    topic = str(args.get("topic", "")).strip()
    if not topic:
        raise ToolError("a report needs a topic")
    # Tools run on a worker thread. Cancelling the job cancels the task awaiting
    # this thread at once, so the result is never used; the stand-in work itself
    # sleeps on, since a tool gets no cancellation signal (ToolEnv has none).
    time.sleep(REPORT_S)
    return {
        "topic": topic,
        "status": "finished",
        "report": f"The report about {topic} is finished: an overview in three sections.",
    }


def eval_tools() -> list[Tool]:
    """The two tools pipecat's async-tool scenarios assume, as background tools."""
    return [
        Tool(
            name="get_current_weather",
            description=(
                "The only source of current weather: call it for any question about the "
                "weather or temperature in a city (you cannot know it otherwise)."
            ),
            properties={
                "location": {"type": "string", "description": "The city, e.g. San Francisco."},
                "format": {
                    "type": "string",
                    "enum": ["celsius", "fahrenheit"],
                    "description": "The temperature unit.",
                },
            },
            required=["location", "format"],
            fn=_get_current_weather,
            # A task about the weather must call it: the 1.5B made a reading up otherwise.
            domain=("weather", "temperature", "forecast"),
            # The reading is what was asked: "sunny" alone does not answer it.
            answer_fields=("temperature",),
        ),
        Tool(
            name="write_report",
            description=(
                "Write a report about a topic (about 30 seconds of work). Any request for a "
                "report must go through this tool; never write the report yourself."
            ),
            properties={"topic": {"type": "string", "description": "What the report is about."}},
            required=["topic"],
            fn=_write_report,
            # A report request must call it: the 1.5B wrote a short report itself otherwise.
            domain=("report",),
        ),
    ]


def build(interaction: str | None = None, background: str | None = None) -> Any:
    """The preset services, with the eval tools beside the built-in background tools.

    Args:
        interaction: Interaction model spec (``None``: the embedded default).
        background: Background model spec (``None``: the embedded default).

    Returns:
        ``TandemServices`` whose background is a ``BackgroundAgent`` over the
        preset's background model with :func:`eval_tools` added.
    """
    from pipecat_tandem.background.agent import BackgroundAgent
    from pipecat_tandem.background.tools import default_tools
    from pipecat_tandem.pipelines import presets

    services = presets.build_services(interaction=interaction, background=background)
    agent = BackgroundAgent(
        llm_factory=services.background_llm_factory, tools=[*default_tools(), *eval_tools()]
    )
    # The session factory hands `background_llm_factory` to build_tandem_pipeline
    # as its `background`, which takes an agent as well as a factory.
    return dataclasses.replace(services, background_llm_factory=agent)  # type: ignore[arg-type]
