#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The job registry: ids, states, limits, follow-ups and staleness. No I/O.

The registry is the single source of truth about background jobs in a session.
It validates delegation requests (empty, oversized, too many in flight), keeps
every job's lifecycle (``queued → running → done | failed | cancelled | stale``)
and refuses illegal transitions, so a job can end only once.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections import Counter
from dataclasses import dataclass, field

from pipecat_tandem.errors import DelegationError, JobStateError, UnknownJobError
from pipecat_tandem.frames import DeliveryPolicy, JobState

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be but by can could do for from have how i if in is it me my of "
    "on "
    "or please so that the this to up us was we what when where which who why will with would "
    "you your out find tell give get let make about some any just".split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased words of ``text`` that carry meaning (stop words and short words dropped)."""
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


@dataclass
class BackgroundJob:
    """One background job.

    Parameters:
        job_id: Its id (``job-1``, ``job-2``...).
        task: The task as phrased.
        policy: Delivery policy.
        created_at: Session time of the delegation.
        deadline_s: Seconds it may run, counted from ``created_at``.
        state: Current state.
        stale_reason: Why the request went stale (the job may still be running).
        follow_ups: Follow-up instructions added while it ran.
        ended_at: Session time it reached a terminal state.
        detail: Last state detail (error message, cancel reason...).
    """

    job_id: str
    task: str
    policy: DeliveryPolicy
    created_at: float
    deadline_s: float
    state: JobState = JobState.QUEUED
    stale_reason: str = ""
    follow_ups: list[str] = field(default_factory=list)
    started_at: float | None = None
    ended_at: float | None = None
    detail: str = ""

    @property
    def keywords(self) -> set[str]:
        """Content words of the task and its follow-ups (for topic tracking)."""
        words = content_words(self.task)
        for f in self.follow_ups:
            words |= content_words(f)
        return words

    @property
    def is_active(self) -> bool:
        """Whether the job is queued or running."""
        return not self.state.is_terminal


#: Every session's registry in this process (for the server's /metrics page).
_LIVE_REGISTRIES: weakref.WeakSet[JobRegistry] = weakref.WeakSet()
#: Jobs of this process that reached each terminal state (a Prometheus counter).
_ENDED: Counter[str] = Counter()


def process_job_counts() -> tuple[dict[str, int], dict[str, int]]:
    """Jobs of every live session in this process by state, and ended jobs by state.

    Returns:
        ``(current, ended_total)``: the states of the jobs the live sessions hold
        now, and how many jobs reached each terminal state since the process began.
    """
    current: Counter[str] = Counter()
    for registry in list(_LIVE_REGISTRIES):
        current.update(job.state.value for job in registry.jobs)
    return dict(current), dict(_ENDED)


class JobRegistry:
    """Creates and tracks background jobs for one session.

    Args:
        max_task_chars: Longest accepted task text.
        max_in_flight: Most jobs queued or running at once; more are refused.
        default_deadline_s: Deadline when the request gives none.
        max_deadline_s: Upper bound on any requested deadline.

    Example::

        registry = JobRegistry()
        job = registry.create("what is 1234 times 5678", now=3.2)
        registry.transition(job.job_id, JobState.RUNNING, now=3.2)
    """

    _ALLOWED: dict[JobState, frozenset[JobState]] = {
        JobState.QUEUED: frozenset(
            {JobState.RUNNING, JobState.CANCELLED, JobState.FAILED, JobState.STALE}
        ),
        JobState.RUNNING: frozenset(
            {JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.STALE}
        ),
    }

    def __init__(
        self,
        *,
        max_task_chars: int = 2000,
        max_in_flight: int = 16,
        default_deadline_s: float = 60.0,
        max_deadline_s: float = 600.0,
    ) -> None:
        if max_task_chars < 1 or max_in_flight < 1 or default_deadline_s <= 0:
            raise ValueError("max_task_chars, max_in_flight and default_deadline_s must be > 0")
        self._max_chars = max_task_chars
        self._max_in_flight = max_in_flight
        self._default_deadline = default_deadline_s
        self._max_deadline = max(max_deadline_s, default_deadline_s)
        self._jobs: dict[str, BackgroundJob] = {}
        self._ids = itertools.count(1)
        _LIVE_REGISTRIES.add(self)

    @property
    def jobs(self) -> list[BackgroundJob]:
        """Every job of the session, oldest first."""
        return list(self._jobs.values())

    def active(self) -> list[BackgroundJob]:
        """Jobs queued or running, oldest first."""
        return [j for j in self._jobs.values() if j.is_active]

    def get(self, job_id: str) -> BackgroundJob:
        """Look a job up.

        Raises:
            UnknownJobError: No job has this id.
        """
        job = self._jobs.get(str(job_id).strip())
        if job is None:
            known = ", ".join(j.job_id for j in self.active()) or "none"
            raise UnknownJobError(f"unknown job {job_id!r} (jobs in flight: {known})")
        return job

    def validate_task(self, task: object) -> str:
        """Normalize a task text or explain why it is refused.

        Raises:
            DelegationError: Empty, non-text or oversized task.
        """
        if not isinstance(task, str):
            raise DelegationError("the task must be a text describing what to do")
        text = " ".join(task.split())
        if not text:
            raise DelegationError("the task is empty: say what the background should do")
        if len(text) > self._max_chars:
            raise DelegationError(
                f"the task is too long ({len(text)} characters, at most {self._max_chars}); "
                "summarize it"
            )
        return text

    def create(
        self,
        task: object,
        *,
        now: float,
        policy: DeliveryPolicy | str | None = None,
        deadline_s: float | None = None,
    ) -> BackgroundJob:
        """Validate and register a new queued job.

        Raises:
            DelegationError: The task is refused, the policy or deadline is invalid, or too
                many jobs are in flight.
        """
        text = self.validate_task(task)
        try:
            parsed_policy = DeliveryPolicy.parse(policy)
        except ValueError as e:
            raise DelegationError(str(e)) from None
        deadline = self._default_deadline if deadline_s is None else deadline_s
        if not isinstance(deadline, int | float) or not deadline > 0:
            raise DelegationError("the deadline must be a positive number of seconds")
        if len(self.active()) >= self._max_in_flight:
            raise DelegationError(
                f"too many background jobs in flight ({self._max_in_flight}); "
                "wait for one to finish or cancel one"
            )
        job = BackgroundJob(
            job_id=f"job-{next(self._ids)}",
            task=text,
            policy=parsed_policy,
            created_at=now,
            deadline_s=min(float(deadline), self._max_deadline),
        )
        self._jobs[job.job_id] = job
        return job

    def find_similar_active(
        self, task: str, *, now: float, within_s: float
    ) -> BackgroundJob | None:
        """An active job created within ``within_s`` whose task means the same (duplicate guard)."""
        words = content_words(task)
        if not words:
            return None
        for job in reversed(self.active()):
            if now - job.created_at > within_s:
                continue
            other = job.keywords
            if other and len(words & other) / len(words | other) >= 0.7:
                return job
        return None

    def transition(self, job_id: str, state: JobState, *, now: float, detail: str = "") -> bool:
        """Move a job to ``state``.

        Returns:
            False when the job already ended (a late event for a finished job is ignored
            rather than ending it twice).

        Raises:
            UnknownJobError: No such job.
            JobStateError: A transition the lifecycle does not allow (e.g. back to queued).
        """
        job = self.get(job_id)
        if job.state.is_terminal:
            return False
        if state not in self._ALLOWED[job.state]:
            raise JobStateError(f"{job_id}: cannot go from {job.state.value} to {state.value}")
        job.state = state
        job.detail = detail
        if state is JobState.RUNNING:
            job.started_at = now
        if state.is_terminal:
            job.ended_at = now
            _ENDED[state.value] += 1
        return True

    def add_follow_up(self, job_id: str, text: object) -> BackgroundJob:
        """Attach a follow-up instruction to an active job.

        Raises:
            UnknownJobError: No such job.
            JobStateError: The job already ended.
            DelegationError: Empty or oversized text.
        """
        job = self.get(job_id)
        if not job.is_active:
            raise JobStateError(f"{job_id} already ended ({job.state.value}); delegate a new task")
        job.follow_ups.append(self.validate_task(text))
        return job

    def mark_stale(self, job_id: str, reason: str) -> BackgroundJob:
        """Flag an active job's request as stale; its result will not be read out as current."""
        job = self.get(job_id)
        if job.is_active and not job.stale_reason:
            job.stale_reason = reason
        return job

    def expired(self, now: float) -> list[BackgroundJob]:
        """Active jobs past their deadline."""
        return [j for j in self.active() if now - j.created_at >= j.deadline_s]
