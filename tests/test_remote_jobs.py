"""Background jobs on remote workers over Redis (issue 14, part 3), against a real redis-server.

The server is Debian's ``redis-server`` (installed by ``bash scripts/setup``), started
on a free loopback port with persistence off and killed at the end. Every test uses
its own deployment (its own stream and bus channel).
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loguru import logger

from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.remote import RedisDeployment, RedisRunner, check_redis_url
from pipecat_tandem.background.remote.ledger import RemoteJobLedger
from pipecat_tandem.background.remote.redis_runner import LOST, ORPHANED, UNREACHABLE
from pipecat_tandem.background.remote.wire import TrustedSerializer, update_message
from pipecat_tandem.background.runner import JobEvent
from tests.support.redis_server import RedisServer, _free_port, redis_server
from tests.support.remote_worker import make_worker

ROOT = Path(__file__).resolve().parents[1]
_names = itertools.count(1)


@pytest.fixture(scope="module")
def redis() -> RedisServer:
    with redis_server() as server:
        yield server


def _deployment(server: RedisServer) -> RedisDeployment:
    return RedisDeployment(server.url, f"t{next(_names)}-{int(time.time() * 1000) % 100000}")


class Session:
    """A RedisRunner with its events, as a call's delegation processor would hold it."""

    def __init__(self, deployment: RedisDeployment, **kwargs) -> None:
        self.runner = RedisRunner(deployment=deployment, **kwargs)
        self.events: list[tuple[float, JobEvent]] = []

    async def start(self, tm) -> None:
        async def sink(event: JobEvent) -> None:
            self.events.append((time.monotonic(), event))

        await self.runner.start(task_manager=tm, sink=sink)

    def kinds(self, job_id: str) -> list[str]:
        return [e.kind for _, e in self.events if e.job_id == job_id]

    def final(self, job_id: str) -> list[JobEvent]:
        return [
            e
            for _, e in self.events
            if e.job_id == job_id and e.kind in ("result", "error", "cancelled")
        ]

    async def wait_final(self, job_id: str, within: float = 10.0) -> JobEvent:
        return (await self.wait_for(lambda: self.final(job_id), within))[0]

    async def wait_for(self, predicate, within: float = 10.0):
        deadline = time.monotonic() + within
        while not (value := predicate()):
            assert time.monotonic() < deadline, f"timed out; events: {self.events}"
            await asyncio.sleep(0.02)
        return value


def _task_manager():
    from pipecat.utils.asyncio.task_manager import TaskManager

    return TaskManager()


# Pure parts (no loop, no Redis)


def test_ledger_delivers_one_outcome_from_the_current_worker():
    ledger = RemoteJobLedger("s1")
    job = ledger.add("job-1", now=0.0, deadline_s=30)
    assert job.wire_id == "s1:job-1"
    assert ledger.report("s1:job-1", "w1", "started").deliver
    assert not ledger.report("s1:job-1", "w1", "started").deliver  # repeated start
    assert ledger.report("s1:job-1", "w1", "progress").deliver
    verdict = ledger.report("s1:job-1", "w2", "started")  # w1 died, w2 took over
    assert verdict.rerun and not verdict.deliver and job.runs == 2
    assert not ledger.report("s1:job-1", "w1", "result").deliver  # the old worker, late
    assert ledger.report("s1:job-1", "w2", "result").deliver
    assert not ledger.report("s1:job-1", "w2", "result").deliver  # never twice
    assert not ledger.report("other:job-1", "w2", "result").deliver
    assert ledger.end("job-1") is None and ledger.active == []
    with pytest.raises(ValueError):
        ledger.add("job-1", now=1.0, deadline_s=30)
    assert ledger.add("job-2", now=0.0, deadline_s=5) in ledger.expired(5.0)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://host",
        "redis://",
        "redis://host:99999",
        "redis://host:0",
        "redis://h/x",
        "unix://",
    ],
)
def test_bad_redis_urls_are_refused_in_one_sentence(url):
    with pytest.raises(ValueError, match="Redis|host|port|database|socket"):
        check_redis_url(url)
    assert check_redis_url(" redis://127.0.0.1:6379/0 ") == "redis://127.0.0.1:6379/0"
    with pytest.raises(ValueError, match="deployment name"):
        RedisDeployment("redis://h", "has space")
    assert RedisDeployment("redis://:secret@h:1", "x").safe_url == "redis://:***@h:1"


def test_serializer_refuses_foreign_types_without_importing_them():
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
    try:
        s = TrustedSerializer(channel="tandem:x:bus")
        ok = s.serialize(update_message("w1", "s1", "s1:job-1", "progress", "half way"))
        assert s.deserialize(ok).update == {"kind": "progress", "text": "half way"}
        forged = (
            b'{"__type__":"pipecat.bus.messages.BusJobUpdateMessage","__data__":{"source":"w",'
            b'"job_id":"j","update":{"x":{"__type__":"this.Zen","__data__":{}}}}}'
        )
        assert "this" not in sys.modules
        assert s.deserialize(forged) is None and "this" not in sys.modules
        assert s.deserialize(b"\xff not json") is None
        assert s.deserialize(b'{"plain": 1}') is None
        assert s.refused == 3
    finally:
        logger.remove(sink)
    assert any("this.Zen" in line and "refused" in line for line in seen)


# With a real Redis server and workers in this process (separate clients and buses)


async def test_job_round_trip_streams_progress_and_the_packet_crosses(redis):
    d = _deployment(redis)
    tm = _task_manager()
    worker, journal = make_worker(redis.url, d.name, "w1", heartbeat_s=0.3, dead_after_s=1.0)
    await worker.start(tm)
    session = Session(d)
    await session.start(tm)
    try:
        packet = ContextPacket(
            job_id="job-1",
            task="find the vet's hours",
            messages=[{"role": "user", "content": "my cat is called Miso"}],
        )
        await session.runner.submit(packet)
        final = await session.wait_final("job-1")
        assert final.kind == "result"
        assert final.text == "Worker w1: find the vet's hours (the cat is Miso)."
        assert session.kinds("job-1")[:2] == ["started", "progress"]
        assert session.runner.active_job_ids == set()
        assert journal.lines == ["begin job-1", "done job-1"]
        assert await worker._redis.xlen(d.stream) == 0  # acknowledged and deleted
    finally:
        await session.runner.close()
        await worker.stop()


async def test_cancel_crosses_the_wire_and_stops_the_work_in_flight(redis):
    d = _deployment(redis)
    tm = _task_manager()
    worker, journal = make_worker(redis.url, d.name, "w1", heartbeat_s=0.3, dead_after_s=1.0)
    await worker.start(tm)
    session = Session(d)
    await session.start(tm)
    try:
        await session.runner.submit(ContextPacket(job_id="job-1", task="slow one delay=5"))
        await session.wait_for(lambda: "progress" in session.kinds("job-1"))
        assert await session.runner.cancel("job-1")
        await session.wait_for(lambda: "cancelled job-1" in journal.lines, within=3)
        assert journal.lines == ["begin job-1", "cancelled job-1"]
        assert worker.running_jobs == set()
        await asyncio.sleep(0.5)
        assert [e.kind for e in session.final("job-1")] == ["cancelled"]
        assert not await session.runner.cancel("job-1")
        # A job cancelled while still queued never starts anywhere.
        await session.runner.submit(ContextPacket(job_id="job-2", task="busy delay=1"))
        await session.runner.submit(ContextPacket(job_id="job-3", task="never run"))
        assert await session.runner.cancel("job-3")
        assert (await session.wait_final("job-2")).kind == "result"
        await asyncio.sleep(0.5)
        assert "begin job-3" not in journal.lines
    finally:
        await session.runner.close()
        await worker.stop()


async def test_follow_up_reaches_the_running_job(redis):
    d = _deployment(redis)
    tm = _task_manager()
    worker, _ = make_worker(redis.url, d.name, "w1", heartbeat_s=0.3, dead_after_s=1.0)
    await worker.start(tm)
    session = Session(d)
    await session.start(tm)
    try:
        await session.runner.submit(ContextPacket(job_id="job-1", task="plan a trip delay=1"))
        # Sent before the worker reports the start: re-sent to it when it does.
        assert await session.runner.follow_up("job-1", "only by train")
        final = await session.wait_final("job-1")
        # Into the job's first prompt, or into a second round if it came a moment later.
        # (The fake says the prompt back, cut to a spoken answer's length.)
        assert final.text == "Worker w1 with follow-up: only by train" or final.text.startswith(
            "Worker w1: plan a trip delay=1 Follow-up from the user: only by train"
        )
        assert not await session.runner.follow_up("job-1", "too late")
        # Sent while the model is working: the job takes it in before it answers.
        await session.runner.submit(ContextPacket(job_id="job-2", task="book it delay=1"))
        await session.wait_for(lambda: "progress" in session.kinds("job-2"))
        assert await session.runner.follow_up("job-2", "a window seat")
        final = await session.wait_final("job-2")
        assert final.text == "Worker w1 with follow-up: a window seat"
    finally:
        await session.runner.close()
        await worker.stop()


async def test_malformed_messages_are_refused_and_lose_nothing(redis):
    d = _deployment(redis)
    tm = _task_manager()
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m)), level="WARNING")
    worker, journal = make_worker(redis.url, d.name, "w1", heartbeat_s=0.3, dead_after_s=1.0)
    await worker.start(tm)
    session = Session(d)
    await session.start(tm)
    try:
        raw = worker._redis
        await raw.publish(d.channel, b"garbage{")
        await raw.publish(
            d.channel,
            b'{"__type__":"subprocess.Popen","__data__":{"args":["touch","/tmp/pwned"]}}',
        )
        # A job entry that is not a packet, for this session: failed honestly, not lost.
        session.runner._ledger.add("job-0", now=0.0, deadline_s=30)
        await raw.xadd(d.stream, {"job_id": f"{session.runner.name}:job-0",
                                  "reply_to": session.runner.name, "packet": "{not json"})  # fmt: skip
        await raw.xadd(d.stream, {"nonsense": "1"})
        await session.runner.submit(ContextPacket(job_id="job-1", task="still works"))
        assert (await session.wait_final("job-1")).text == "Worker w1: still works."
        bad = await session.wait_final("job-0")
        assert bad.kind == "error" and "could not be read" in bad.text
        await session.wait_for(lambda: worker.serializer.refused >= 2, within=3)
        assert session.runner.serializer.refused >= 2
        assert await raw.xlen(d.stream) == 0
        assert (await raw.xpending(d.stream, d.group))["pending"] == 0
        assert journal.lines == ["begin job-1", "done job-1"]
    finally:
        logger.remove(sink)
        await session.runner.close()
        await worker.stop()
    assert any("subprocess.Popen" in line and "refused" in line for line in seen)
    assert any("not JSON" in line for line in seen)
    assert not await asyncio.to_thread(Path("/tmp/pwned").exists)


async def test_unreachable_redis_fails_jobs_honestly():
    session = Session(RedisDeployment(f"redis://127.0.0.1:{_free_port()}", "gone"))
    await session.start(_task_manager())
    try:
        await session.runner.submit(ContextPacket(job_id="job-1", task="anything"))
        final = await session.wait_final("job-1", within=5)
        assert final.kind == "error" and final.text == UNREACHABLE
    finally:
        await session.runner.close()


async def test_redis_restarted_mid_job_fails_it_honestly_and_new_jobs_work():
    port = _free_port()
    first = redis_server(port)
    server = first.__enter__()
    d = RedisDeployment(server.url, "restart")
    tm = _task_manager()
    worker, journal = make_worker(server.url, d.name, "w1", heartbeat_s=0.3, dead_after_s=1.0)
    await worker.start(tm)
    session = Session(d, heartbeat_s=0.3, orphan_after_s=2.5)
    await session.start(tm)
    second = None
    try:
        await session.runner.submit(ContextPacket(job_id="job-1", task="in flight delay=5"))
        await session.wait_for(lambda: "progress" in session.kinds("job-1"))
        first.__exit__(None, None, None)  # killed, and back empty (no persistence)
        await asyncio.sleep(0.5)
        second = redis_server(port)
        second.__enter__()
        final = await session.wait_final("job-1", within=6)
        assert final.kind == "error" and final.text == LOST
        await session.runner.submit(ContextPacket(job_id="job-2", task="after"))
        assert (await session.wait_final("job-2", within=8)).text == "Worker w1: after."
        assert "done job-1" not in journal.lines
        assert [len(session.final(j)) for j in ("job-1", "job-2")] == [1, 1]
    finally:
        await session.runner.close()
        await worker.stop()
        if second is not None:
            second.__exit__(None, None, None)


# Real worker processes


def _spawn(redis: RedisServer, d: RedisDeployment, name: str, journal: Path, **opts):
    args = [sys.executable, "-m", "tests.support.remote_worker", redis.url, d.name, name,
            str(journal)]  # fmt: skip
    for key, value in opts.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == b"ready", f"worker did not start: {line!r}"


async def test_two_worker_processes_share_jobs_and_survive_a_kill(redis, tmp_path):
    d = _deployment(redis)
    # Dead after 1.5 s: above any event-loop stall of a worker on this loaded 2-core machine.
    opts = {"heartbeat": 0.3, "dead_after": 1.5, "concurrency": 1}
    journals = {n: tmp_path / f"{n}.log" for n in ("pa", "pb")}
    procs = {n: _spawn(redis, d, n, journals[n], **opts) for n in journals}
    session = Session(d, heartbeat_s=0.3, orphan_after_s=3.0)
    try:
        for p in procs.values():
            await asyncio.to_thread(_wait_ready, p)
        await session.start(_task_manager())
        # Two jobs, one slot each: both workers take one.
        await session.runner.submit(ContextPacket(job_id="job-1", task="first delay=0.8"))
        await session.runner.submit(ContextPacket(job_id="job-2", task="second delay=0.8"))
        one, two = await session.wait_final("job-1"), await session.wait_final("job-2")
        assert {one.text.split(":")[0], two.text.split(":")[0]} == {"Worker pa", "Worker pb"}

        # A job whose worker is killed mid-job runs again on the other one, once.
        await session.runner.submit(ContextPacket(job_id="job-3", task="third delay=2"))
        await session.wait_for(lambda: "progress" in session.kinds("job-3"))
        victim = session.runner._ledger.get("job-3").owner
        survivor = ({"pa", "pb"} - {victim}).pop()
        procs[victim].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        rerun = await session.wait_for(
            lambda: [
                t for t, e in session.events if e.job_id == "job-3" and "again" in e.text
            ],  # fmt: skip
            within=8,
        )
        detected = rerun[0] - killed
        assert detected < 1.5 + 0.3 * 2 + 1.0, detected  # dead_after + 2 heartbeats + slack
        final = await session.wait_final("job-3", within=8)
        assert final.kind == "result" and final.text.startswith(f"Worker {survivor}:")
        await asyncio.sleep(0.5)
        assert len(session.final("job-3")) == 1
        assert "done job-3" not in journals[victim].read_text()

        # The last worker dies mid-job: nobody can take it over, the job fails honestly.
        await session.runner.submit(ContextPacket(job_id="job-4", task="fourth delay=20"))
        await session.wait_for(lambda: "progress" in session.kinds("job-4"))
        procs[survivor].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        final = await session.wait_final("job-4", within=8)
        assert final.kind == "error" and final.text == ORPHANED
        assert time.monotonic() - killed < 3.0 + 0.3 * 2 + 1.0
        assert [len(session.final(f"job-{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    finally:
        await session.runner.close()
        for p in procs.values():
            p.kill()
            p.wait(timeout=5)
