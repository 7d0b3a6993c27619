"""Tool choice "required": a task that names a tool's domain must call the tool first."""

from __future__ import annotations

import json

import pytest

from pipecat_tandem.background.agent import BackgroundAgent, tool_choice_for
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobEvent, JobReporter
from pipecat_tandem.background.steps import required_tools, step_schema, tools_for_task
from pipecat_tandem.background.tools import default_tools
from pipecat_tandem.bench.release_evals import tools as eval_tools_module
from pipecat_tandem.bench.release_evals.tools import eval_tools
from tests.support.fake_llm import FakeLLMService, FakeReply

TOOLS = [*default_tools(), *eval_tools()]


@pytest.mark.parametrize(
    ("task", "names"),
    [
        ("Write me a report about sea turtles.", ["write_report"]),
        ("Could I get two reports, one on volcanoes?", ["write_report"]),
        ("What's the weather in San Francisco? You're fair in height.", ["get_current_weather"]),
        ("Is the temperature in Tokyo above 20?", ["get_current_weather"]),
        ("Tell me about the reporter who weathered the storm.", []),
        ("plan a 3-day trip to Rome", []),
    ],
)
def test_required_tools_match_domain_words_whole_and_plural_insensitive(task, names):
    assert [t.name for t in required_tools(task, TOOLS)] == names


def test_a_named_tool_is_offered_even_when_nothing_builtin_fits():
    # Before: a task no built-in rule matched got no tool at all (answer-only schema),
    # so the 1.5B could only write the report itself.
    assert [t.name for t in tools_for_task("Write me a report about sea turtles.", TOOLS)][:1] == [
        "write_report"
    ]


def test_schema_without_the_answer_variant_is_a_required_call():
    [report] = [t for t in TOOLS if t.name == "write_report"]
    variants = step_schema([report], strict=True, answer=False)["properties"]["step"]["anyOf"]
    assert [v["properties"]["tool"]["enum"] for v in variants] == [["write_report"]]
    # No tool to require: the answer stays (a schema nothing can satisfy would hang).
    assert step_schema([], strict=True, answer=False)["properties"]["step"]["anyOf"][0][
        "required"
    ] == ["answer"]


class SchemaLLM(FakeLLMService):
    """Records each step's schema; replies in order."""

    supports_response_schema = True

    def __init__(self, replies: list[str]) -> None:
        self.replies = list(replies)
        self.schemas: list[dict] = []
        super().__init__(lambda m: FakeReply(text=self.replies.pop(0)))

    async def run_inference(self, context, **kwargs):
        self.schemas.append(kwargs.get("response_schema"))
        return await super().run_inference(context, **kwargs)


def _choices(schema: dict) -> list[str]:
    out = []
    for v in schema["properties"]["step"]["anyOf"]:
        out += v["properties"]["tool"]["enum"] if "tool" in v["properties"] else ["answer"]
    return out


async def _run(llm: SchemaLLM, task: str) -> tuple[str, list[JobEvent]]:
    events: list[JobEvent] = []

    async def sink(e: JobEvent) -> None:
        events.append(e)

    agent = BackgroundAgent(llm=llm, tools=TOOLS, prefetch=False)
    packet = ContextPacket(job_id="j", task=task, messages=[{"role": "user", "content": task}])
    return await agent.run(packet, JobReporter("j", sink)), events


async def test_a_report_request_must_call_write_report_then_may_answer(monkeypatch):
    monkeypatch.setattr(eval_tools_module, "REPORT_S", 0.0)
    llm = SchemaLLM(
        [
            json.dumps({"step": {"tool": "write_report", "topic": "sea turtles"}}),
            json.dumps({"step": {"answer": "Your report about sea turtles is finished."}}),
        ]
    )
    answer, events = await _run(llm, "Write me a report about sea turtles.")
    assert _choices(llm.schemas[0]) == ["write_report"]  # the answer is not on offer
    assert "answer" in _choices(llm.schemas[1])  # once called, the model answers
    assert any(e.text.startswith("write_report {") for e in events if e.kind == "progress")
    assert answer == "Your report about sea turtles is finished."


async def test_a_weather_question_heard_wrong_still_calls_the_weather_tool(monkeypatch):
    monkeypatch.setattr(eval_tools_module, "WEATHER_DELAY_S", 0.0)
    llm = SchemaLLM(
        [
            json.dumps(
                {
                    "step": {
                        "tool": "get_current_weather",
                        "location": "San Francisco",
                        "format": "fahrenheit",
                    }
                }
            ),
            json.dumps({"step": {"answer": "It is 75 degrees and sunny in San Francisco."}}),
        ]
    )
    answer, _ = await _run(llm, "What's the weather in San Francisco? You're fair in height.")
    assert _choices(llm.schemas[0]) == ["get_current_weather"]
    assert "75" in answer


async def _no_extra_tools(llm) -> list:
    return []  # as an MCP client's register_tools, with a server that offers none


async def _cloud_job(task: str, brain, **agent_kwargs) -> tuple[str, list[dict]]:
    """One job in pipecat's tool loop on its real OpenAI service, over HTTP to a loopback stand-in.

    ``steps=False`` or MCP-style ``setup_llm`` tools put a job in pipecat's own
    function-calling loop instead of the step protocol.
    """
    from pipecat.services.openai.llm import OpenAILLMService

    from tests.support.fake_openai import FakeOpenAI

    async def sink(e: JobEvent) -> None:
        pass

    async with FakeOpenAI(brain) as server:
        agent = BackgroundAgent(
            llm_factory=lambda: OpenAILLMService(
                api_key="test",
                base_url=server.url,
                settings=OpenAILLMService.Settings(model="cloud"),
            ),
            tools=TOOLS,
            prefetch=False,
            **agent_kwargs,
        )
        packet = ContextPacket(job_id="j", task=task, messages=[{"role": "user", "content": task}])
        answer = await agent.run(packet, JobReporter("j", sink))
    bodies = server.chat_bodies()
    assert not any("response_format" in b for b in bodies)  # the tool loop, not steps
    return answer, bodies


def _weather_brain(body: dict) -> FakeReply:
    if any(m.get("role") == "tool" for m in body["messages"]):
        return FakeReply(text="It is 75 degrees and sunny in San Francisco.")
    if body.get("tool_choice"):  # made to call: it does
        return FakeReply(tool_calls=[("get_current_weather", {"location": "San Francisco"})])
    return FakeReply(text="It is probably about 60 degrees.")  # left free, it guesses


@pytest.mark.parametrize("loop", [{"steps": False}, {"setup_llm": _no_extra_tools}])
async def test_a_cloud_model_on_function_calling_is_made_to_call_the_named_tool(monkeypatch, loop):
    monkeypatch.setattr(eval_tools_module, "WEATHER_DELAY_S", 0.0)
    answer, bodies = await _cloud_job(
        "What's the weather in San Francisco?", _weather_brain, **loop
    )
    assert bodies[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_current_weather"},
    }
    # Once the tool has run the model answers freely (a forced choice would loop).
    assert len(bodies) == 2 and "tool_choice" not in bodies[1]
    assert "75" in answer


async def test_a_cloud_job_naming_no_tool_domain_gets_no_tool_choice():
    answer, bodies = await _cloud_job(
        "Give me three tips for a job interview.",
        lambda body: FakeReply(text="Prepare, be on time and ask questions."),
        steps=False,
    )
    assert "tool_choice" not in bodies[0] and len(bodies) == 1
    assert answer == "Prepare, be on time and ask questions."


def test_tool_choice_names_one_tool_and_requires_a_call_among_several():
    by_name = {t.name: t for t in TOOLS}
    assert tool_choice_for([by_name["write_report"]]) == {
        "type": "function",
        "function": {"name": "write_report"},
    }
    assert tool_choice_for([by_name["write_report"], by_name["get_current_weather"]]) == (
        "required"
    )
    with pytest.raises(ValueError):
        tool_choice_for([])
