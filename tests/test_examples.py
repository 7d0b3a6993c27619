"""Each example runs: the server example serves, the custom pipeline delegates and
delivers, the LiveKit example parses its room and credentials."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.transports.webrtc_server import TandemServer
from tests.support.fake_llm import FakeLLMService, FakeReply
from tests.support.fake_services import FakeSessionFactory, FakeSTTService, FakeTTSService
from tests.support.media import TestPeer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_join_call_serves_the_page():
    join_call = load("join_call")
    server = await join_call.serve(FakeSessionFactory(), port=0)
    try:
        assert await server.wait_warm()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.port}/healthz") as r:
                assert r.status == 200
            async with http.get(f"http://127.0.0.1:{server.port}/") as r:
                assert "pipecat-tandem" in await r.text()
    finally:
        await server.stop()


@pytest.mark.e2e
async def test_custom_pipeline_delegates_and_weaves_the_result_in(tmp_path):
    custom = load("custom_pipeline")
    logs: list[EventLog] = []
    jobs: list[str] = []

    class Factory:
        async def warm(self, progress):
            return {}

        async def create_worker(self, transport: Any, session: Any):
            log = EventLog(session.clock, path=session.record_path)
            logs.append(log)
            worker, delegation = custom.build_worker(
                transport=transport,
                interaction_llm=FakeLLMService(lambda m: FakeReply(text="Noted.")),
                background_llm_factory=lambda: FakeLLMService(
                    lambda m: FakeReply(text="Six times seven is 42.")
                ),
                stt=FakeSTTService(),
                tts=FakeTTSService(),
                event_log=log,
            )

            @transport.event_handler("on_client_connected")
            async def _go(transport: Any, client: Any) -> None:
                jobs.append(await delegation.delegate("what is 6 times 7"))

            return worker

    server = TandemServer(factory=Factory(), port=0, record_dir=tmp_path)
    await server.start()
    await server.wait_warm()
    peer = TestPeer(f"http://127.0.0.1:{server.port}", pcm=b"", video=False)
    try:
        await peer.connect()
        for _ in range(150):
            if logs and logs[0].of_kind("delivered"):
                break
            await asyncio.sleep(0.1)
        delivered = logs[0].of_kind("delivered")
        assert delivered and jobs[0] in delivered[0]["job_ids"], logs[0].events
        for _ in range(50):
            if peer.tandem_messages("delivery"):
                break
            await asyncio.sleep(0.1)
        assert peer.tandem_messages("delivery")[0]["job_ids"] == [jobs[0]]
    finally:
        await peer.close()
        await server.stop()
    lines = [json.loads(x) for x in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    assert any(e["kind"] == "delegated" for e in lines)


def test_livekit_example_reads_room_and_credentials(capsys):
    example = load("livekit_room")
    env = {"LIVEKIT_URL": "wss://lk.example", "LIVEKIT_TOKEN": "tok"}
    config = example.config_from_args(["--room", "standup"], env=env)
    assert (config.url, config.room, config.access_token()) == (
        "wss://lk.example",
        "standup",
        "tok",
    )
    with pytest.raises(SystemExit) as info:
        example.config_from_args(["--room", "standup"], env={})
    assert info.value.code == 2 and "URL" in capsys.readouterr().err


def test_bot_example_is_the_runner_bot():
    import inspect

    from pipecat_tandem import bot as tandem_bot

    example = load("bot")
    assert example.bot is tandem_bot.bot
    assert inspect.iscoroutinefunction(example.bot)
    assert "create_transport" in inspect.getsource(tandem_bot.bot)
