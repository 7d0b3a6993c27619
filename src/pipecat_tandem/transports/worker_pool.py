#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""What the parent of ``tandem run --workers N`` knows about its workers. Pure.

The parent (:mod:`~pipecat_tandem.transports.supervisor`) polls each worker's
``/healthz`` and keeps a :class:`WorkerState` per worker; this module sums
them into the one ``/healthz`` a load balancer or an operator reads, decides
when a dead worker is started again, and writes the parent's own metrics.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

from pipecat_tandem.observe.prometheus import Family

#: Most workers ``--workers`` accepts (each is a full Python process with
#: its own pipeline stack: ~100+ MB; a typo like 1000 must not fork-bomb).
MAX_WORKERS = 64


def parse_workers(value: str) -> int:
    """Parse ``--workers``.

    Raises:
        ValueError: Not an integer, below 1, or above :data:`MAX_WORKERS`.
    """
    try:
        n = int(value.strip())
    except (ValueError, AttributeError):
        raise ValueError(f"not a number of worker processes: {value!r}") from None
    if n < 1:
        raise ValueError(f"must be at least 1, got {n}")
    if n > MAX_WORKERS:
        raise ValueError(f"at most {MAX_WORKERS} worker processes, got {n}")
    return n


def describe_exit(code: int | None) -> str:
    """``exited with code 1`` / ``killed by SIGKILL`` (asyncio's negative codes)."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class WorkerState:
    """One worker as the parent last saw it.

    Parameters:
        index: Worker number (its ``pc_id`` tag is ``w<index>.``).
        pid: Process id of the current incarnation (``None`` while down).
        up: Whether its last health poll answered.
        ready: Whether its models are warm.
        ever_ready: Whether any incarnation was ever ready (a worker that dies
            before it was ever ready is a start-up failure, not restarted).
        health: Its last ``/healthz`` body.
        restarts: How many times it was started again.
        exits: The last few exits (``killed by SIGKILL holding 2 calls``).
        routed: Whether the proxy sends new calls to it (its health check passed there).
        last_calls: Calls it held at its last *answered* poll. A poll in flight
            as the worker dies fails and clears ``health``, and it may land
            before the exit is seen; the exit line must still name the calls
            that died with it.
    """

    index: int
    pid: int | None = None
    up: bool = False
    ready: bool = False
    ever_ready: bool = False
    health: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    exits: list[str] = field(default_factory=list)
    routed: bool = False
    last_calls: int = 0

    @property
    def calls(self) -> int:
        """Calls it held at its last poll."""
        return int(self.health.get("calls", 0) or 0) if self.up else 0

    def saw(self, status: int | None, body: dict[str, Any] | None) -> None:
        """Record one ``/healthz`` poll (``status`` None: no answer)."""
        self.up = status is not None
        self.health = dict(body or {}) if self.up else {}
        self.ready = bool(self.up and self.health.get("ready"))
        self.ever_ready = self.ever_ready or self.ready
        if self.up:
            self.last_calls = self.calls

    def exited(self, code: int | None) -> str:
        """Record that the process ended; returns the line to report."""
        held, self.last_calls = self.last_calls, 0
        line = f"worker {self.index} (pid {self.pid}) {describe_exit(code)}"
        line += f", ending its {held} call(s)" if held else ""
        self.exits = [*self.exits, line][-5:]
        self.pid = None
        self.routed = False
        self.saw(None, None)
        return line


def restart_delay(restarts: int) -> float:
    """Seconds to wait before starting a dead worker again (0.5 s, doubling, ≤ 10 s)."""
    return min(10.0, 0.5 * 2 ** min(restarts, 5))


def pool_health(workers: list[WorkerState]) -> tuple[int, dict[str, Any]]:
    """The parent's ``/healthz``: status code and body, summed over workers.

    200 while at least one worker is warm (alive: calls can be served);
    ``can_take_call`` is true when any worker would take a new call now (the
    proxy retries a refused offer on the next one). 503 with a reason otherwise.
    """
    ready = [w for w in workers if w.ready]
    takers = [w for w in ready if w.health.get("can_take_call") and w.routed]
    body: dict[str, Any] = {
        "status": "ready" if ready else "starting",
        "ready": bool(ready),
        "can_take_call": bool(takers),
        "calls": sum(w.calls for w in workers),
        "max_calls": sum(int(w.health.get("max_calls", 0) or 0) for w in ready),
        "workers": len(workers),
        "workers_up": sum(1 for w in workers if w.up),
        "workers_ready": len(ready),
        "worker_detail": [
            {
                "worker": w.index,
                "pid": w.pid,
                "up": w.up,
                "ready": w.ready,
                "calls": w.calls,
                "can_take_call": bool(w.health.get("can_take_call") and w.routed),
                "restarts": w.restarts,
                "last_exit": w.exits[-1] if w.exits else None,
            }
            for w in workers
        ],
    }
    if not ready:
        reasons = sorted({str(w.health.get("reason", "not answering")) for w in workers})
        body["reason"] = "no worker is ready: " + "; ".join(reasons)
        return 503, body
    if not takers:
        body["reason"] = "every worker is at its call limit"
    return 200, body


def pool_families(workers: list[WorkerState]) -> list[Family]:
    """The parent's own Prometheus families (worker liveness and restarts)."""
    up = Family("tandem_worker_up", "gauge", "1 if the worker answers its health check.")
    ready = Family("tandem_worker_ready", "gauge", "1 if the worker's models are warm.")
    restarts = Family(
        "tandem_worker_restarts_total", "counter", "Times the worker was started again."
    )
    for w in workers:
        label = {"worker": str(w.index)}
        up.add(1 if w.up else 0, **label)
        ready.add(1 if w.ready else 0, **label)
        restarts.add(w.restarts, **label)
    return [up, ready, restarts]
