#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Background runners: where background jobs execute.

:class:`BackgroundRunner` is the interface: submit a :class:`ContextPacket`,
cancel, follow up, close; progress and outcomes come back as :class:`JobEvent`s
through one sink. Everything crossing it is a plain serializable value, so a
remote runner (pipecat's bus over Redis) can implement the same interface.

:class:`InProcessRunner` runs jobs as asyncio tasks created through pipecat's
task manager, with bounded concurrency, per-job deadlines (counted from the
delegation, queueing included) and real cancellation of the work in flight.
Every exception becomes an ``error`` event; no task dies silently.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from loguru import logger
from pipecat.utils.asyncio.task_manager import BaseTaskManager

from pipecat_tandem.background.answer import unspeakable_reason
from pipecat_tandem.background.packet import ContextPacket


@dataclass
class JobEvent:
    """Something a background job reports.

    Parameters:
        job_id: The job.
        kind: ``started``, ``progress``, ``partial``, ``result``, ``error`` or ``cancelled``.
        text: Progress note, result text or error message.
    """

    job_id: str
    kind: str
    text: str = ""


JobEventSink = Callable[[JobEvent], Awaitable[None]]


class JobReporter:
    """Handed to a background worker so it can stream progress and read follow-ups."""

    def __init__(self, job_id: str, sink: JobEventSink) -> None:
        self.job_id = job_id
        self._sink = sink
        self._follow_ups: asyncio.Queue[str] = asyncio.Queue()

    async def progress(self, text: str) -> None:
        """Report a short progress note (not spoken by default)."""
        await self._sink(JobEvent(self.job_id, "progress", text))

    async def partial(self, text: str) -> None:
        """Report a partial result (delivered at a gap like a final one)."""
        await self._sink(JobEvent(self.job_id, "partial", text))

    def add_follow_up(self, text: str) -> None:
        """Queue a follow-up instruction for the worker."""
        self._follow_ups.put_nowait(text)

    def take_follow_ups(self) -> list[str]:
        """Follow-ups received since the last call."""
        items: list[str] = []
        while not self._follow_ups.empty():
            items.append(self._follow_ups.get_nowait())
        return items


class BackgroundWorker(Protocol):
    """Does one job: reasons (and uses tools) on the packet, returns the final answer."""

    async def run(self, packet: ContextPacket, reporter: JobReporter) -> str:
        """Run the job and return the final result text."""
        ...


class BackgroundRunner(ABC):
    """Executes background jobs; see the module docstring."""

    @abstractmethod
    async def start(self, *, task_manager: BaseTaskManager, sink: JobEventSink) -> None:
        """Bind to the session's task manager and event sink (called at pipeline start)."""

    @abstractmethod
    async def submit(self, packet: ContextPacket) -> None:
        """Queue a job (returns at once; the job runs when a slot is free)."""

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Stop a job's work in flight. Returns False if it was not running or queued."""

    @abstractmethod
    async def follow_up(self, job_id: str, text: str) -> bool:
        """Pass a follow-up instruction to a job. Returns False if it is not active."""

    @abstractmethod
    async def close(self) -> None:
        """Cancel every job and release resources (idempotent)."""

    @property
    @abstractmethod
    def active_job_ids(self) -> set[str]:
        """Jobs queued or running."""


_GARBAGE = re.compile(r"[A-Za-z0-9]")


def usable_answer(text: object) -> str | None:
    """The answer text if it is usable (non-empty, has letters or digits), else None."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    return text if text and _GARBAGE.search(text) else None


class InProcessRunner(BackgroundRunner):
    """Runs jobs as tasks in this process.

    Args:
        worker: What does a job (e.g. :class:`~pipecat_tandem.background.agent.BackgroundAgent`).
        max_concurrency: Jobs running at once; the rest wait in order.
        clock: Callable returning the current session time (to count queueing
            against the deadline); defaults to the event loop's time.
    """

    def __init__(
        self,
        worker: BackgroundWorker,
        *,
        max_concurrency: int = 2,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._worker = worker
        self._max = max_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._now = clock
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reporters: dict[str, JobReporter] = {}
        self._task_manager: BaseTaskManager | None = None
        self._sink: JobEventSink | None = None

    @property
    def active_job_ids(self) -> set[str]:
        """Jobs queued or running."""
        return set(self._tasks)

    async def start(self, *, task_manager: BaseTaskManager, sink: JobEventSink) -> None:
        """Bind to the session."""
        self._task_manager = task_manager
        self._sink = sink
        self._semaphore = asyncio.Semaphore(self._max)

    def _time(self) -> float:
        return self._now() if self._now else asyncio.get_running_loop().time()

    async def submit(self, packet: ContextPacket) -> None:
        """Queue a job; see :meth:`BackgroundRunner.submit`."""
        if self._task_manager is None or self._sink is None:
            raise RuntimeError("InProcessRunner.start() must be called before submit()")
        if packet.job_id in self._tasks:
            raise ValueError(f"job {packet.job_id} was already submitted")
        reporter = JobReporter(packet.job_id, self._sink)
        for text in packet.follow_ups:
            reporter.add_follow_up(text)
        self._reporters[packet.job_id] = reporter
        submitted = self._time()
        task = self._task_manager.create_task(
            self._run(packet, reporter, submitted), f"tandem-job-{packet.job_id}"
        )
        self._tasks[packet.job_id] = task

    async def _run(self, packet: ContextPacket, reporter: JobReporter, submitted: float) -> None:
        assert self._sink is not None and self._semaphore is not None
        sink = self._sink
        job_id = packet.job_id
        try:
            try:
                async with asyncio.timeout(packet.deadline_s):
                    async with self._semaphore:
                        # An operator reading a stalled job needs to see where it waited.
                        logger.debug(
                            f"background job {job_id}: running after "
                            f"{self._time() - submitted:.1f} s queued"
                        )
                        await sink(JobEvent(job_id, "started"))
                        raw = await self._worker.run(packet, reporter)
            except TimeoutError:
                logger.debug(f"background job {job_id}: timed out after {packet.deadline_s:g} s")
                await sink(JobEvent(job_id, "error", f"it timed out after {packet.deadline_s:g} s"))
                return
            except asyncio.CancelledError:
                logger.debug(f"background job {job_id}: cancelled")
                await asyncio.shield(sink(JobEvent(job_id, "cancelled")))
                raise
            except Exception as e:  # a background failure must never kill the session
                logger.warning(f"background job {job_id} failed: {e!r}")
                message = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                await sink(JobEvent(job_id, "error", message[:300]))
                return
            logger.debug(f"background job {job_id}: done {self._time() - submitted:.1f} s in")
            answer = usable_answer(raw)
            reason = unspeakable_reason(answer) if answer is not None else "empty"
            if answer is None or reason is not None:
                # Whatever the worker (a remote one, a user's own): a plan, JSON or a
                # tool call is never delivered as if it were the answer.
                logger.warning(
                    f"background job {job_id}: refused an answer ({reason}): {raw!r:.200}"
                )
                await sink(
                    JobEvent(
                        job_id,
                        "error",
                        f"the background model returned no usable answer ({reason})",
                    )
                )
            else:
                await sink(JobEvent(job_id, "result", answer))
        finally:
            self._tasks.pop(job_id, None)
            self._reporters.pop(job_id, None)

    async def cancel(self, job_id: str) -> bool:
        """Cancel the job's task (the work in flight stops)."""
        task = self._tasks.get(job_id)
        if task is None or self._task_manager is None:
            return False
        await self._task_manager.cancel_task(task, timeout=2.0)
        return True

    async def follow_up(self, job_id: str, text: str) -> bool:
        """Queue a follow-up for a running job."""
        reporter = self._reporters.get(job_id)
        if reporter is None:
            return False
        reporter.add_follow_up(text)
        return True

    async def close(self) -> None:
        """Cancel every job still queued or running."""
        for job_id in list(self._tasks):
            await self.cancel(job_id)
