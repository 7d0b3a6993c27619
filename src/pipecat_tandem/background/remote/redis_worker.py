#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A worker process's side of remote jobs: take jobs from the queue, run them, report.

:class:`RedisJobWorker` reads jobs from the deployment's stream (one at a time
while it has a free slot), runs each with a ``BackgroundWorker`` (e.g. a
``BackgroundAgent``) and streams ``started``/``progress``/``partial`` and
the final result, error or cancel back over pipecat's ``RedisBus``. Cancels and
follow-ups arrive on the bus. Every heartbeat it renews the leases of its running
jobs. Before it takes a new job into a free slot it takes over any job whose
worker stopped heartbeating (its lease is older than ``dead_after_s``); a job
already run ``max_runs`` times is failed instead of run again.

A job is acknowledged (and deleted from the stream) only after its final report
is published, so a worker that dies mid-job leaves it pending for another; the
requester drops whatever the dead worker's job reports twice.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.bus.messages import BusJobCancelMessage, BusMessage
from pipecat.bus.subscriber import BusSubscriber
from pipecat.pipeline.job_context import JobStatus
from pipecat.utils.base_object import BaseObject

from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.remote.deployment import RedisDeployment
from pipecat_tandem.background.remote.job_queue import QueuedJob, RedisJobQueue
from pipecat_tandem.background.remote.wire import (
    BusJobFollowUpMessage,
    TrustedSerializer,
    response_message,
    update_message,
)
from pipecat_tandem.background.runner import BackgroundWorker, JobEvent, JobReporter


@dataclass
class _Running:
    entry_id: str
    wire_id: str
    reply_to: str
    reporter: JobReporter
    task: asyncio.Task[None] | None = None
    follow_up_seq: int = 0
    cancelled_by: str = ""  # "requester" or "lease" once stopped from outside


class RedisJobWorker(BaseObject, BusSubscriber):
    """Runs remote background jobs. See the module docstring.

    Args:
        worker: What does a job (a ``BackgroundAgent`` or any ``BackgroundWorker``).
        redis: A ``redis.asyncio.Redis`` client (closed by :meth:`stop`).
        deployment: The deployment's names.
        concurrency: Jobs run at once.
        name: This worker's unique name (default ``worker-<random>``).
        heartbeat_s: How often leases are renewed and dead workers' jobs looked for.
        dead_after_s: A job whose lease is this old belongs to a dead worker.
        max_runs: Runs a job may get (a worker dying under it each time) before it fails.
    """

    def __init__(
        self,
        worker: BackgroundWorker,
        *,
        redis: Any,
        deployment: RedisDeployment,
        concurrency: int = 1,
        name: str | None = None,
        heartbeat_s: float = 1.0,
        dead_after_s: float = 3.0,
        max_runs: int = 2,
    ) -> None:
        if concurrency < 1 or max_runs < 1:
            raise ValueError("concurrency and max_runs must be at least 1")
        if not 0 < heartbeat_s < dead_after_s:
            raise ValueError("need 0 < heartbeat_s < dead_after_s")
        super().__init__(name=name or f"worker-{uuid.uuid4().hex[:8]}")
        from pipecat_tandem.background.remote.resilient_bus import ResilientRedisBus

        self._worker = worker
        self._redis = redis
        self._d = deployment
        self._concurrency = concurrency
        self._heartbeat = heartbeat_s
        self._dead_ms = int(dead_after_s * 1000)
        self._max_runs = max_runs
        self._queue = RedisJobQueue(redis, deployment)
        self.serializer = TrustedSerializer(channel=deployment.channel)
        self._bus = ResilientRedisBus(
            redis=redis, channel=deployment.channel, serializer=self.serializer
        )
        self._running: dict[str, _Running] = {}
        self._slot_free = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        #: Jobs this worker finished (result, error or cancel), for tests and stats.
        self.finished = 0

    @property
    def running_jobs(self) -> set[str]:
        """Wire ids of the jobs running here."""
        return set(self._running)

    async def start(self, task_manager: Any) -> None:
        """Join the deployment: group, bus, read and lease loops."""
        await self.setup(task_manager)
        await self._queue.ensure_group()
        await self._bus.setup(task_manager)
        await self._bus.subscribe(self)
        await self._bus.start()
        self._loops = [
            self.create_task(self._read_loop(), f"{self.name}-read"),
            self.create_task(self._lease_loop(), f"{self.name}-lease"),
        ]
        logger.info(f"{self.name}: serving {self._d.stream} ({self._concurrency} at once)")

    async def stop(self) -> None:
        """Stop taking jobs, cancel the running ones (their jobs go back to the pool)."""
        for task in self._loops:
            await self.cancel_task(task)
        self._loops = []
        for job in list(self._running.values()):
            job.cancelled_by = "lease"  # released: another worker takes it over
            if job.task is not None:
                await self.cancel_task(job.task)
        await self._bus.stop()
        await self._redis.aclose()

    # Queue side

    async def _read_loop(self) -> None:
        block_ms = int(self._heartbeat * 1000)
        while True:
            if len(self._running) >= self._concurrency:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                # A dead worker's job first (it is older than anything queued), then
                # one new job at a time, so that idle workers share a burst.
                jobs = await self._queue.claim_idle(self.name, self._dead_ms, 1)
                for job in jobs:
                    logger.warning(
                        f"{self.name}: took over {job.fields.get('job_id', '?')} from a worker "
                        f"that stopped (run {job.deliveries})"
                    )
                if not jobs:
                    jobs = await self._queue.read(self.name, 1, block_ms=block_ms)
            except Exception as e:  # Redis away: keep trying, say so once a second
                logger.warning(f"{self.name}: cannot read jobs from Redis: {e}")
                await asyncio.sleep(1.0)
                continue
            for job in jobs:
                await self._launch(job)

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self._renew()
            except Exception as e:
                logger.warning(f"{self.name}: lease renewal failed: {e}")

    async def _renew(self) -> None:
        held = {j.entry_id: j for j in self._running.values()}
        mine = await self._queue.renew(self.name, list(held))
        for entry_id, job in held.items():
            if entry_id not in mine and job.task is not None and not job.task.done():
                # Taken over (we were too slow to renew) or removed by the requester.
                logger.warning(f"{self.name}: {job.wire_id} is no longer ours; stopping it")
                job.cancelled_by = "lease"
                await self.cancel_task(job.task)

    async def _launch(self, job: QueuedJob) -> None:
        wire_id, reply_to = job.fields.get("job_id", ""), job.fields.get("reply_to", "")
        try:
            packet = ContextPacket.from_json(job.fields.get("packet", ""))
        except ValueError as e:
            logger.warning(f"{self.name}: refused job entry {job.entry_id}: {e}")
            await self._refuse(job, wire_id, reply_to, f"the job could not be read ({e})")
            return
        if not wire_id or not reply_to:
            logger.warning(f"{self.name}: refused job entry {job.entry_id}: no job id or requester")
            await self._queue.finish(job.entry_id)
            return
        if job.deliveries > self._max_runs:
            await self._refuse(
                job, wire_id, reply_to, f"the workers running it stopped {job.deliveries - 1} times"
            )
            return
        if await self._queue.is_cancelled(wire_id):
            await self._refuse(job, wire_id, reply_to, "", status=JobStatus.CANCELLED)
            return
        run = _Running(job.entry_id, wire_id, reply_to, JobReporter(wire_id, self._sink(wire_id)))
        self._running[wire_id] = run
        # One line per job at each end: where a job ran is an operator's first question.
        logger.info(f"{self.name}: running job {wire_id} (delivery {job.deliveries})")
        run.task = self.create_task(self._run(run, packet), f"{self.name}-{wire_id}")

    async def _refuse(
        self,
        job: QueuedJob,
        wire_id: str,
        reply_to: str,
        text: str,
        status: JobStatus = JobStatus.ERROR,
    ) -> None:
        if wire_id and reply_to:
            await self._send(response_message(self.name, reply_to, wire_id, status, text))
        await self._queue.finish(job.entry_id)

    # Running a job

    def _sink(self, wire_id: str) -> Any:
        async def sink(event: JobEvent) -> None:
            run = self._running.get(wire_id)
            if run is not None and not run.cancelled_by:
                msg = update_message(self.name, run.reply_to, wire_id, event.kind, event.text)
                await self._send(msg)

        return sink

    async def _run(self, run: _Running, packet: ContextPacket) -> None:
        status, text = JobStatus.ERROR, ""
        try:
            await self._send(update_message(self.name, run.reply_to, run.wire_id, "started"))
            async with asyncio.timeout(packet.deadline_s):
                raw = await self._worker.run(packet, run.reporter)
            status, text = JobStatus.COMPLETED, raw if isinstance(raw, str) else ""
        except asyncio.CancelledError:
            status = JobStatus.CANCELLED
        except TimeoutError:
            text = f"it timed out after {packet.deadline_s:g} s"
        except Exception as e:  # a job's failure must not take the worker down
            logger.warning(f"{self.name}: job {run.wire_id} failed: {e!r}")
            text = (f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)[:300]
        finally:
            self._running.pop(run.wire_id, None)
            self._slot_free.set()
        if run.cancelled_by == "lease":
            return  # another worker owns it now (or the requester dropped it)
        try:
            await self._send(response_message(self.name, run.reply_to, run.wire_id, status, text))
            await self._queue.finish(run.entry_id)
            self.finished += 1
            logger.info(f"{self.name}: job {run.wire_id} {status.value}")
        except Exception as e:  # Redis away: the job stays pending and is run again
            logger.warning(f"{self.name}: could not report {run.wire_id}: {e}")

    # Bus side

    def accepts_bus_message(self, message: BusMessage) -> bool:
        """Only cancels and follow-ups for this worker (or for everyone)."""
        if message.target not in (None, self.name):
            return False
        return isinstance(message, BusJobCancelMessage | BusJobFollowUpMessage)

    async def on_bus_message(self, message: BusMessage) -> None:
        """Stop a cancelled job; pass a follow-up to its job."""
        job_id = getattr(message, "job_id", None)
        run = self._running.get(job_id) if isinstance(job_id, str) else None
        if run is None:
            return
        if isinstance(message, BusJobCancelMessage):
            if run.task is not None and not run.cancelled_by:
                run.cancelled_by = "requester"
                await self.cancel_task(run.task)
        elif isinstance(message, BusJobFollowUpMessage):
            if isinstance(message.seq, int) and message.seq > run.follow_up_seq:
                run.follow_up_seq = message.seq
                run.reporter.add_follow_up(str(message.text))

    async def _send(self, message: BusMessage) -> None:
        await self._bus.send(message)
