"""Background jobs on remote workers over Redis (issue 14, part 3): what it costs, what a kill does.

Starts its own Debian redis-server on a free loopback port (persistence off) and
real worker processes (this script with ``--serve-worker``), then measures:

1. ``queue`` — the choice of job queue. Pipecat's bus is Redis pub/sub; the jobs
   could go on it (with acknowledgements and re-sends on a timeout) or on a Redis
   stream read by a consumer group. Measured: hand-off latency of each, jobs that
   reach a consumer that was away for 1 s (a restart), and how many consumers get
   each job when two listen.
2. ``roundtrip`` — submit→result per job through ``RedisRunner`` and a worker
   process against ``InProcessRunner`` with the same job doer (median over N
   sequential jobs): an "echo" doer (answers at once: the machinery alone) and the
   project's ``BackgroundAgent`` on the scripted fake LLM. Also jobs/s: a burst of
   4N echo jobs submitted at once to one worker process with 8 slots.
3. ``kill`` — two worker processes (4 slots each) share a burst of 6 jobs; one is
   SIGKILLed mid-job. Measured: time from the kill to each of its jobs starting
   again on the survivor, jobs lost (no outcome) and jobs told twice (must both be 0).
   Then the survivor is killed mid-job too: time until its jobs fail honestly.

Production settings throughout: heartbeat 1 s, dead after 3 s, orphaned after 7 s.

Run: .venv/bin/python benchmarks/bench_redis_jobs.py [--jobs 100] [--trials 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402
from tests.support.redis_server import redis_server  # noqa: E402

from pipecat_tandem.background.agent import BackgroundAgent  # noqa: E402
from pipecat_tandem.background.packet import ContextPacket  # noqa: E402
from pipecat_tandem.background.remote import RedisDeployment, RedisRunner  # noqa: E402
from pipecat_tandem.background.runner import InProcessRunner, JobEvent, JobReporter  # noqa: E402
from pipecat_tandem.bench.fakes import Reply, ScriptedLLM, last_text  # noqa: E402

HEARTBEAT_S, DEAD_AFTER_S, ORPHAN_AFTER_S = 1.0, 3.0, 7.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else float("nan")


# Job doers (the same in-process and on a worker)


class Echo:
    async def run(self, packet: ContextPacket, reporter: JobReporter) -> str:
        return f"Done: {packet.task}."


def agent(delay_s: float = 0.0) -> BackgroundAgent:
    def brain(messages: list[dict[str, Any]]) -> Reply:
        task = last_text(messages, "user").split("Task:", 1)[-1].strip()
        return Reply(text=f"The answer to {task}.", delay_s=delay_s)

    return BackgroundAgent(llm_factory=lambda: ScriptedLLM(brain), tools=[], prefetch=False)


async def serve_worker(url: str, deployment: str, name: str, kind: str, delay: float, slots: int):
    from pipecat.utils.asyncio.task_manager import TaskManager
    from redis.asyncio import Redis

    from pipecat_tandem.background.remote import RedisJobWorker

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    doer = Echo() if kind == "echo" else agent(delay)
    if kind != "echo":  # first run's imports block the loop: not part of any measurement
        await doer.run(ContextPacket(job_id="warm", task="warm"), JobReporter("w", _drop))
    worker = RedisJobWorker(
        doer,
        redis=Redis.from_url(url),
        deployment=RedisDeployment(url, deployment),
        concurrency=slots,
        name=name,
        heartbeat_s=HEARTBEAT_S,
        dead_after_s=DEAD_AFTER_S,
    )
    await worker.start(TaskManager())
    print("ready", flush=True)
    await asyncio.Event().wait()


async def _drop(event: JobEvent) -> None:
    pass


def spawn(url: str, deployment: str, name: str, kind: str, delay: float = 0.0, slots: int = 1):
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-worker", url, deployment, name, kind, str(delay),
         str(slots)],
        stdout=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[float, JobEvent]] = []
        self.changed = asyncio.Event()

    async def __call__(self, event: JobEvent) -> None:
        self.events.append((time.perf_counter(), event))
        self.changed.set()

    def finals(self, job_id: str) -> list[tuple[float, JobEvent]]:
        return [
            (t, e)
            for t, e in self.events
            if e.job_id == job_id and e.kind in ("result", "error", "cancelled")
        ]

    async def until(self, predicate, within: float) -> bool:
        deadline = time.perf_counter() + within
        while not predicate():
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True


# 1. The queue


async def bench_queue(url: str, n: int) -> dict[str, Any]:
    from redis.asyncio import Redis

    pub, sub_client, reader = Redis.from_url(url), Redis.from_url(url), Redis.from_url(url)
    out: dict[str, Any] = {}

    # Hand-off latency, pub/sub.
    ps = sub_client.pubsub()
    await ps.subscribe("bench:ps")
    await ps.get_message(timeout=1.0)
    lat = []
    for i in range(n):
        t0 = time.perf_counter()
        await pub.publish("bench:ps", str(i))
        while (await ps.get_message(timeout=1.0)) is None:
            pass
        lat.append((time.perf_counter() - t0) * 1000)
    out["pubsub_ms"] = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}

    # Hand-off latency, stream + consumer group (consumer blocked in XREADGROUP).
    await pub.xgroup_create("bench:st", "g", id="0", mkstream=True)
    lat = []
    for i in range(n):
        read = asyncio.ensure_future(
            reader.xreadgroup("g", "c1", {"bench:st": ">"}, count=1, block=1000)
        )
        await asyncio.sleep(0.001)  # the consumer is waiting, as a worker is
        t0 = time.perf_counter()
        await pub.xadd("bench:st", {"i": str(i)})
        got = await read
        lat.append((time.perf_counter() - t0) * 1000)
        await pub.xack("bench:st", "g", got[0][1][0][0])
    out["stream_ms"] = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}

    # A consumer away for 1 s (a worker restarting) while 20 jobs are sent, 50 ms apart.
    await ps.unsubscribe("bench:ps")
    await ps.get_message(timeout=0.2)
    for i in range(20):
        await pub.publish("bench:ps", f"away-{i}")
        await pub.xadd("bench:st2", {"i": str(i)})
        await asyncio.sleep(0.05)
    await ps.subscribe("bench:ps")
    got_ps = 0
    while (m := await ps.get_message(timeout=0.3)) is not None:
        got_ps += m["type"] == "message"
    await pub.xgroup_create("bench:st2", "g", id="0", mkstream=True)
    got_st = await reader.xreadgroup("g", "c1", {"bench:st2": ">"}, count=100, block=100)
    out["away_20_jobs"] = {"pubsub_received": got_ps, "stream_received": len(got_st[0][1])}

    # Acknowledgements + re-send on top of pub/sub, same 1 s absence: re-sends and delay.
    # (The emulation counts on the consumer acking at once; timeout 0.5 s.)
    resends, delays = 0, []
    await ps.unsubscribe("bench:ps")
    await ps.get_message(timeout=0.2)
    back_at = time.perf_counter() + 1.0
    for i in range(20):
        sent = time.perf_counter()
        while True:
            await pub.publish("bench:ps", f"ack-{i}")
            if time.perf_counter() >= back_at and not ps.subscribed:
                await ps.subscribe("bench:ps")
                await ps.get_message(timeout=0.2)
                await pub.publish("bench:ps", f"ack-{i}")
            if ps.subscribed:
                m = await ps.get_message(timeout=0.5)
                while m is not None and m["type"] != "message":
                    m = await ps.get_message(timeout=0.5)
                if m is not None:
                    break
            else:
                await asyncio.sleep(0.5)  # no ack within the timeout
            resends += 1
        delays.append((time.perf_counter() - sent) * 1000)
        await asyncio.sleep(0.05)
    out["ack_resend_away"] = {"resends": resends, "worst_delay_ms": max(delays)}

    # Two consumers listening: how many get each job.
    ps2 = Redis.from_url(url).pubsub()
    await ps2.subscribe("bench:ps")
    await ps2.get_message(timeout=1.0)
    await pub.publish("bench:ps", "both")
    both = 0
    for p in (ps, ps2):
        m = await p.get_message(timeout=0.5)
        while m is not None and m["type"] != "message":
            m = await p.get_message(timeout=0.5)
        both += m is not None
    await pub.xadd("bench:st", {"i": "both"})
    got = [
        await Redis.from_url(url).xreadgroup("g", c, {"bench:st": ">"}, count=1, block=200)
        for c in ("c1", "c2")
    ]
    out["two_consumers"] = {"pubsub_copies": both, "stream_copies": sum(bool(g) for g in got)}
    for c in (pub, sub_client, reader):
        await c.aclose()
    return out


# 2. Round trip against in-process


async def roundtrip(runner: Any, n: int, task_manager: Any) -> list[float]:
    sink = Sink()
    await runner.start(task_manager=task_manager, sink=sink)
    times = []
    for i in range(n + 3):
        t0 = time.perf_counter()
        await runner.submit(ContextPacket(job_id=f"job-{i}", task=f"question {i}"))
        assert await sink.until(lambda i=i: sink.finals(f"job-{i}"), 30), f"job-{i} lost"
        if i >= 3:  # the first ones warm connections and imports
            times.append((sink.finals(f"job-{i}")[0][0] - t0) * 1000)
    await runner.close()
    return times


async def bench_roundtrip(url: str, n: int) -> dict[str, Any]:
    from pipecat.utils.asyncio.task_manager import TaskManager

    tm = TaskManager()
    out: dict[str, Any] = {}
    for kind, doer in (("echo", Echo()), ("agent", agent())):
        local = await roundtrip(InProcessRunner(doer, max_concurrency=1), n, tm)
        proc = spawn(url, f"rt-{kind}", f"rt-{kind}", kind)
        try:
            remote = await roundtrip(
                RedisRunner(deployment=RedisDeployment(url, f"rt-{kind}")), n, tm
            )
        finally:
            proc.kill()
            proc.wait()
        out[kind] = {
            "in_process_ms": {"p50": statistics.median(local), "p99": pct(local, 0.99)},
            "redis_ms": {"p50": statistics.median(remote), "p99": pct(remote, 0.99)},
            "overhead_p50_ms": statistics.median(remote) - statistics.median(local),
        }
    return out


async def bench_throughput(url: str, n: int, slots: int) -> dict[str, Any]:
    """A burst of ``n`` echo jobs submitted at once to one worker process with ``slots``."""
    from pipecat.utils.asyncio.task_manager import TaskManager

    proc = spawn(url, "tp", "tp", "echo", slots=slots)
    sink = Sink()
    runner = RedisRunner(deployment=RedisDeployment(url, "tp"))
    try:
        await runner.start(task_manager=TaskManager(), sink=sink)
        t0 = time.perf_counter()
        for i in range(n):
            await runner.submit(ContextPacket(job_id=f"job-{i}", task=f"question {i}"))
        ok = await sink.until(lambda: all(sink.finals(f"job-{i}") for i in range(n)), 120)
        elapsed = time.perf_counter() - t0
    finally:
        await runner.close()
        proc.kill()
        proc.wait()
    return {"jobs": n, "slots": slots, "all_done": ok, "jobs_per_s": n / elapsed}


# 3. A worker killed mid-job


async def bench_kill(url: str, trial: int, jobs: int, delay: float) -> dict[str, Any]:
    from pipecat.utils.asyncio.task_manager import TaskManager

    dep = f"kill-{trial}"
    procs = {n: spawn(url, dep, n, "agent", delay, slots=4) for n in (f"a{trial}", f"b{trial}")}
    sink = Sink()
    runner = RedisRunner(
        deployment=RedisDeployment(url, dep), heartbeat_s=HEARTBEAT_S, orphan_after_s=ORPHAN_AFTER_S
    )
    await runner.start(task_manager=TaskManager(), sink=sink)
    try:
        for i in range(jobs):
            await runner.submit(ContextPacket(job_id=f"job-{i}", task=f"question {i}"))
        # Kill a worker half-way through its first jobs.
        await sink.until(lambda: sum(e.kind == "started" for _, e in sink.events) >= 4, 30)
        await asyncio.sleep(delay / 2)
        ledger = runner._ledger
        victim = next(iter(procs))
        held = [j.job_id for j in ledger.active if j.owner == victim and not sink.finals(j.job_id)]
        procs[victim].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        ids = [f"job-{i}" for i in range(jobs)]
        done = await sink.until(lambda: all(sink.finals(j) for j in ids), 60 + jobs * delay)
        reruns = [
            (t - killed) * 1000
            for t, e in sink.events
            if e.kind == "progress" and "again" in e.text and e.job_id in held
        ]
        finals = {j: sink.finals(j) for j in ids}
        out: dict[str, Any] = {
            "jobs": jobs,
            "held_by_killed": len(held),
            "rerun_after_kill_ms": sorted(round(r) for r in reruns),
            "lost": sum(not f for f in finals.values()),
            "told_twice": sum(len(f) > 1 for f in finals.values()),
            "results": sum(f[0][1].kind == "result" for f in finals.values() if f),
            "all_done": done,
        }
        # The survivor dies mid-job too: nobody can take its jobs over.
        survivor = [n for n in procs if n != victim][0]
        for i in range(2):
            await runner.submit(ContextPacket(job_id=f"last-{i}", task=f"last {i}"))
        await sink.until(lambda: all(any(e.kind == "started" and e.job_id == f"last-{i}"
                                         for _, e in sink.events) for i in range(2)), 30)  # fmt: skip
        procs[survivor].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        await sink.until(lambda: all(sink.finals(f"last-{i}") for i in range(2)), 30)
        out["orphan_fail_after_kill_ms"] = [
            round((sink.finals(f"last-{i}")[0][0] - killed) * 1000) for i in range(2)
        ]
        out["orphan_kinds"] = [sink.finals(f"last-{i}")[0][1].kind for i in range(2)]
        return out
    finally:
        await runner.close()
        for p in procs.values():
            p.kill()
            p.wait()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    with redis_server() as server:
        result: dict[str, Any] = {"queue": await bench_queue(server.url, args.jobs)}
        print("queue", json.dumps(result["queue"]), flush=True)
        result["roundtrip"] = await bench_roundtrip(server.url, args.jobs)
        print("roundtrip", json.dumps(result["roundtrip"]), flush=True)
        result["throughput"] = await bench_throughput(server.url, 4 * args.jobs, 8)
        print("throughput", json.dumps(result["throughput"]), flush=True)
        result["kill"] = []
        for trial in range(args.trials):
            k = await bench_kill(server.url, trial, args.kill_jobs, args.delay)
            print("kill", json.dumps(k), flush=True)
            result["kill"].append(k)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-worker":
        url, dep, name, kind, delay, slots = sys.argv[2:8]
        asyncio.run(serve_worker(url, dep, name, kind, float(delay), int(slots)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per latency measurement")
    parser.add_argument("--trials", type=int, default=3, help="kill trials")
    parser.add_argument("--kill-jobs", type=int, default=6, help="jobs in each kill trial")
    parser.add_argument("--delay", type=float, default=2.0, help="model time per job (kill)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    res = asyncio.run(main(args))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
