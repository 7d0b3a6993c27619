"""The constrained step protocol and the spoken-answer checks (issue 12)."""

from __future__ import annotations

import json

import pytest

from pipecat_tandem.background.agent import AgentError, BackgroundAgent
from pipecat_tandem.background.answer import (
    carries_value,
    shorten,
    unspeakable_reason,
)
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobEvent, JobReporter
from pipecat_tandem.background.steps import (
    AnswerStep,
    StepError,
    ToolStep,
    parse_step,
    step_schema,
    tools_for_task,
)
from pipecat_tandem.background.tools import default_tools
from tests.support.fake_llm import FakeLLMService, FakeReply

TOOLS = default_tools()


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "dates", "arguments": {"operation": "difference"}}',
        "<tool_call>calculator</tool_call>",
        "To determine the number of minutes in three and a half days, we can use the dates tool.",
        "Step 1: convert the days to hours.",
        "Here's the calculation: 3.5 times 24 times 60.",
        "**5040** minutes",
        "- Day one: Colosseum\n- Day two: Vatican",
        "I will use the calculator to work it out.",
        "",
        "   ",
    ],
)
def test_unspeakable_answers_are_refused(text):
    assert unspeakable_reason(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Three and a half days is 5,040 minutes.",
        "Christmas this year is on a Friday.",
        "Keep a fixed bedtime, avoid screens before bed, and keep the room cool.",
        "I couldn't find that in your notes.",
        "Day one, the Colosseum; day two, the Vatican; day three, Trastevere.",
    ],
)
def test_plain_answers_pass(text):
    assert unspeakable_reason(text) is None


def test_carries_value_exact_and_rounded():
    assert carries_value("It is 5,040 minutes.", 5040)
    assert carries_value("About 3.14.", 3.14159)
    assert carries_value("Roughly 42.16 kilometres.", 42.1648128)
    assert not carries_value("About 3.", 3.14159)
    assert not carries_value("It is 5041 minutes.", 5040)
    assert not carries_value("No number here.", 7)


def test_shorten_keeps_whole_sentences():
    text = "The answer is 12. " + "This sentence goes on and on " * 5 + "."
    assert shorten(text) == "The answer is 12."
    assert len(shorten("word " * 50).split()) == 30


def test_schema_offers_each_tool_and_the_answer():
    schema = step_schema(TOOLS)
    variants = schema["properties"]["step"]["anyOf"]
    names = [v["properties"].get("tool", {}).get("enum", ["answer"])[0] for v in variants]
    assert names == [t.name for t in TOOLS] + ["answer"]
    strict = step_schema(TOOLS, strict=True)["properties"]["step"]["anyOf"]
    for v in strict:
        assert set(v["required"]) == set(v["properties"]) and v["additionalProperties"] is False


def test_parse_step():
    assert parse_step('{"step": {"tool": "calculator", "expression": "2*3"}}', TOOLS) == ToolStep(
        "calculator", {"expression": "2*3"}
    )
    assert parse_step('{"answer": " Six. "}', TOOLS) == AnswerStep("Six.")
    for bad in ["", "not json", "[1]", '{"tool": "rm_rf"}', '{"answer": ""}', None]:
        with pytest.raises(StepError):
            parse_step(bad, TOOLS)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("give me three tips for a job interview", []),
        ("plan a 3-day trip to Rome", []),
        ("how many minutes are in three and a half days", ["calculator", "convert_units"]),
        ("what day of the week is Christmas", ["dates", "calculator"]),
        ("what is 17 percent of 2340", ["calculator", "convert_units"]),
    ],
)
def test_tools_for_task(task, expected):
    assert [t.name for t in tools_for_task(task, TOOLS)][: len(expected) or None] == expected


class SchemaLLM(FakeLLMService):
    """A fake that enforces nothing but records the schemas it was asked to follow."""

    supports_response_schema = True

    def __init__(self, replies):
        self.replies = list(replies)
        self.schemas = []
        self.prompts = []
        super().__init__(lambda m: FakeReply(text=self.replies.pop(0)))

    async def run_inference(self, context, **kwargs):
        self.schemas.append(kwargs.get("response_schema"))
        self.prompts.append(list(context.get_messages()))
        return await super().run_inference(context, **kwargs)


def step(**fields):
    return json.dumps({"step": fields})


async def run(llm, task, **kwargs):
    events: list[JobEvent] = []

    async def sink(e):
        events.append(e)

    agent = BackgroundAgent(llm=llm, tools=TOOLS, prefetch=False, **kwargs)
    packet = ContextPacket(job_id="j", task=task, messages=[{"role": "user", "content": task}])
    return await agent.run(packet, JobReporter("j", sink)), events


async def test_tool_step_then_answer_runs_the_real_tool():
    llm = SchemaLLM(
        [
            step(tool="calculator", expression="3.5 * 24 * 60"),
            step(answer="Three and a half days is 5,040 minutes."),
        ]
    )
    answer, events = await run(llm, "how many minutes are in three and a half days")
    assert answer == "Three and a half days is 5,040 minutes."
    assert any("5040" in e.text for e in events if e.kind == "progress")
    assert '"value": 5040' in llm.prompts[1][-1]["content"]


async def test_a_plan_is_refused_and_asked_again():
    llm = SchemaLLM([step(answer="Step 1: think about it."), step(answer="Go to bed at ten.")])
    answer, _ = await run(llm, "give me a tip to sleep better")
    assert answer == "Go to bed at ten."
    assert llm.schemas[0]["properties"]["step"]["anyOf"][0]["required"] == ["answer"]


async def test_a_miscopied_number_becomes_the_tool_value():
    llm = SchemaLLM(
        [
            step(tool="calculator", expression="1234 * 5678"),
            step(answer="It is 7006000."),
            step(answer="It is 7000000."),
        ]
    )
    answer, _ = await run(llm, "what is 1234 times 5678")
    assert answer == "The answer is 7,006,652."


async def test_garbage_twice_fails_honestly():
    llm = SchemaLLM(["", "{not json"])
    with pytest.raises(AgentError):
        await run(llm, "what is 2 plus 2")


async def test_running_out_of_steps_fails():
    llm = SchemaLLM([step(tool="calculator", expression="1+1")] * 3)
    with pytest.raises(AgentError, match="no answer after 3 steps"):
        await run(llm, "what is 1 plus 1", max_steps=3)


async def test_free_tool_loop_refuses_a_narrated_plan():
    llm = FakeLLMService(lambda m: FakeReply(text="To determine this, we can use the dates tool."))
    with pytest.raises(AgentError, match="a plan"):
        await run(llm, "how many days until Christmas")


def test_json_end_scanner_stops_at_the_closing_brace_not_inside_strings():
    from pipecat_tandem.models.local_llm import _JsonEnd

    scanner = _JsonEnd()
    chunks = ['{"step": {"answer": "a } brace', ' and \\" quote"', "}", "}", "\n\n"]
    ends = [scanner.feed(c) for c in chunks]
    assert ends == [False, False, False, True, False]
