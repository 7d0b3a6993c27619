"""``python -m pipecat_tandem.bot`` under pipecat's own runner, driven by pipecat's own clients.

One bot process (the real runner, the real ``TandemSessionFactory`` and
pipeline, scripted models through ``TANDEM_BOT_SERVICES``) serves the module:

* over the ``/ws`` route pipecat's eval harness uses, with the harness's RTVI
  client transport: a job's lifecycle arrives as ``tandem-job`` server messages,
  a client cancels a job with a ``tandem-cancel-job`` client message, and
  malformed, empty, oversized, unknown and out-of-order messages each get an
  ``error-response`` while the call goes on;
* over WebRTC (``/api/offer``) with an aiortc peer that speaks: the bot answers
  with audio and the same RTVI messages arrive on the data channel.

Start-up that cannot work exits 1 with one line.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipecat_tandem.bot import BotSettings, bot, preflight
from pipecat_tandem.bot_settings import listen_problem
from tests.support.bot_services import GREETING
from tests.support.media import TestPeer, speech_pcm
from tests.support.rtvi_client import RTVITestClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bot_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def bot_url(tmp_path_factory):
    port = _free_port()
    env = _bot_env(TANDEM_BOT_SERVICES="tests.support.bot_services:build")
    cmd = [sys.executable, "-m", "pipecat_tandem.bot", "--host", "127.0.0.1", "--port", str(port)]
    # The bot logs a lot: to a file, never a pipe nobody reads (a full pipe
    # blocks the bot's next write, and with it the whole bot).
    log_path = tmp_path_factory.mktemp("bot") / "bot.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the bot exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the bot did not listen within 60 s")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


async def test_job_lifecycle_and_cancel_over_the_eval_harness_route(bot_url):
    client = RTVITestClient(f"ws://{bot_url}/ws")
    await client.start()
    try:
        await client.send_text("what's the weather in San Francisco?")
        delivered = await client.wait_for(
            lambda: [e for e in client.job_events() if e["event"] == "delivered"], what="delivery"
        )
        job = delivered[0]["job_id"]
        lifecycle = [e["event"] for e in client.job_events(job)]
        assert lifecycle[:2] == ["delegated", "running"] and lifecycle[-2:] == [
            "result_ready",
            "delivered",
        ], lifecycle
        ready = [e for e in client.job_events(job) if e["event"] == "result_ready"][0]
        assert "75 degrees" in ready["text"] and ready["final"] is True
        seqs = [e["seq"] for e in client.job_events()]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # A job that would run for ever, cancelled by the client.
        await client.send_text("write me a report on ducks")
        running = await client.wait_for(
            lambda: [
                e for e in client.job_events() if e["event"] == "running" and "report" in e["task"]
            ],
            what="the report job running",
        )
        report = running[0]["job_id"]
        msg = await client.client_message("tandem-cancel-job", {"job_id": report})
        reply = await client.wait_for(lambda: client.reply_to(msg), what="cancel reply")
        assert reply["type"] == "server-response", reply
        assert reply["data"]["d"] == {
            "type": "tandem-cancel-job",
            "version": 1,
            "job_id": report,
            "status": "cancelled",
        }
        cancelled = await client.wait_for(
            lambda: [e for e in client.job_events(report) if e["event"] == "cancelled"]
        )
        assert cancelled[0]["reason"] == "cancelled by the client"

        # Out of order: the same job again, now ended.
        msg = await client.client_message("tandem-cancel-job", {"job_id": report})
        reply = await client.wait_for(lambda: client.reply_to(msg))
        assert reply["type"] == "error-response" and "already ended" in reply["data"]["error"]
        await asyncio.sleep(0.3)
        assert [e["event"] for e in client.job_events(report)].count("cancelled") == 1
        assert not [e for e in client.job_events(report) if e["event"] == "result_ready"]
    finally:
        await client.stop()


async def test_a_second_caller_waits_for_the_first_to_hang_up(bot_url):
    # The embedded models serve one call at a time: a caller who arrives during
    # a call is held (not refused) until the models are free, then served.
    first_caller = RTVITestClient(f"ws://{bot_url}/ws")
    await first_caller.start()
    second_caller = RTVITestClient(f"ws://{bot_url}/ws")
    waiting = asyncio.ensure_future(second_caller.start())
    try:
        await asyncio.sleep(1.0)
        assert not second_caller.ready.is_set()
        await first_caller.stop()
        await asyncio.wait_for(waiting, 15)
        await second_caller.send_text("hello")
        await second_caller.wait_for(
            lambda: any(m.get("type") == "bot-llm-text" for _, m in second_caller.messages)
        )
    finally:
        waiting.cancel()
        await first_caller.stop()
        await second_caller.stop()


BAD_MESSAGES = [
    ({"job_id": "job-404"}, "unknown job"),
    ({}, "missing job_id"),
    (None, "must be an object"),
    ("job-1", "must be an object"),
    ({"job_id": ""}, "job_id is empty"),
    ({"job_id": 12}, "must be a string"),
    ({"job_id": "x" * 10_000}, "too large"),
    ({"job_id": "job-1", "reason": ["no"]}, "reason must be a string"),
]


async def test_bad_client_messages_get_an_error_response_and_the_call_goes_on(bot_url):
    client = RTVITestClient(f"ws://{bot_url}/ws")
    await client.start()
    try:
        for data, words in BAD_MESSAGES:
            msg = await client.client_message("tandem-cancel-job", data)
            reply = await client.wait_for(lambda msg=msg: client.reply_to(msg), what=words)
            assert reply["type"] == "error-response", reply
            assert words in reply["data"]["error"], (words, reply)
        msg = await client.client_message("tandem-shred-everything", {"job_id": "job-1"})
        reply = await client.wait_for(lambda: client.reply_to(msg))
        assert "unknown message type" in reply["data"]["error"]
        # pipecat's own cancel request (its UI-worker protocol) is served too.
        msg = await client.send("ui-cancel-job-group", {"job_id": "job-404"})
        reply = await client.wait_for(lambda: client.reply_to(msg))
        assert reply["type"] == "error-response" and "unknown job" in reply["data"]["error"]
        # Another app's client message is left to the app: no answer from the tandem.
        msg = await client.client_message("my-app-ping", {"x": 1})
        # Not RTVI at all, or an RTVI message without data: pipecat's RTVI processor answers.
        await client.send_raw({"hello": "world"})
        await client.send("client-message", None)
        # The call goes on: a turn is still answered.
        await client.send_text("hello")
        await client.wait_for(
            lambda: any(
                m.get("type") == "bot-llm-text" and GREETING.split()[0] in m["data"]["text"]
                for _, m in client.messages
            ),
            what="the bot's reply",
        )
        assert client.reply_to(msg) is None
    finally:
        await client.stop()


async def test_the_bot_answers_a_spoken_turn_over_webrtc(bot_url):
    pcm = speech_pcm("Hello bot, can you hear me?", tail_silence_s=3.0)
    peer = TestPeer(f"http://{bot_url}", pcm=pcm, video=False)
    try:
        await peer.connect()
        for _ in range(200):
            if peer.stats.loud_frames >= 10:
                break
            await asyncio.sleep(0.1)
        assert peer.stats.loud_frames >= 10, "the bot's answer was not heard"
        rtvi = [m for m in peer.stats.messages if m.get("label") == "rtvi-ai"]
        assert any(m.get("type") == "bot-llm-text" for m in rtvi), [m.get("type") for m in rtvi]
        # A job command over the data channel is answered there too.
        peer.channel.send(
            '{"label":"rtvi-ai","type":"client-message","id":"c1",'
            '"data":{"t":"tandem-cancel-job","d":{"job_id":"job-9"}}}'
        )
        for _ in range(50):
            replies = [m for m in peer.stats.messages if m.get("id") == "c1"]
            if replies:
                break
            await asyncio.sleep(0.1)
        assert replies and replies[0]["type"] == "error-response", replies
    finally:
        await peer.close()


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"TANDEM_INTERACTION": "bogus:model"}, "TANDEM_INTERACTION: unknown model kind"),
        ({"TANDEM_BACKGROUND": "openai"}, "TANDEM_BACKGROUND:"),
        ({"TANDEM_BACKGROUND": "x" * 5000}, "too long"),
        ({"TANDEM_PERCEPTION": "maybe"}, "TANDEM_PERCEPTION must be 1 or 0"),
        ({"TANDEM_BOT_SERVICES": "no colon"}, "import path like"),
        ({"TANDEM_BOT_SERVICES": "no_such_module_here:f"}, "cannot import"),
    ],
)
def test_bad_settings_are_one_sentence(env, words):
    with pytest.raises(ValueError) as info:
        BotSettings.from_env(env).services_builder()
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "env",
    [
        {"TANDEM_INTERACTION": "bogus:model"},
        {"TANDEM_INTERACTION": "openai:gpt-4.1-mini", "OPENAI_API_KEY": ""},
    ],
)
def test_a_start_up_that_cannot_work_exits_1_with_one_line(env):
    done = subprocess.run(
        [sys.executable, "-m", "pipecat_tandem.bot", "--port", str(_free_port())],
        cwd=ROOT,
        env=_bot_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("tandem:")]
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("tandem: cannot start:"), done.stderr[-2000:]


def test_an_unwritable_record_folder_is_found_before_the_server_starts():
    with pytest.raises(ValueError, match="TANDEM_RECORD_DIR /proc/tandem-no: cannot"):
        preflight({"TANDEM_RECORD_DIR": "/proc/tandem-no"})
    assert preflight({"TANDEM_RECORD_DIR": "", "TANDEM_INTERACTION": " "}) == BotSettings()


def test_a_port_the_runner_cannot_listen_on_is_found_before_the_models_load():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert "cannot listen on 127.0.0.1" in str(
            listen_problem(["--host", "127.0.0.1", "--port", str(port)])
        )
    assert "0..65535" in str(listen_problem(["--port", "99999"]))
    assert "must be a number" in str(listen_problem(["--port", ""]))
    assert "does not resolve" in str(listen_problem(["--host", "no.such.host.invalid"]))
    assert listen_problem(["-t", "webrtc", "--host", "127.0.0.1", "--port", "0"]) is None
    assert listen_problem(["--port", "99999", "--help"]) is None


async def test_bot_refuses_what_is_not_runner_arguments():
    with pytest.raises(TypeError, match="RunnerArguments"):
        await bot({"transport": "webrtc"})


async def test_a_session_that_cannot_be_built_closes_its_peer_connection(monkeypatch):
    from pipecat.runner.types import SmallWebRTCRunnerArguments
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

    from pipecat_tandem import bot as bot_module

    class BrokenFactory:
        busy = False

        async def create_worker(self, transport, info):
            raise RuntimeError("the interaction model would not load")

    connection = SmallWebRTCConnection()
    closed: list[bool] = []

    async def disconnect() -> None:
        closed.append(True)

    monkeypatch.setattr(connection, "disconnect", disconnect)
    monkeypatch.setattr(bot_module._models, "_factory", BrokenFactory())
    with pytest.raises(RuntimeError, match="would not load"):
        await bot(SmallWebRTCRunnerArguments(webrtc_connection=connection))
    assert closed == [True]


async def test_pipecats_own_eval_harness_runs_a_scenario_against_the_bot(bot_url):
    # The harness itself (scenario file, EvalScriptSession, its client and
    # matcher), not only its transport: a turn, a delegation seen as a function
    # call, and the result said unprompted at the next gap.
    from pipecat.evals.scenario import EvalScenarioFile
    from pipecat.evals.script_session import EvalScriptSession
    from pipecat.evals.session import EvalSessionParams

    path = ROOT / "tests" / "data" / "evals" / "tandem_delegation_smoke.yaml"
    (scenario,) = EvalScenarioFile.load(path).scenarios
    session = EvalScriptSession.from_scenario(
        scenario, f"ws://{bot_url}/ws", params=EvalSessionParams(default_timeout_ms=10_000)
    )
    result = await session.run()
    assert result.passed, (result.failures, result.debug_log[-25:])
    assert [t.status for t in result.turns] == ["passed"] * 3, result.turns


@pytest.mark.parametrize(("flag", "perceives"), [(None, True), ("1", True), ("0", False)])
async def test_tandem_perception_puts_ingest_and_fusion_in_the_bots_pipeline_or_not(
    flag, perceives
):
    # The bot's own path from the environment (preflight, as main() reads it) to a
    # call's pipeline, with the scripted services: perception by default, right
    # after the transport input; TANDEM_PERCEPTION=0 takes both processors out.
    from pipecat_tandem import bot as bot_module
    from pipecat_tandem.transports.session import SessionInfo
    from tests.test_server_tandem_session import check_perception_stages

    env = {"TANDEM_BOT_SERVICES": "tests.support.bot_services:build"}
    if flag is not None:
        env["TANDEM_PERCEPTION"] = flag
    models = bot_module._Models()
    models.settings = preflight(env)
    factory = await models.factory()
    info = SessionInfo.new(transport_kind="webrtc", record_dir=None, request_data=None)
    check_perception_stages(await factory.create_worker(None, info), perceives)
