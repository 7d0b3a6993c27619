#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A :class:`~pipecat_tandem.background.runner.BackgroundRunner` whose jobs run on remote workers.

The session side of ``tandem run --redis URL``. :meth:`RedisRunner.submit` puts
the job (its whole :class:`~pipecat_tandem.background.packet.ContextPacket`, as
JSON) on the deployment's Redis stream, where the first worker with a free slot
takes it (``tandem worker --redis URL``; see
:mod:`~pipecat_tandem.background.remote.redis_worker`). Progress and the outcome
come back over pipecat's ``RedisBus``; cancels and follow-ups go out on it.

Nothing is lost, nothing is told twice:

- a job waits in the stream until a worker takes it, even if none listens yet;
- a worker that stops heartbeating loses its jobs to a live worker within
  ``dead_after_s`` plus a heartbeat (they run again there);
- a job no live worker takes over within ``orphan_after_s`` fails with an
  honest error (the session says so in one sentence), as does a job past its
  deadline (queueing included), one Redis refused, or one Redis lost (it
  restarted without its data: the job vanished from the stream);
- the bus subscribes again after a lost connection (``ResilientRedisBus``);
- the :class:`~pipecat_tandem.background.remote.ledger.RemoteJobLedger` hands
  the session one outcome per job, from the worker that currently owns it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.bus.messages import BusJobCancelMessage, BusMessage
from pipecat.bus.subscriber import BusSubscriber
from pipecat.utils.asyncio.task_manager import BaseTaskManager

from pipecat_tandem.background.answer import unspeakable_reason
from pipecat_tandem.background.packet import ContextPacket
from pipecat_tandem.background.remote.deployment import RedisDeployment
from pipecat_tandem.background.remote.job_queue import RedisJobQueue
from pipecat_tandem.background.remote.ledger import RemoteJob, RemoteJobLedger
from pipecat_tandem.background.remote.wire import (
    BusJobFollowUpMessage,
    TrustedSerializer,
    event_of,
)
from pipecat_tandem.background.runner import (
    BackgroundRunner,
    JobEvent,
    JobEventSink,
    usable_answer,
)

#: What the session says when the workers cannot be reached.
UNREACHABLE = "the background workers cannot be reached"
#: ... when a job's worker died and no other took it over.
ORPHANED = "the worker running it stopped and no other worker took it over"
#: ... when Redis lost the job (restarted without its data).
LOST = "the job queue lost it (the Redis server restarted)"


class RedisRunner(BackgroundRunner, BusSubscriber):
    """Runs a session's background jobs on remote workers. See the module docstring.

    Args:
        url: The Redis server (``redis://HOST:PORT``), or
        deployment: The deployment's names (url and deployment name).
        name: This requester's unique name (default ``session-<random>``).
        heartbeat_s: How often deadlines and orphaned jobs are checked.
        orphan_after_s: A held job whose lease is this old, and that no worker
            took over, fails (default: twice the workers' ``dead_after_s`` of 3 s
            plus a heartbeat).
        clock: Callable returning the session time (deadlines count queueing);
            defaults to the event loop's time.
        redis: A ``redis.asyncio.Redis`` client to use (default: one from the URL,
            closed by :meth:`close`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        deployment: RedisDeployment | None = None,
        name: str | None = None,
        heartbeat_s: float = 1.0,
        orphan_after_s: float = 7.0,
        clock: Callable[[], float] | None = None,
        redis: Any = None,
    ) -> None:
        if (url is None) == (deployment is None):
            raise ValueError("give exactly one of url= or deployment=")
        if heartbeat_s <= 0 or orphan_after_s <= heartbeat_s:
            raise ValueError("need 0 < heartbeat_s < orphan_after_s")
        self._d = deployment or RedisDeployment(str(url))
        self._name = name or f"session-{uuid.uuid4().hex[:10]}"
        self._ledger = RemoteJobLedger(self._name)
        self._heartbeat = heartbeat_s
        self._orphan_ms = int(orphan_after_s * 1000)
        self._now = clock
        self._redis = redis
        self._own_redis = redis is None
        self._queue: RedisJobQueue | None = None
        self._bus: Any = None
        self._tm: BaseTaskManager | None = None
        self._sink: JobEventSink | None = None
        self._watch: asyncio.Task[None] | None = None
        self._vanished: set[str] = set()  # entries missing from the stream at the last check
        self.serializer = TrustedSerializer(channel=self._d.channel)

    @property
    def name(self) -> str:
        """This requester's name on the bus."""
        return self._name

    @property
    def active_job_ids(self) -> set[str]:
        """Jobs queued or running."""
        return {j.job_id for j in self._ledger.active}

    def _time(self) -> float:
        return self._now() if self._now else asyncio.get_running_loop().time()

    async def start(self, *, task_manager: BaseTaskManager, sink: JobEventSink) -> None:
        """Connect, join the bus and start watching deadlines and orphans.

        Redis being away at this point does not fail the session: the failure is
        logged, and each job submitted before it comes back fails honestly.
        """
        self._tm, self._sink = task_manager, sink
        try:
            await self._connect()
        except Exception as e:
            logger.warning(f"{self._name}: cannot reach Redis at {self._d.safe_url}: {e}")
        self._watch = task_manager.create_task(self._watch_loop(), f"{self._name}-watch")

    async def _connect(self) -> None:
        from redis.asyncio import Redis

        from pipecat_tandem.background.remote.resilient_bus import ResilientRedisBus

        assert self._tm is not None
        if self._redis is None:
            self._redis = Redis.from_url(self._d.url)
        await self._redis.ping()
        queue = RedisJobQueue(self._redis, self._d)
        await queue.ensure_group()
        bus = ResilientRedisBus(
            redis=self._redis, channel=self._d.channel, serializer=self.serializer
        )
        await bus.setup(self._tm)
        await bus.subscribe(self)
        await bus.start()
        self._queue, self._bus = queue, bus

    async def submit(self, packet: ContextPacket) -> None:
        """Queue the job on the stream (a Redis failure becomes the job's error event)."""
        if self._sink is None:
            raise RuntimeError("RedisRunner.start() must be called before submit()")
        job = self._ledger.add(packet.job_id, now=self._time(), deadline_s=packet.deadline_s)
        fields = {"job_id": job.wire_id, "reply_to": self._name, "packet": packet.to_json()}
        try:
            if self._queue is None:
                await self._connect()
            assert self._queue is not None
            job.entry_id = await self._queue.push(fields)
        except Exception as e:
            logger.warning(f"{self._name}: could not queue {packet.job_id}: {e}")
            await self._fail(job, UNREACHABLE)

    async def cancel(self, job_id: str) -> bool:
        """Stop the job wherever it is: dropped from the queue, or stopped on its worker."""
        job = self._ledger.end(job_id)
        if job is None:
            return False
        await self._stop_remote(job, "cancelled")
        await self._emit(JobEvent(job_id, "cancelled"))
        return True

    async def follow_up(self, job_id: str, text: str) -> bool:
        """Send a follow-up to the job's worker (again to a worker that takes it over)."""
        job = self._ledger.get(job_id)
        if job is None or job.ended:
            return False
        job.follow_ups.append(text)
        await self._publish(
            BusJobFollowUpMessage(
                source=self._name,
                target=job.owner,
                job_id=job.wire_id,
                seq=len(job.follow_ups),
                text=text,
            )
        )
        return True

    async def close(self) -> None:
        """Cancel every active job, leave the bus and close the connection (idempotent)."""
        for job in self._ledger.active:
            await self.cancel(job.job_id)
        if self._watch is not None and self._tm is not None:
            await self._tm.cancel_task(self._watch, timeout=1.0)
            self._watch = None
        if self._bus is not None:
            await self._bus.stop()
            self._bus, self._queue = None, None
        if self._own_redis and self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    # Reports from the workers

    def accepts_bus_message(self, message: BusMessage) -> bool:
        """Only reports addressed to this requester."""
        return message.target == self._name

    async def on_bus_message(self, message: BusMessage) -> None:
        """Judge a worker's report against the ledger and pass it on."""
        event = event_of(message)
        if event is None:
            if not isinstance(message, BusJobCancelMessage | BusJobFollowUpMessage):
                logger.warning(f"{self._name}: dropped a malformed report from {message.source}")
            return
        wire_id, kind, text = event
        verdict = self._ledger.report(wire_id, message.source, kind)
        job = self._ledger.by_wire(wire_id)
        if job is None:
            return
        if kind == "started" and (verdict.deliver or verdict.rerun):
            # Follow-ups sent before this worker had the job never reached it.
            for seq, follow_up in enumerate(job.follow_ups, start=1):
                await self._publish(
                    BusJobFollowUpMessage(
                        source=self._name,
                        target=message.source,
                        job_id=wire_id,
                        seq=seq,
                        text=follow_up,
                    )
                )
        if verdict.rerun:
            logger.warning(f"{self._name}: {job.job_id} runs again on {message.source}")
            await self._emit(JobEvent(job.job_id, "progress", "running it again on another worker"))
            return
        if not verdict.deliver:
            logger.debug(f"{self._name}: dropped {kind} of {job.job_id}: {verdict.reason}")
            return
        if kind == "result":
            answer = usable_answer(text)
            reason = unspeakable_reason(answer) if answer is not None else "empty"
            if answer is None or reason is not None:
                logger.warning(f"{self._name}: refused {job.job_id}'s answer ({reason})")
                kind, text = "error", f"the background model returned no usable answer ({reason})"
            else:
                text = answer
        await self._emit(JobEvent(job.job_id, kind, text))
        if job.ended and job.entry_id is not None and self._queue is not None:
            # Its outcome is in: should its worker die before acknowledging it,
            # nobody runs it again.
            try:
                await self._queue.finish(job.entry_id)
            except Exception as e:
                logger.debug(f"{self._name}: could not acknowledge {job.job_id}: {e}")

    # Deadlines and orphans

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await self._check()
            except Exception as e:  # Redis away for a moment: check again next beat
                logger.warning(f"{self._name}: job watch failed: {e}")

    async def _check(self) -> None:
        for job in self._ledger.expired(self._time()):
            await self._fail(job, f"it timed out after {job.deadline_s:g} s")
        if not self._ledger.active or self._queue is None:
            return
        # An entry gone from the stream while its job is open: Redis lost it (a job's
        # own end removes it only after its outcome was sent, so wait one check).
        held = {j.entry_id: j for j in self._ledger.active if j.entry_id is not None}
        gone = await self._queue.missing(list(held))
        for entry_id in gone & self._vanished:
            await self._fail(held[entry_id], LOST)
        self._vanished = gone
        for entry in await self._queue.pending(self._orphan_ms):
            orphan = self._ledger.by_entry(entry.entry_id)
            if orphan is not None:
                logger.warning(
                    f"{self._name}: {orphan.job_id} orphaned on {entry.consumer} "
                    f"({entry.idle_ms} ms without a heartbeat)"
                )
                await self._fail(orphan, ORPHANED)

    async def _fail(self, job: RemoteJob, text: str) -> None:
        if self._ledger.end(job.job_id) is None:
            return
        await self._stop_remote(job, text)
        await self._emit(JobEvent(job.job_id, "error", text))

    async def _stop_remote(self, job: RemoteJob, reason: str) -> None:
        """Make sure the job runs nowhere: flagged, out of the queue, told to stop."""
        if self._queue is None:
            return
        try:
            await self._queue.mark_cancelled(job.wire_id)
            if job.entry_id is not None:
                await self._queue.finish(job.entry_id)
            await self._publish(
                BusJobCancelMessage(
                    source=self._name, target=job.owner, job_id=job.wire_id, reason=reason
                )
            )
        except Exception as e:  # the worker's lease check stops it once Redis is back
            logger.warning(f"{self._name}: could not stop {job.job_id} remotely: {e}")

    async def _publish(self, message: BusMessage) -> None:
        if self._bus is None:
            return
        try:
            await self._bus.send(message)
        except Exception as e:
            logger.warning(f"{self._name}: could not publish {type(message).__name__}: {e}")

    async def _emit(self, event: JobEvent) -> None:
        if self._sink is not None:
            await self._sink(event)
