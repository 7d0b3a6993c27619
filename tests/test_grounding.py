"""Grounding a background answer on its tools never turns a right answer into a wrong one."""

import json
from fractions import Fraction

import pytest

from pipecat_tandem.background.agent import AgentError, BackgroundAgent, ground_numbers
from pipecat_tandem.background.answer import date_problem, looks_miscopied, miscopies
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobReporter
from pipecat_tandem.background.tools import ToolEnv, calculator_tool
from tests.support.fake_llm import FakeLLMService, FakeReply


def calc(expression: str, value) -> str:
    return json.dumps({"result": {"expression": expression, "value": value}})


def test_the_issue_repro_keeps_the_right_answer():
    outcome = calculator_tool().call({"expression": "what is 5!"}, ToolEnv())
    assert outcome == {"result": {"expression": "5!", "value": 120}}
    answer = "Five factorial is 120."
    assert ground_numbers(answer, "what is 5!", [json.dumps(outcome)]) == answer


@pytest.mark.parametrize(
    ("answer", "task", "results", "others"),
    [
        # A wrong tool value (the old "5!" → 5) must not overwrite a right answer.
        ("Five factorial is 120.", "what is 5!", [calc("5", 5)], []),
        ("Two plus three factorial is 8.", "what is 2+3!", [calc("2+3", 5)], []),
        # An error result's numbers ("max 300") are not a value.
        ("It is 12.", "x", ['{"error": "factorial argument too large (max 300)"}'], []),
        # The answer states the value; its other numbers are commentary.
        ("It is 7,006,652, roughly 7.01 million.", "1234 times 5678", [calc("1234*5678", 7006652)], []),
        ("It is about 398.", "17% of 2340", [calc("(17/100)*2340", 397.8)], []),
        # A number of another size is another quantity (here the model's next step).
        ("You pay 1,942.20.", "2340 with 17% off", [calc("(17/100)*2340", 397.8)], []),
        ("About 7 million.", "1234 times 5678", [calc("1234*5678", 7006652)], []),
        # Numbers of an earlier calculator call or of another tool are not invented.
        ("It is 55.", "x", [calc("5*11", 55), calc("55*2", 110)], []),
        ("Christmas is in 22 days.", "days to Christmas", [calc("3*7", 21)],
         ['{"result": {"days": 22}}']),
        # One-digit numbers are never "miscopies".
        ("It is 8.", "what is 2+3!", [calc("2+3", 5)], []),
    ],
)  # fmt: skip
def test_grounding_keeps_the_model_answer_when_in_doubt(answer, task, results, others):
    assert ground_numbers(answer, task, results, others) == answer


@pytest.mark.parametrize(
    "answer", ["The result is 7,000,002.", "It is 7,006,625.", "Roughly 7,006,000 in all."]
)
def test_grounding_still_fixes_a_miscopied_number(answer):
    grounded = ground_numbers(answer, "what is 1234 times 5678", [calc("1234 * 5678", 7006652)])
    assert grounded == "The result is 7006652."


def test_looks_miscopied():
    f = Fraction
    assert looks_miscopied(f(7000002), f(7006652))
    assert looks_miscopied(f(24), f(42))  # digits swapped
    assert not looks_miscopied(f(120), f(5))
    assert not looks_miscopied(f(8), f(5))
    assert not looks_miscopied(f(-7006652), f(7006652))
    assert not looks_miscopied(f(7006652), f(7006652))
    assert not miscopies("It is 5,040.", 5040, known=[])


class SchemaLLM(FakeLLMService):
    supports_response_schema = True

    def __init__(self, replies):
        self.replies = list(replies)
        super().__init__(lambda m: FakeReply(text=self.replies.pop(0)))


def step(**fields):
    return json.dumps({"step": fields})


async def run_steps(llm, task):
    async def sink(e):
        pass

    agent = BackgroundAgent(llm=llm, tools=[calculator_tool()], prefetch=False)
    packet = ContextPacket(job_id="j", task=task, messages=[{"role": "user", "content": task}])
    return await agent.run(packet, JobReporter("j", sink))


async def test_step_loop_keeps_a_right_answer_the_tool_value_contradicts():
    # The model fed the calculator the wrong expression, then answered right twice.
    llm = SchemaLLM(
        [
            step(tool="calculator", expression="2+3"),
            step(answer="Two plus three, factorial, is 120."),
            step(answer="It is 120."),
        ]
    )
    assert await run_steps(llm, "what is (2+3) factorial") == "It is 120."


async def test_step_loop_still_replaces_a_twice_miscopied_number():
    llm = SchemaLLM(
        [
            step(tool="calculator", expression="1234 * 5678"),
            step(answer="It is 7006000."),
            step(answer="It is 7000000."),
        ]
    )
    assert await run_steps(llm, "what is 1234 times 5678") == "The answer is 7,006,652."


async def test_step_loop_garbage_twice_still_fails():
    with pytest.raises(AgentError):
        await run_steps(SchemaLLM(["", "{not json"]), "what is 2 plus 2")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("Next Friday is the 4th of December.", None),
        ("Next Friday is December 4.", None),
        ("It is Friday 4 December 2026.", None),
        ("Next Friday is the 7th of December.", "wrong day"),
        ("It is a Monday.", "wrong weekday"),
        ("The date next Friday is 2026-12-07.", "in words"),
        ("That is 2026-12-04.", "in words"),  # right, but a voice reads digits badly
    ],
)
def test_date_answers_must_agree_with_the_date_tool(answer, problem):
    reason = date_problem(answer, "2026-12-04")
    assert (reason is None) if problem is None else (problem in (reason or ""))


def test_date_answers_may_repeat_the_tasks_digit_dates_and_must_say_an_asked_weekday():
    task = "how many days are there between 2026-12-02 and 2027-01-18"
    assert (
        date_problem("From 2026-12-02 it is Friday 4 December.", "2026-12-04", known=[task]) is None
    )
    asks = "what day of the week is Christmas this year"
    assert "weekday" in (date_problem("Christmas is 25 December.", "2026-12-25", task=asks) or "")
    assert date_problem("Christmas is on a Friday.", "2026-12-25", task=asks) is None
