"""``tandem worker`` and ``tandem run --redis``: bad input in one line, a real worker process end to end."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipecat_tandem import cli
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.remote import RedisDeployment, RedisRunner
from tests.support.redis_server import _free_port, redis_server

TANDEM = str(Path(sys.executable).with_name("tandem"))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["worker"], "--redis"),
        (["worker", "--redis", "http://127.0.0.1:6379"], "not a Redis URL"),
        (["worker", "--redis", "redis://127.0.0.1:6379", "--concurrency", "0"], "1..64"),
        (["worker", "--redis", "redis://127.0.0.1:6379", "--concurrency", "two"], "integer"),
        (["worker", "--redis", "redis://h", "--deployment", "a b"], "deployment name"),
        (["worker", "--redis", "redis://h", "--dead-after", "0"], "seconds"),
        (["run", "--redis", "redis://"], "no host"),
    ],
)
def test_bad_flags_exit_with_code_2_and_say_why(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and message in err


@pytest.mark.parametrize("command", ["worker", "run"])
def test_unreachable_redis_at_start_is_one_line_and_exit_1(command, capsys):
    url = f"redis://127.0.0.1:{_free_port()}"
    assert cli.main([command, "--redis", url, "--background", "openai:x"]) == 1
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("tandem:")]
    assert lines == [lines[0]] and lines[0].startswith(
        f"tandem: cannot start: cannot reach Redis at {url}"
    )


def test_tandem_worker_process_runs_a_job_and_stops_on_sigterm():
    """The real console script; its model is an unreachable server, so the job fails honestly."""
    with redis_server() as server:
        model = f"openai-compatible:http://127.0.0.1:{_free_port()}/v1#m"
        proc = subprocess.Popen(
            [TANDEM, "worker", "--redis", server.url, "--deployment", "cli", "--name", "cliw",
             "--background", model],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            lines: list[str] = []
            while not any("serving deployment 'cli'" in x for x in lines):
                line = proc.stderr.readline()
                assert line, f"worker exited: {lines}"
                lines.append(line)
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained

            async def one_job() -> list:
                from pipecat.utils.asyncio.task_manager import TaskManager

                events: list = []

                async def sink(event) -> None:
                    events.append(event)

                runner = RedisRunner(deployment=RedisDeployment(server.url, "cli"))
                await runner.start(task_manager=TaskManager(), sink=sink)
                await runner.submit(ContextPacket(job_id="job-1", task="what is the weather"))
                deadline = time.monotonic() + 20
                while not any(e.kind in ("result", "error") for e in events):
                    assert time.monotonic() < deadline, events
                    await asyncio.sleep(0.05)
                await runner.close()
                return events

            events = asyncio.run(one_job())
            assert [e.kind for e in events][0] == "started"
            assert events[-1].kind == "error" and "Connection" in events[-1].text
            proc.terminate()
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
            proc.wait(timeout=5)


def test_run_with_redis_gives_each_call_its_own_remote_runner():
    from types import SimpleNamespace

    from pipecat_tandem.transports.tandem_session import TandemSessionFactory

    deployment = RedisDeployment("redis://127.0.0.1:6379", "calls")
    factory = TandemSessionFactory(remote=deployment)
    services = SimpleNamespace(background_llm_factory=object())
    one, two = factory._background(services), factory._background(services)
    assert isinstance(one, RedisRunner) and isinstance(two, RedisRunner)
    assert one.name != two.name
    assert TandemSessionFactory()._background(services) is services.background_llm_factory


def test_run_with_redis_loads_no_background_model_here(monkeypatch):
    from pipecat_tandem.pipelines import presets

    built = {}

    class Stack:
        def __init__(self, *, interaction_model, background_model):
            built["background_model"] = background_model

        def interaction_llm(self, **kwargs):
            return object()

        def stt(self):
            return object()

        def tts(self):
            return object()

        async def warm(self):
            pass

    monkeypatch.setattr(presets, "LocalStack", Stack)
    services = presets.build_services(
        background="openai:gpt-x", env={}, smart_turn=False, remote_background=True
    )  # no OPENAI_API_KEY needed: the workers hold the background model
    assert built["background_model"] is None
    with pytest.raises(RuntimeError, match="remote workers"):
        services.background_llm_factory()
    presets.build_services(env={}, smart_turn=False, remote_background=True)
    assert built["background_model"] is None
