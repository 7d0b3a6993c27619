"""BackgroundAgent and InProcessRunner on a real pipecat pipeline with fake models."""

import asyncio
import re

import pytest
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

from pipecat_tandem.background.agent import BackgroundAgent, render_history
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import InProcessRunner, JobReporter, usable_answer
from pipecat_tandem.background.steps import follow_up_line
from pipecat_tandem.background.tools import calculator_tool
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.virtual_time import run_virtual

PACKET = ContextPacket(job_id="job-1", task="what is 1234 times 5678",
                       messages=[{"role": "user", "content": "what is 1234 times 5678"}])  # fmt: skip


def tool_then_answer(tool, args):
    def respond(messages):
        last = messages[-1]
        if last.get("role") == "tool":
            # Relayed in words, as a spoken answer must be (no JSON).
            return FakeReply(text="It is " + re.sub(r'[{}\[\]"]', "", last["content"]) + ".")
        return FakeReply(text="Let me check.", tool_calls=[(tool, args)])

    return respond


async def _collect(agent, packet=PACKET):
    events = []

    async def sink(e):
        events.append(e)

    answer = await agent.run(packet, JobReporter(packet.job_id, sink))
    return answer, events


def test_agent_runs_the_real_calculator_tool_in_a_pipecat_tool_loop():
    agent = BackgroundAgent(
        llm_factory=lambda: FakeLLMService(
            tool_then_answer("calculator", {"expression": "1234 * 5678"})
        ),
        tools=[calculator_tool()],
        prefetch=False,
    )
    answer, events = run_virtual(_collect(agent))
    assert "7006652" in answer
    notes = [e.text for e in events if e.kind == "progress"]
    assert (
        notes[0] == "thinking"
        and "Let me check." in notes
        and any("calculator" in n for n in notes)
    )


def test_agent_setup_hook_registers_extra_tools_like_mcp():
    async def lookup(params):
        await params.result_callback({"hours": "10:00-17:30"})

    async def setup(llm):
        llm.register_function("museum_hours", lookup)
        return ToolsSchema(standard_tools=[FunctionSchema("museum_hours", "hours", {}, [])])

    seen = []

    def respond(messages):
        seen.append(messages)
        return tool_then_answer("museum_hours", {})(messages)

    agent = BackgroundAgent(llm_factory=lambda: FakeLLMService(respond), setup_llm=setup)
    answer, _ = run_virtual(_collect(agent))
    assert "10:00-17:30" in answer


def test_agent_sees_full_history_with_foreign_tool_calls_as_text():
    msgs = [
        {"role": "system", "content": "persona"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "function": {"name": "delegate", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"job_id": "job-1"}'},
    ]
    out = render_history(msgs, known_tools={"calculator"})
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert "called delegate" in out[1]["content"] and "job-1" in out[2]["content"]
    agent = BackgroundAgent(llm=FakeLLMService(), tools=[calculator_tool()])
    built = agent.build_messages(PACKET, ["round it"])
    assert built[0]["role"] == "system" and built[-1]["content"].startswith("Task: what is 1234")
    assert follow_up_line("round it") in built[-1]["content"]


def test_agent_rejects_bad_configuration():
    with pytest.raises(ValueError):
        BackgroundAgent()
    with pytest.raises(ValueError):
        BackgroundAgent(llm=FakeLLMService(), llm_factory=FakeLLMService)
    with pytest.raises(ValueError, match="duplicate"):
        BackgroundAgent(llm=FakeLLMService(), tools=[calculator_tool(), calculator_tool()])


def test_agent_gives_up_after_too_many_tool_rounds():
    def loop_forever(messages):
        return FakeReply(text="", tool_calls=[("calculator", {"expression": "1+1"})])

    agent = BackgroundAgent(
        llm_factory=lambda: FakeLLMService(loop_forever),
        tools=[calculator_tool()],
        max_tool_rounds=2,
    )
    with pytest.raises(RuntimeError, match="tool rounds"):
        run_virtual(_collect(agent))


@pytest.mark.parametrize(
    "raw,ok", [("  ", False), ("...", False), (None, False), (42, False), (" 7 ", True)]
)
def test_usable_answer(raw, ok):
    assert (usable_answer(raw) is not None) is ok


def test_runner_bounds_concurrency_and_cancels_in_flight_work():
    class Slow:
        def __init__(self):
            self.running = 0
            self.peak = 0

        async def run(self, packet, reporter):
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                await asyncio.sleep(10)
                return f"done {packet.job_id}"
            finally:
                self.running -= 1

    async def scenario():
        from pipecat.utils.asyncio.task_manager import TaskManager, TaskManagerParams

        tm = TaskManager()
        tm.setup(TaskManagerParams(loop=asyncio.get_running_loop()))
        worker = Slow()
        runner = InProcessRunner(worker, max_concurrency=2)
        events = []

        async def sink(e):
            events.append((e.job_id, e.kind, e.text))

        with pytest.raises(RuntimeError):
            await runner.submit(ContextPacket(job_id="early", task="x"))
        await runner.start(task_manager=tm, sink=sink)
        for i in range(4):
            await runner.submit(ContextPacket(job_id=f"j{i}", task="x", deadline_s=25))
        with pytest.raises(ValueError):
            await runner.submit(ContextPacket(job_id="j0", task="x"))
        await asyncio.sleep(1)
        assert worker.running == 2
        assert await runner.cancel("j0") and not await runner.cancel("nope")
        assert not await runner.follow_up("nope", "x") and await runner.follow_up("j1", "more")
        await asyncio.sleep(30)
        await runner.close()
        return worker, events, runner

    worker, events, runner = run_virtual(scenario())
    assert worker.peak == 2
    assert ("j0", "cancelled", "") in events
    results = [e for e in events if e[1] == "result"]
    errors = [e for e in events if e[1] == "error"]
    # j0 is cancelled at 1 s, freeing its slot for j2; j3 waits for j1 (10 s) and finishes at
    # 20 s, inside its 25 s deadline counted from submission.
    assert {e[0] for e in results} == {"j1", "j2", "j3"} and not errors
    assert runner.active_job_ids == set()


def test_prefetch_and_grounding_rescue_a_model_that_skips_the_tool_and_guesses():
    seen = []

    def guesser(messages):
        seen.append(messages)
        return FakeReply(text="The result is 7,000,002.")  # never calls the tool, miscopies

    agent = BackgroundAgent(llm_factory=lambda: FakeLLMService(guesser), tools=[calculator_tool()])
    answer, events = run_virtual(_collect(agent))
    assert answer == "The result is 7006652."
    # The model saw the calculator call and its result in its conversation.
    assert seen[0][-1]["role"] == "tool" and "7006652" in seen[0][-1]["content"]
    notes = [e.text for e in events if e.kind == "progress"]
    assert any(n.startswith("calculator") for n in notes) and any("corrected" in n for n in notes)


def test_grounding_keeps_answers_that_quote_the_tool_or_have_no_numbers():
    from pipecat_tandem.background.agent import ground_numbers

    r = ['{"result": {"expression": "1234 * 5678", "value": 7006652}}']
    assert ground_numbers("1234 times 5678 is 7,006,652.", "what is 1234 times 5678", r).endswith(
        "7,006,652."
    )
    assert ground_numbers("It is sunny.", "weather", r) == "It is sunny."
    assert ground_numbers("About 7 million", "x", []) == "About 7 million"
    # A free-form result is not trusted: its numbers may be anything.
    assert ground_numbers("It is 12.", "x", ["not json 3"]) == "It is 12."


def test_a_right_factorial_answer_is_not_grounded_into_a_wrong_one():
    """Issue 13, defect 5: "what is 5!" gave 5 and grounding replaced "120" with it."""
    seen = []

    def answerer(messages):
        seen.append(messages)
        return FakeReply(text="Five factorial is 120.")

    packet = ContextPacket(job_id="job-f", task="what is 5!",
                           messages=[{"role": "user", "content": "what is 5!"}])  # fmt: skip
    agent = BackgroundAgent(llm_factory=lambda: FakeLLMService(answerer), tools=[calculator_tool()])
    answer, events = run_virtual(_collect(agent, packet))
    assert answer == "Five factorial is 120."
    assert '"value": 120' in seen[0][-1]["content"]  # the prefetch computed 5! itself
    assert not any("corrected" in e.text for e in events if e.kind == "progress")


def test_a_job_loads_no_turn_model(monkeypatch):
    # pipecat's default user-turn strategies load smart-turn (an ONNX session) per
    # aggregator: 40-60 ms on the event loop for every job, a stall at 50 sessions.
    from pipecat.audio.turn.smart_turn import local_smart_turn_v3

    loaded = []
    real_init = local_smart_turn_v3.LocalSmartTurnAnalyzerV3.__init__

    def counting_init(self, *args, **kwargs):
        loaded.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(local_smart_turn_v3.LocalSmartTurnAnalyzerV3, "__init__", counting_init)
    agent = BackgroundAgent(
        llm_factory=lambda: FakeLLMService(
            tool_then_answer("calculator", {"expression": "1234 * 5678"})
        ),
        tools=[calculator_tool()],
        prefetch=False,
    )
    answer, _ = run_virtual(_collect(agent))
    assert "7006652" in answer
    assert loaded == []
