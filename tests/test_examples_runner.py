"""The OpenAI examples as pipecat users run them: ``python examples/NAME.py`` under pipecat's
development runner, a session opened by pipecat's eval client on the runner's ``/ws`` route.

Every OpenAI call of the bot (the interaction model, the background model, speech) goes to
a loopback stand-in (``OPENAI_BASE_URL``) with scripted replies: the interaction model
delegates the weather question, the background model calls ``get_current_weather``, then
answers from its result. What is real: the example file, pipecat's runner and its
``create_transport``, pipecat's ``OpenAILLMService`` streaming and tool calling over HTTP,
the tandem's processors, the example's tool handler running in the bot process, and the
job's lifecycle reaching the client as RTVI ``tandem-job`` messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_llm import FakeReply
from tests.support.fake_openai import FakeOpenAI
from tests.support.rtvi_client import RTVITestClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What's the weather in San Francisco?"
_RESULT = re.compile(r"(?:Result|Answer): (.+)")


def brain(body: dict[str, Any]) -> FakeReply:
    """Both models of the examples: the interaction one is gpt-4.1-mini, the background gpt-4.1."""
    messages = body["messages"]
    last = messages[-1]
    text = str(last.get("content") or "")
    if body["model"] == "gpt-4.1":
        offered = [t["function"]["name"] for t in body.get("tools") or []]
        if "get_current_weather" not in offered:
            return FakeReply(text="I have no weather service to ask.")
        results = [m for m in messages if m.get("role") == "tool"]
        if not results:
            arguments = {"location": "San Francisco, CA", "format": "fahrenheit"}
            return FakeReply(tool_calls=[("get_current_weather", arguments)])
        weather = json.loads(results[-1]["content"])
        return FakeReply(
            text=f"It is {weather['temperature']} degrees and {weather['conditions']} there."
        )
    if last.get("role") == "user" and "weather" in text:
        return FakeReply(tool_calls=[("delegate", {"task": text})])
    if last.get("role") == "tool":
        return FakeReply(text="Let me check.")
    if "Background work has finished" in text:
        return FakeReply(text=" ".join(_RESULT.findall(text)) or "It is done.")
    return FakeReply(text="Sure.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(example: str, url: str, log_path: Path) -> tuple[Any, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "OPENAI_"))}
    env.update(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=url)
    argv = [f"examples/{example}.py", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w") as log:  # a file: a pipe nobody reads would stall the bot
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=ROOT, env=env, stdout=log, stderr=log
        )
    for _ in range(600):
        if process.returncode is not None:
            tail = (await asyncio.to_thread(log_path.read_text))[-3000:]
            pytest.fail(f"{example} exited ({process.returncode}): {tail}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return process, f"ws://127.0.0.1:{port}/ws"
        except OSError:
            await asyncio.sleep(0.1)
    process.kill()
    pytest.fail(f"{example} did not listen within 60 s")


def _woven(server: FakeOpenAI) -> list[dict[str, Any]]:
    """The interaction model's requests that weave a finished job's result in."""
    return [
        b
        for b in server.chat_bodies("gpt-4.1-mini")
        if "Background work has finished" in json.dumps(b["messages"])
    ]


@pytest.mark.parametrize("example", ["custom_tool", "custom_pipeline"])
async def test_the_example_answers_a_delegated_question_under_pipecats_runner(example, tmp_path):
    async with FakeOpenAI(brain) as server:
        process, ws = await _serve(example, server.url, tmp_path / "bot.log")
        client = RTVITestClient(ws)
        try:
            await client.start()
            await client.send_text(QUESTION)
            delivered = await client.wait_for(
                lambda: [e for e in client.job_events() if e["event"] == "delivered"],
                timeout_s=30,
                what="a delivered job",
            )
            job = delivered[0]["job_id"]
            ready = [e for e in client.job_events(job) if e["event"] == "result_ready"]
            events = [e["event"] for e in client.job_events(job)]
            # The interaction model is asked to weave the result in at the gap.
            await client.wait_for(lambda: _woven(server), timeout_s=10, what="the weave")
        finally:
            await client.stop()
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    log = await asyncio.to_thread((tmp_path / "bot.log").read_text)
    assert events[0] == "delegated" and events[-1] == "delivered", events
    background = server.chat_bodies("gpt-4.1")
    assert background and QUESTION in json.dumps(background[0]["messages"]), log[-3000:]
    if example == "custom_tool":
        # The background model was offered the example's tool, and the bot ran its handler.
        offered = [t["function"]["name"] for t in background[0].get("tools", [])]
        assert "get_current_weather" in offered, offered
        assert "75 degrees and sunny" in ready[0]["text"], ready
    else:
        assert "no weather service" in ready[0]["text"], ready
