#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The requester's book of remote jobs: who runs each, what it may still report. No I/O.

A remote job can run more than once (its worker died and another took it over),
and a worker that was only slow can keep talking after its job moved on. The
ledger is where "never delivered twice" is enforced: a job has one current
owner (the worker that reported ``started`` last); reports from any other worker
are dropped, and once a job has ended (result, error, cancelled, deadline or
orphaned) every later report for it is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Event kinds that end a job.
TERMINAL_KINDS = frozenset({"result", "error", "cancelled"})


@dataclass
class RemoteJob:
    """One job sent to the workers.

    Parameters:
        job_id: The session's job id.
        wire_id: Its id on the wire (unique across sessions).
        submitted: When it was submitted (the runner's clock).
        deadline_s: Seconds it may take, queueing included.
        entry_id: Its entry in the job stream, once queued.
        owner: The worker running it (last ``started``), if any.
        runs: How many times a worker started it.
        follow_ups: Follow-ups added after submission, in order.
        ended: Whether it reached an end (nothing more is delivered).
    """

    job_id: str
    wire_id: str
    submitted: float
    deadline_s: float
    entry_id: str | None = None
    owner: str | None = None
    runs: int = 0
    follow_ups: list[str] = field(default_factory=list)
    ended: bool = False


@dataclass(frozen=True)
class Verdict:
    """What to do with one report.

    Parameters:
        deliver: Hand the event to the session (else drop it).
        rerun: A new worker took the job over (re-send the follow-ups to it).
        reason: Why it is dropped (for the log).
    """

    deliver: bool
    rerun: bool = False
    reason: str = ""


class RemoteJobLedger:
    """Tracks a requester's remote jobs. See the module docstring.

    Args:
        requester: The requester's unique name (prefix of every wire id).
    """

    def __init__(self, requester: str) -> None:
        if not requester or ":" in requester:
            raise ValueError("the requester name must be non-empty and contain no ':'")
        self._requester = requester
        self._jobs: dict[str, RemoteJob] = {}
        self._by_wire: dict[str, RemoteJob] = {}

    @property
    def active(self) -> list[RemoteJob]:
        """Jobs not ended, oldest first."""
        return [j for j in self._jobs.values() if not j.ended]

    def add(self, job_id: str, *, now: float, deadline_s: float) -> RemoteJob:
        """Register a new job.

        Raises:
            ValueError: The id was already submitted.
        """
        if job_id in self._jobs:
            raise ValueError(f"job {job_id} was already submitted")
        job = RemoteJob(job_id, f"{self._requester}:{job_id}", now, deadline_s)
        self._jobs[job_id] = job
        self._by_wire[job.wire_id] = job
        return job

    def get(self, job_id: str) -> RemoteJob | None:
        """The job with this session id, if known."""
        return self._jobs.get(job_id)

    def by_wire(self, wire_id: str) -> RemoteJob | None:
        """The job with this wire id, if it is one of ours."""
        return self._by_wire.get(wire_id)

    def by_entry(self, entry_id: str) -> RemoteJob | None:
        """The active job queued as this stream entry, if any."""
        for job in self._jobs.values():
            if job.entry_id == entry_id and not job.ended:
                return job
        return None

    def report(self, wire_id: str, source: str, kind: str) -> Verdict:
        """Judge a worker's report (``started``, ``progress``, ``result``...)."""
        job = self._by_wire.get(wire_id)
        if job is None:
            return Verdict(False, reason="not one of this requester's jobs")
        if job.ended:
            return Verdict(False, reason="the job already ended")
        if kind == "started":
            rerun = job.owner is not None and job.owner != source
            if job.owner == source and job.runs:
                return Verdict(False, reason="a repeated start")
            job.owner = source
            job.runs += 1
            return Verdict(not rerun, rerun=rerun)
        if job.owner is None:
            # A report before its start cannot come from one worker (one connection
            # keeps order); adopt the sender rather than lose the job's outcome.
            job.owner = source
            job.runs += 1
        elif source != job.owner:
            return Verdict(False, reason=f"from {source}, not the job's worker {job.owner}")
        if kind in TERMINAL_KINDS:
            job.ended = True
        return Verdict(True)

    def end(self, job_id: str) -> RemoteJob | None:
        """End a job on the requester's side (cancel, deadline, orphan).

        Returns:
            The job, or ``None`` if it is unknown or already ended.
        """
        job = self._jobs.get(job_id)
        if job is None or job.ended:
            return None
        job.ended = True
        return job

    def expired(self, now: float) -> list[RemoteJob]:
        """Active jobs past their deadline."""
        return [j for j in self.active if now - j.submitted >= j.deadline_s]
