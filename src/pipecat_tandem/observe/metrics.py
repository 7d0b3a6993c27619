#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Session metrics computed from the event log (pure; works on any list of events).

Definitions (per background *output*: a result, partial result or failure notice):

* **ready→delivered latency**: time from ``result_ready`` to the first ``delivered``
  emission that carried the output.
* **deliveries over the user / bot**: spoken ``delivered`` emissions made while the
  user (or, for non-``interrupt`` deliveries, the bot) was speaking.
* **lost**: outputs that became ready and were never accounted for (no
  ``confirmed``, ``merged``, ``into_context``, ``dropped_stale``,
  ``dropped_session_end`` or ``delivery_failed``).
* **into context**: outputs the user cut off more often than ``max_redeliveries``
  allows, put into the context silently instead of being announced again (the
  model brings them up when asked; see ``DeliveryScheduler``).
* **delivery failures**: outputs settled ``delivery_failed`` (wording or emitting
  their delivery raised; the user was told, see ``DeliveryScheduler.fail``).
* **repeated**: extra emissions of an output beyond the first that were not
  re-deliveries of a cut-off announcement.
* **stale read as current**: stale outputs carried by a delivery as a plain result
  instead of an offer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

#: Event kinds that settle an output: one of them means the output was not lost.
ACCOUNTED = frozenset(
    {
        "confirmed",
        "merged",
        "into_context",
        "dropped_stale",
        "dropped_session_end",
        "delivery_failed",
    }
)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile ``q`` in [0, 100] of ``values`` (None when empty)."""
    if not values:
        return None
    data = sorted(values)
    k = (len(data) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


@dataclass
class SessionMetrics:
    """Metrics of one session (see the module docstring)."""

    outputs: int = 0
    deliveries: int = 0
    delivered_outputs: int = 0
    deliveries_over_user: int = 0
    deliveries_over_bot: int = 0
    lost: int = 0
    repeated: int = 0
    stale_read_as_current: int = 0
    dropped_stale: int = 0
    redeliveries: int = 0
    into_context: int = 0
    failures: int = 0
    delivery_failures: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latencies_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


def compute_metrics(events: list[dict[str, Any]]) -> SessionMetrics:
    """Compute :class:`SessionMetrics` from event-log events (any order)."""
    events = sorted(events, key=lambda e: e.get("t", 0.0))
    ready: dict[str, float] = {}
    first_delivery: dict[str, float] = {}
    emissions: Counter[str] = Counter()
    interruptions: Counter[str] = Counter()
    accounted: set[str] = set()
    failed_delivery: set[str] = set()
    into_context: set[str] = set()
    m = SessionMetrics()
    for e in events:
        kind = e.get("kind")
        t = float(e.get("t", 0.0))
        if kind == "result_ready" and e.get("output_id"):
            ready.setdefault(e["output_id"], t)
            if e.get("output_kind") == "failure":
                m.failures += 1
        elif kind == "delivered":
            items = e.get("items") or []
            m.deliveries += 1
            spoken = e.get("mode") != "silent"
            if spoken and e.get("user_speaking"):
                m.deliveries_over_user += 1
            if spoken and e.get("bot_speaking") and e.get("policy") != "interrupt":
                m.deliveries_over_bot += 1
            if e.get("delivery") == "redelivered":
                m.redeliveries += 1
            for item in items:
                oid = item.get("output_id")
                if not oid:
                    continue
                emissions[oid] += 1
                first_delivery.setdefault(oid, t)
                # A stale output kept in the context is not read out either.
                treatment = item.get("treatment")
                if item.get("stale") and treatment not in ("offer", "failure", "context"):
                    m.stale_read_as_current += 1
        elif kind == "delivery_interrupted":
            for oid in e.get("output_ids") or []:
                interruptions[oid] += 1
        elif kind in ACCOUNTED and e.get("output_id"):
            oid = e["output_id"]
            if kind == "delivery_failed" and oid not in failed_delivery:
                # Counted once per output, however many events repeat it.
                failed_delivery.add(oid)
                m.delivery_failures += 1
            accounted.add(oid)
            if kind == "into_context":
                into_context.add(oid)
            elif kind == "dropped_stale":
                m.dropped_stale += 1
    m.outputs = len(ready)
    m.delivered_outputs = len(first_delivery)
    m.into_context = len(into_context)
    m.lost = len([oid for oid in ready if oid not in accounted])
    m.repeated = sum(max(0, n - 1 - interruptions[oid]) for oid, n in emissions.items())
    m.latencies_s = [round(first_delivery[o] - ready[o], 6) for o in ready if o in first_delivery]
    m.latency_p50_s = percentile(m.latencies_s, 50)
    m.latency_p95_s = percentile(m.latencies_s, 95)
    return m
