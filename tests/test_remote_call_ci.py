"""A delegated question answered by a remote worker in a real call (issue 14, part 4).

Three real processes on 127.0.0.1: Debian's ``redis-server``, ``tandem worker``
on the embedded default background model (the 1.5B) and ``tandem run --redis``
(embedded 0.5B, Whisper, TTS; no background model of its own). A real aiortc
caller speaks a multiplication in words with piper's joe voice (not the bot's)
and transcribes what it hears with Whisper base (not the bot's recognizer). The
test holds when the caller heard the right value and the worker's log and the
Redis stream show the job was taken and completed there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from pipecat_tandem.background.remote import RedisDeployment
from pipecat_tandem.bench.caller import CONVERSATIONS, Conversation
from pipecat_tandem.bench.caller.call import Caller
from pipecat_tandem.bench.caller.ears import CallerEars
from pipecat_tandem.bench.caller.grading import TurnResult
from pipecat_tandem.bench.caller.server import tandem_run
from pipecat_tandem.bench.caller.summary import markdown
from pipecat_tandem.bench.caller.voice import CallerVoice
from tests.support.redis_server import redis_server

pytestmark = pytest.mark.slow

TANDEM = str(Path(sys.executable).with_name("tandem"))
DEPLOYMENT = "remote-call"
WORKER = "embedded-worker"
#: "Please work out one thousand two hundred and thirty four times five." -> 6170
(JOB_TURN,) = [
    t for c in CONVERSATIONS for t in c.turns if t.kind == "job" and t.answer == ("6170",)
]


@contextlib.contextmanager
def tandem_worker(url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tandem worker`` on the embedded default background model; stopped at the end."""
    env = {k: v for k, v in os.environ.items() if k != "TANDEM_BACKGROUND"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [TANDEM, "worker", "--redis", url, "--deployment", DEPLOYMENT, "--name", WORKER],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            yield proc
        finally:
            proc.terminate()  # SIGTERM: the worker hands running jobs back and exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
            proc.kill()  # a no-op once it has exited
            proc.wait(5)


async def _until_serving(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while "serving deployment" not in (text := await asyncio.to_thread(log.read_text)):
        assert proc.poll() is None, f"tandem worker exited: {text[-2000:]}"
        assert time.monotonic() < deadline, f"tandem worker not serving: {text[-2000:]}"
        await asyncio.sleep(0.3)


async def _call(url: str, tmp: Path, worker_log: Path) -> list[TurnResult]:
    voice, ears = CallerVoice(steady=True), CallerEars()
    with tandem_worker(url, worker_log) as worker:
        args = ["--redis", url, "--deployment", DEPLOYMENT]
        async with tandem_run(args, log=tmp / "server.log") as base:  # loads while the worker does
            await _until_serving(worker, worker_log, 300.0)
            caller = Caller(base, voice, ears)
            record = await caller.call(Conversation("delegated_on_a_worker", (JOB_TURN,)))
            return caller.grade(record, caller.hear(record))


@pytest.fixture(scope="module")
def call(tmp_path_factory) -> tuple[list[TurnResult], str, dict]:
    tmp = tmp_path_factory.mktemp("remote_call")
    worker_log = tmp / "worker.log"
    with redis_server() as server:
        results = asyncio.run(_call(server.url, tmp, worker_log))
        d = RedisDeployment(server.url, DEPLOYMENT)
        stream = Redis.from_url(server.url).xinfo_stream(d.stream)
    print("\n" + markdown(results))  # shown with -s, and in the report of a failure
    return results, worker_log.read_text(errors="replace"), stream


def test_the_caller_hears_the_workers_answer(call):
    (job,), _, _ = call
    assert job.latency_s is not None and job.on_topic, job.heard  # "On it, ..."
    assert job.answer_spoken, job.heard  # 6170, as heard by the caller's own Whisper
    assert not job.not_an_answer, job.heard


def test_the_job_ran_and_completed_on_the_worker(call):
    _, log, stream = call
    ran = [x for x in log.splitlines() if f"{WORKER}: running job" in x]
    done = [x for x in log.splitlines() if f"{WORKER}: job " in x and x.endswith("completed")]
    assert len(ran) == 1 and len(done) == 1, log[-3000:]
    # The job went through the deployment's stream and was acknowledged and deleted.
    assert stream["entries-added"] == 1 and stream["length"] == 0, stream
