"""The pipecat-user examples do what they say, through their own code.

* ``examples/custom_pipeline.py``: its ``build_worker`` (a plain pipecat pipeline plus the
  tandem's two processors) delegates a user's question and the answer is spoken at the
  next pause, on virtual time with scripted models;
* ``examples/custom_tool.py``: its pipecat function is called by the background model
  through pipecat's own function calling, and the spoken answer carries the tool's value;
* ``examples/cloud_background.py``: its background model is the real pipecat
  ``OpenAILLMService`` talking HTTP to a loopback stand-in for an OpenAI-compatible
  server, which receives the whole conversation; the answer is woven in with the
  example's settings for the offline interaction model (a scripted model stands in for
  the 0.5B; the slow test runs the example's own embedded models, loaded as it loads
  them);
* every example is a pipecat runner bot: a module-level ``async def bot(runner_args)``.

No network beyond 127.0.0.1, nothing downloaded.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pipecat.frames.frames import EndFrame, StartFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.filters.identity_filter import IdentityFilter
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.clock import LoopClock
from pipecat_tandem.observe.event_log import EventLog
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.fake_openai import FakeOpenAI
from tests.support.scenario import FakeSpeechOutput, say, weaving_responder
from tests.support.virtual_time import run_virtual
from tests.test_examples import load

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


class PassThroughTransport:
    """Stands in for the session's transport: frames are queued into the worker directly.

    Like pipecat's transports it hands out one input and one output processor.
    """

    def __init__(self) -> None:
        self._input, self._output = IdentityFilter(), IdentityFilter()

    def input(self) -> IdentityFilter:
        return self._input

    def output(self) -> IdentityFilter:
        return self._output


def turn_params() -> LLMUserAggregatorParams:
    # The script's transcription frames end the user's turn (no VAD or turn model).
    return LLMUserAggregatorParams(
        user_turn_strategies=ExternalUserTurnStrategies(), user_turn_stop_timeout=2.0
    )


async def drive(
    worker: PipelineWorker,
    clock: LoopClock,
    script: list,
    until: float,
    done: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``worker``, queue the script's frames at their times, end it at ``until`` (or once
    ``done()``, checked every 0.1 s after the script)."""
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_w: PipelineWorker, _f: StartFrame) -> None:
        started.set()

    async def feed() -> None:
        await started.wait()
        base = clock.now()
        for t, frame in script:
            await asyncio.sleep(max(0.0, base + t - clock.now()))
            await worker.queue_frame(frame)
        for _ in range(int(until * 10) + 1):
            if done() or clock.now() >= base + until:
                break
            await asyncio.sleep(0.1)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), feed()), until + 60)


def kinds(log: EventLog, kind: str) -> list[dict[str, Any]]:
    return [e for e in log.events if e["kind"] == kind]


#
# examples/custom_pipeline.py
#


def test_custom_pipeline_delegates_and_speaks_the_answer_at_the_pause():
    custom = load("custom_pipeline")

    async def call() -> tuple[EventLog, FakeSpeechOutput, Any]:
        clock = LoopClock()
        clock.now()
        log = EventLog(clock)
        output = FakeSpeechOutput(clock)
        worker, delegation = custom.build_worker(
            transport=PassThroughTransport(),
            interaction_llm=FakeLLMService(
                weaving_responder(lambda text: text if "trip" in text else None), ttft_s=0.3
            ),
            background_llm_factory=lambda: FakeLLMService(
                lambda m: FakeReply(text="Day one the Colosseum, day two the Vatican."),
                ttft_s=3.0,
            ),
            stt=IdentityFilter(),
            tts=output,
            user_params=turn_params(),
            event_log=log,
        )
        await drive(worker, clock, say(0.5, "plan a two-day trip to Rome"), until=15.0)
        return log, output, delegation

    log, output, delegation = run_virtual(call())
    (delegated,) = kinds(log, "delegated")
    assert delegated["task"] == "plan a two-day trip to Rome"
    (delivered,) = kinds(log, "delivered")
    assert delivered["job_ids"] == [delegated["job_id"]]
    spoken = [u.text for u in output.spoken]
    assert spoken[0] == "I'm on it."  # answered at once, before the job is done
    assert any("Colosseum" in text for text in spoken[1:]), spoken
    assert all(not u.interrupted for u in output.spoken)
    assert "delegate" in [s.name for s in delegation.function_schemas()]


#
# examples/custom_tool.py
#


def test_custom_tool_handler_answers_like_a_pipecat_function():
    example = load("custom_tool")
    results: list[Any] = []

    class Params:
        def __init__(self, **arguments: Any) -> None:
            self.arguments = arguments

        async def result_callback(self, result: Any, **_: Any) -> None:
            results.append(result)

    async def calls() -> None:
        await example.get_current_weather(Params(location="San Francisco, CA", format="fahrenheit"))
        await example.get_current_weather(Params(location="London", format="celsius"))
        await example.get_current_weather(Params(location="Atlantis", format="celsius"))

    asyncio.run(calls())
    assert results[0] == {"temperature": 75, "format": "fahrenheit", "conditions": "sunny"}
    assert results[1] == {"temperature": 15, "format": "celsius", "conditions": "cloudy"}
    assert "error" in results[2]
    assert example.WEATHER.required == ["location", "format"]


def test_custom_tool_is_called_by_the_background_model_and_its_value_spoken():
    example = load("custom_tool")
    seen: list[list[dict[str, Any]]] = []

    def background(messages: list[dict[str, Any]]) -> FakeReply:
        seen.append(messages)
        results = [m for m in messages if m.get("role") == "tool"]
        if not results:
            return FakeReply(
                tool_calls=[
                    ("get_current_weather", {"location": "San Francisco", "format": "fahrenheit"})
                ]
            )
        weather = json.loads(results[-1]["content"])
        return FakeReply(
            text=f"It is {weather['temperature']} degrees and {weather['conditions']} there."
        )

    async def call() -> tuple[EventLog, FakeSpeechOutput]:
        from pipecat_tandem import build_tandem_pipeline

        clock = LoopClock()
        clock.now()
        output = FakeSpeechOutput(clock)
        tandem = build_tandem_pipeline(
            interaction_llm=FakeLLMService(
                weaving_responder(lambda text: text if "weather" in text else None), ttft_s=0.3
            ),
            background=example.background_agent(lambda: FakeLLMService(background, ttft_s=1.0)),
            tts=output,
            user_params=turn_params(),
            clock=clock,
        )
        worker = PipelineWorker(tandem.pipeline, cancel_on_idle_timeout=False, enable_rtvi=False)
        await drive(worker, clock, say(0.5, "what's the weather like in San Francisco"), until=20.0)
        return tandem.event_log, output

    log, output = run_virtual(call())
    assert kinds(log, "delegated") and kinds(log, "delivered"), log.events
    # The model was offered the tool, and pipecat ran the example's handler for it.
    tool_messages = [m for m in seen[-1] if m.get("role") == "tool"]
    assert tool_messages and json.loads(tool_messages[-1]["content"])["temperature"] == 75
    spoken = " ".join(u.text for u in output.spoken)
    assert "75 degrees and sunny" in spoken, spoken


#
# Every example is a pipecat runner bot
#


@pytest.mark.parametrize("name", ["bot", "custom_pipeline", "custom_tool", "cloud_background"])
def test_every_example_is_a_runner_bot(name):
    example = load(name)
    assert inspect.iscoroutinefunction(example.bot)
    assert list(inspect.signature(example.bot).parameters) == ["runner_args"]
    source = (EXAMPLES / f"{name}.py").read_text()
    assert 'if __name__ == "__main__":' in source


#
# examples/cloud_background.py
#


ROME = "plan a two-day trip to Rome for me"
ITINERARY = "Day one the Colosseum and the Forum, day two the Vatican museums."


async def cloud_call(
    monkeypatch: pytest.MonkeyPatch, interaction_llm: Any, until: float
) -> tuple[EventLog, FakeSpeechOutput, FakeOpenAI]:
    """The user asks for a plan once; the example's pipeline runs until the plan is spoken."""
    example = load("cloud_background")
    async with FakeOpenAI(ITINERARY) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("BACKGROUND_MODEL", "fake-large")
        clock = LoopClock()
        clock.now()
        output = FakeSpeechOutput(clock, seconds_per_word=0.05)
        tandem = example.build_tandem(
            transport=None,  # frames are queued into the worker directly
            interaction_llm=interaction_llm,
            stt=None,
            tts=output,
            user_params=turn_params(),
            clock=clock,
        )
        worker = PipelineWorker(tandem.pipeline, cancel_on_idle_timeout=False, enable_rtvi=False)
        await drive(
            worker,
            clock,
            say(0.3, ROME),
            until=until,
            done=lambda: any("Colosseum" in u.text and u.end for u in output.spoken),
        )
    return tandem.event_log, output, server


async def test_cloud_background_runs_jobs_on_an_openai_compatible_server(monkeypatch):
    # Stands in for the embedded 0.5B: it only chats; the example's rule router
    # delegates for it, as it does for the real one.
    chat = FakeLLMService(lambda m: FakeReply(text="Sure."), ttft_s=0.2)
    log, output, server = await cloud_call(monkeypatch, chat, until=20.0)
    assert len(kinds(log, "delegated")) == 1 and kinds(log, "delivered"), log.events
    # The job went to the cloud model, with the conversation (the user's words) in it.
    bodies = server.chat_bodies()
    assert bodies and {b["model"] for b in bodies} == {"fake-large"}
    assert "response_format" in bodies[0]  # the agent's constrained steps, as structured output
    assert ROME in json.dumps(bodies[0]["messages"])
    spoken = [u.text for u in output.spoken]
    # Acknowledged at once ("On it, ..."), answered when the job is done.
    assert "Colosseum" not in spoken[0] and "Colosseum" in " ".join(spoken[1:]), spoken


@pytest.mark.slow
async def test_cloud_background_with_the_embedded_interaction_model(monkeypatch):
    """The example as it runs: its local models (0.5B, Whisper, hibari, loaded by the
    example) answer the user at once while the job goes to the loopback cloud model."""
    pytest.importorskip("xllamacpp")
    stack = await load("cloud_background")._local_models()
    assert stack.background_server is None  # that role is the cloud's
    # Bounded: a CPU-only model on a shared machine.
    log, output, server = await cloud_call(monkeypatch, stack.interaction_llm(), until=60.0)
    assert kinds(log, "delegated") and kinds(log, "delivered"), log.events
    assert ROME in json.dumps(server.chat_bodies()[0]["messages"])
    spoken = [u.text for u in output.spoken]
    assert len(spoken) >= 2 and "Colosseum" in " ".join(spoken[1:]), spoken
