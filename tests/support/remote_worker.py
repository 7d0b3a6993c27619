"""A remote background worker for the Redis tests, on the project's scripted fake LLM.

Run in the test's process (:func:`make_worker`) or as a real worker process
(``python -m tests.support.remote_worker URL DEPLOYMENT NAME JOURNAL [...]``).
The fake model answers ``Worker NAME: TASK``; a task holding ``delay=S`` takes
S seconds to its first token; a follow-up is answered ``... with follow-up: TEXT``;
a conversation mentioning Miso adds ``(the cat is Miso)`` to the answer (the
whole context packet crossed the wire). The journal file gets ``begin``, ``done``
or ``cancelled`` lines per job, so a test sees work stopping, not only a message.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path
from typing import Any

from pipecat_tandem.background.agent import BackgroundAgent
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.runner import JobReporter
from pipecat_tandem.bench.fakes import Reply, ScriptedLLM, last_text, message_text

_DELAY = re.compile(r"delay=([0-9.]+)")


def brain(name: str) -> Any:
    def answer(messages: list[dict[str, Any]]) -> Reply:
        texts = [message_text(m) for m in messages]
        last = last_text(messages, "user")
        cat = " (the cat is Miso)" if any("Miso" in t for t in texts) else ""
        if last.startswith("Follow-up:"):
            return Reply(text=f"Worker {name} with follow-up: {last[len('Follow-up:') :].strip()}")
        task = last.split("Task:", 1)[-1].strip()
        delay = _DELAY.search(task)
        return Reply(
            text=f"Worker {name}: {task}{cat}.",
            delay_s=float(delay.group(1)) if delay else 0.0,
        )

    return answer


class JournalWorker:
    """A ``BackgroundAgent`` on ``ScriptedLLM`` that journals each job's fate."""

    def __init__(self, name: str, journal: Path | None) -> None:
        self.name = name
        self._journal = journal
        self._agent = BackgroundAgent(
            llm_factory=lambda: ScriptedLLM(brain(name)), tools=[], prefetch=False
        )
        self.lines: list[str] = []

    def _note(self, line: str) -> None:
        self.lines.append(line)
        if self._journal is not None:
            with self._journal.open("a") as f:
                f.write(line + "\n")

    async def warm_up(self) -> None:
        async def drop(event: Any) -> None:
            pass

        await self._agent.run(
            ContextPacket(job_id="warm-up", task="warm up"), JobReporter("w", drop)
        )

    async def run(self, packet: ContextPacket, reporter: JobReporter) -> str:
        self._note(f"begin {packet.job_id}")
        try:
            answer = await self._agent.run(packet, reporter)
        except asyncio.CancelledError:
            self._note(f"cancelled {packet.job_id}")
            raise
        self._note(f"done {packet.job_id}")
        return answer


def make_worker(url: str, deployment: str, name: str, journal: Path | None = None, **kwargs: Any):
    from redis.asyncio import Redis

    from pipecat_tandem.background.remote import RedisDeployment, RedisJobWorker

    job_worker = JournalWorker(name, journal)
    worker = RedisJobWorker(
        job_worker,
        redis=Redis.from_url(url),
        deployment=RedisDeployment(url, deployment),
        name=name,
        **kwargs,
    )
    return worker, job_worker


async def _serve(args: argparse.Namespace) -> None:
    from pipecat.utils.asyncio.task_manager import TaskManager

    worker, job_worker = make_worker(
        args.url,
        args.deployment,
        args.name,
        Path(args.journal),
        concurrency=args.concurrency,
        heartbeat_s=args.heartbeat,
        dead_after_s=args.dead_after,
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    # One job before joining: its first run imports pipecat's pipeline machinery,
    # which blocks the event loop (and the lease heartbeat) for a second or more.
    await job_worker.warm_up()
    await worker.start(TaskManager())
    print("ready", flush=True)
    await stop.wait()
    await worker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("deployment")
    parser.add_argument("name")
    parser.add_argument("journal")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--dead-after", type=float, default=1.5)
    asyncio.run(_serve(parser.parse_args()))
