"""Scripted services for the runner bot (``TANDEM_BOT_SERVICES=tests.support.bot_services:build``).

The bot's real session factory and pipeline, with the models replaced: the
interaction model delegates a user turn that asks for the weather or a report
and answers anything else with a fixed line; background jobs on the weather
answer after ``WEATHER_DELAY_S``, jobs on a report never finish (until cancelled).
Speech is the fake STT/TTS of the other tests.
"""

from __future__ import annotations

from typing import Any

from pipecat.audio.vad.silero import SileroVADAnalyzer

from pipecat_tandem.bench.fakes import Reply, ScriptedLLM, last_text
from pipecat_tandem.pipelines import presets
from tests.support.fake_services import FakeSTTService, FakeTTSService

WEATHER_DELAY_S = 0.3
GREETING = "Hello there."
WEATHER = "It is 75 degrees and sunny in San Francisco."


def interaction_brain(messages: list[dict[str, Any]]) -> Reply:
    last = messages[-1] if messages else {}
    if last.get("role") != "user":
        # A delivered result is said; a tool's own answer is acknowledged.
        if WEATHER in last_text(messages):
            return Reply(text=WEATHER)
        return Reply(text="On it.")
    text = last_text(messages, "user").lower()
    if "weather" in text:
        return Reply(tool_calls=[("delegate", {"task": "the weather in San Francisco"})])
    if "report" in text:
        return Reply(tool_calls=[("delegate", {"task": "write a long report on ducks"})])
    return Reply(text=GREETING)


def background_brain(messages: list[dict[str, Any]]) -> Reply:
    everything = " ".join(str(m.get("content", "")) for m in messages).lower()
    if "report" in everything:
        return Reply(hang=True)
    return Reply(text=WEATHER, delay_s=WEATHER_DELAY_S)


class _Stack:
    """What ``TandemSessionFactory`` asks of a local stack: fresh services per call."""

    ready = True

    def new_stt(self) -> Any:
        return FakeSTTService()

    def new_tts(self) -> Any:
        return FakeTTSService()

    def interaction_llm(self, *, system_instruction: str | None = None) -> Any:
        return ScriptedLLM(interaction_brain)


def build(interaction: str | None = None, background: str | None = None) -> Any:
    stack = _Stack()

    async def warm() -> None:
        return None

    return presets.TandemServices(
        stt=FakeSTTService(),
        tts=FakeTTSService(),
        interaction_llm=stack.interaction_llm(),
        background_llm_factory=lambda: ScriptedLLM(background_brain),
        vad_analyzer=SileroVADAnalyzer(),
        turn_analyzer=None,
        warm=warm,
        local=stack,  # type: ignore[arg-type]
    )


def build_reporter(interaction: str | None = None, background: str | None = None) -> Any:
    """As :func:`build`, but every spoken turn is heard as a request for a report."""
    services = build(interaction, background)

    class _ReportStack(_Stack):
        def new_stt(self) -> Any:
            return FakeSTTService(transcript="Please write me a report on ducks.")

    services.local = _ReportStack()
    services.stt = FakeSTTService(transcript="Please write me a report on ducks.")
    return services
