#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The job queue: a Redis stream read by one consumer group of workers.

Why a stream and not pipecat's pub/sub bus for the jobs themselves: a message
published while no worker listens is gone, and the bus offers no hand-off to
exactly one of several workers. A stream keeps each job until a worker takes
it (``XREADGROUP``: each entry to exactly one consumer), keeps it pending until
the worker acknowledges it (``XACK``), and lets another worker take over a
pending entry that has sat idle too long (``XAUTOCLAIM``). Measured in
``docs/benchmarks.md`` ("Remote background workers over Redis").

Leases: a worker renews its running entries every heartbeat (``XCLAIM ...
JUSTID`` resets their idle time without counting a delivery), atomically and
only for entries it still owns (a Lua script), so an entry idle longer than
``dead_after`` belongs to a worker that stopped heartbeating; a live worker then
claims it and runs it again. The delivery count tells how many runs it had.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pipecat_tandem.background.remote.deployment import RedisDeployment

# Renew the lease of each given entry the consumer still owns; returns those ids.
_RENEW = """
local mine = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    table.insert(mine, ARGV[i])
  end
end
return mine
"""


T = TypeVar("T")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass
class QueuedJob:
    """One entry read from the job stream.

    Parameters:
        entry_id: The stream entry id.
        fields: Its fields, decoded (``job_id``, ``reply_to``, ``packet``).
        deliveries: How many times it was handed to a worker (1 on the first run).
    """

    entry_id: str
    fields: dict[str, str]
    deliveries: int = 1


@dataclass
class PendingEntry:
    """A job a worker holds without having acknowledged it.

    Parameters:
        entry_id: The stream entry id.
        consumer: The worker holding it.
        idle_ms: Time since its lease was last renewed (or it was delivered).
        deliveries: How many times it was handed to a worker.
    """

    entry_id: str
    consumer: str
    idle_ms: int
    deliveries: int


class RedisJobQueue:
    """Stream operations on a deployment's job queue.

    Args:
        redis: A ``redis.asyncio.Redis`` client (not closed here).
        deployment: The deployment's names.
    """

    def __init__(self, redis: Any, deployment: RedisDeployment) -> None:
        self._redis = redis
        self._d = deployment
        self._renew = redis.register_script(_RENEW)

    async def ensure_group(self) -> None:
        """Create the stream and the workers' group if missing (from the start: no job missed)."""
        try:
            await self._redis.xgroup_create(self._d.stream, self._d.group, id="0", mkstream=True)
        except Exception as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _grouped(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``; if Redis lost the group (restarted without its data), make it again."""
        try:
            return await call()
        except Exception as e:
            if "NOGROUP" not in str(e):
                raise
        await self.ensure_group()
        return await call()

    async def push(self, fields: dict[str, str]) -> str:
        """Queue a job; returns its entry id."""
        return _text(await self._redis.xadd(self._d.stream, fields))

    async def read(self, consumer: str, count: int, block_ms: int) -> list[QueuedJob]:
        """Take up to ``count`` new jobs for ``consumer``, waiting up to ``block_ms``."""
        answer = await self._grouped(
            lambda: self._redis.xreadgroup(
                self._d.group, consumer, {self._d.stream: ">"}, count=count, block=block_ms
            )
        )
        jobs: list[QueuedJob] = []
        for _, entries in answer or []:
            for entry_id, fields in entries:
                if fields:  # an entry deleted after delivery comes back empty
                    jobs.append(QueuedJob(_text(entry_id), _decode(fields)))
        return jobs

    async def renew(self, consumer: str, entry_ids: list[str]) -> set[str]:
        """Renew ``consumer``'s leases; returns the entries it still owns."""
        if not entry_ids:
            return set()
        mine = await self._grouped(
            lambda: self._renew(keys=[self._d.stream], args=[self._d.group, consumer, *entry_ids])
        )
        return {_text(m) for m in mine or []}

    async def claim_idle(self, consumer: str, min_idle_ms: int, count: int) -> list[QueuedJob]:
        """Take over up to ``count`` jobs whose worker stopped renewing them."""
        if count < 1:
            return []
        answer = await self._grouped(
            lambda: self._redis.xautoclaim(
                self._d.stream, self._d.group, consumer, min_idle_ms, start_id="0-0", count=count
            )
        )
        claimed = answer[1] if len(answer) > 1 else []
        jobs: list[QueuedJob] = []
        for entry_id, fields in claimed:
            eid = _text(entry_id)
            if not fields:
                await self.finish(eid)
                continue
            info = await self._redis.xpending_range(
                self._d.stream, self._d.group, min=eid, max=eid, count=1
            )
            deliveries = int(info[0]["times_delivered"]) if info else 2
            jobs.append(QueuedJob(eid, _decode(fields), deliveries))
        return jobs

    async def pending(self, min_idle_ms: int, count: int = 200) -> list[PendingEntry]:
        """Held jobs whose lease has not been renewed for ``min_idle_ms``."""
        rows = await self._grouped(
            lambda: self._redis.xpending_range(
                self._d.stream, self._d.group, min="-", max="+", count=count, idle=min_idle_ms
            )
        )
        return [
            PendingEntry(
                _text(r["message_id"]),
                _text(r["consumer"]),
                int(r["time_since_delivered"]),
                int(r["times_delivered"]),
            )
            for r in rows
        ]

    async def missing(self, entry_ids: list[str]) -> set[str]:
        """The entries no longer in the stream (finished, or lost with Redis's data)."""
        if not entry_ids:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id in entry_ids:
                pipe.xrange(self._d.stream, min=entry_id, max=entry_id, count=1)
            found = await pipe.execute()
        return {e for e, rows in zip(entry_ids, found, strict=True) if not rows}

    async def finish(self, entry_id: str) -> None:
        """Acknowledge and delete a job's entry (it will not run again)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._d.stream, self._d.group, entry_id)
            pipe.xdel(self._d.stream, entry_id)
            await pipe.execute()

    async def mark_cancelled(self, wire_id: str, ttl_s: int = 3600) -> None:
        """Flag a job as cancelled (a worker checks before starting it)."""
        await self._redis.set(self._d.cancel_key(wire_id), b"1", ex=ttl_s)

    async def is_cancelled(self, wire_id: str) -> bool:
        """Whether the job was cancelled."""
        return bool(await self._redis.exists(self._d.cancel_key(wire_id)))


def _decode(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in fields.items()}
