#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Runs the scenario benchmark and renders it as JSON and a markdown table."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from typing import Any

from pipecat_tandem.bench.harness import MIN_GAP_S, SYSTEMS, run_system
from pipecat_tandem.bench.observed import ObservedMetrics, compute_observed
from pipecat_tandem.bench.scenarios import Scenario
from pipecat_tandem.bench.virtual_time import run_virtual

LABELS = {"tandem": "pipecat-tandem", "llm_with_backend": "LLMWithBackend"}


def run_benchmark(
    scenarios: list[Scenario],
    seeds: list[int],
    *,
    systems: tuple[str, ...] = SYSTEMS,
    keep_records: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario × seed × system on virtual time; return the JSON-ready result.

    Raises:
        ValueError: No scenarios, no seeds, or an unknown system.
    """
    if not scenarios or not seeds:
        raise ValueError("nothing to run: give at least one scenario and one seed")
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"systems must be a non-empty subset of {SYSTEMS}, got {systems}")
    started = time.perf_counter()
    per_scenario: dict[str, Any] = {}
    totals = {s: ObservedMetrics() for s in systems}
    runs: list[dict[str, Any]] = []
    for sc in scenarios:
        entry: dict[str, Any] = {"title": sc.title, "systems": {}}
        for system in systems:
            pooled = ObservedMetrics()
            self_reported: list[dict[str, Any]] = []
            for seed in seeds:
                record = run_virtual(run_system(system, sc, seed)).to_dict()
                metrics = compute_observed(record)
                pooled.add(metrics)
                if record.get("self_reported") is not None:
                    self_reported.append(record["self_reported"])
                run = {"scenario": sc.name, "system": system, "seed": seed}
                run["metrics"] = metrics.summary(MIN_GAP_S)
                if keep_records:
                    run["record"] = record
                runs.append(run)
            totals[system].add(pooled)
            summary = pooled.summary(MIN_GAP_S)
            if self_reported:
                summary["self_reported"] = {
                    k: sum(r.get(k) or 0 for r in self_reported)
                    for k in ("lost", "repeated", "deliveries_over_user", "deliveries_over_bot",
                              "stale_read_as_current")
                }  # fmt: skip
            entry["systems"][system] = summary
            if progress is not None:
                progress(f"{sc.name:14s} {LABELS[system]:15s} done")
        per_scenario[sc.name] = entry
    return {
        "benchmark": "scenarios",
        "virtual_time": True,
        "seeds": list(seeds),
        "min_gap_s": MIN_GAP_S,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "wall_s": round(time.perf_counter() - started, 2),
        "scenarios": per_scenario,
        "totals": {s: m.summary(MIN_GAP_S) for s, m in totals.items()},
        "runs": runs,
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.2f}"
    return str(x)


def render_markdown(result: dict[str, Any]) -> str:
    """The benchmark as markdown tables (per scenario, then totals)."""
    n = len(result["seeds"])
    lines = [
        f"Seeds per scenario: {n}. Counts are summed over seeds. Latencies in seconds "
        "(ready → delivered: model produced the answer → bot starts saying it).",
        "",
        "| scenario | system | owed | delivered | lost | repeated | stale read | over user "
        "| over bot | ready→delivered p50 / p95 | quiet gap p50 (≥ "
        f"{result['min_gap_s']} s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in result["scenarios"].items():
        for system, s in entry["systems"].items():
            lost = _fmt(s["lost"]) + (
                f" (+{s['unfinished']} unfinished)" if s["unfinished"] else ""
            )
            lines.append(
                f"| {name} | {LABELS[system]} | {s['owed']} | {s['delivered']} | {lost} "
                f"| {s['repeated']} | {s['stale_read']} | {s['over_user']} | {s['over_bot']} "
                f"| {_fmt(s['latency_p50_s'])} / {_fmt(s['latency_p95_s'])} "
                f"| {_fmt(s['gap_p50_s'])} ({s['gap_ok']}/{s['deliveries']}) |"
            )
    lines += [
        "",
        "| totals | owed | delivered | lost | repeated | stale read | over user | over bot "
        "| ready→delivered p50 / p95 | interaction p50 idle / loaded (ratio) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for system, s in result["totals"].items():
        idle, loaded = s["interaction_idle_p50_s"], s["interaction_loaded_p50_s"]
        ratio = f"{loaded / idle:.2f}" if idle and loaded else "–"
        lines.append(
            f"| {LABELS[system]} | {s['owed']} | {s['delivered']} | {s['lost']} | {s['repeated']} "
            f"| {s['stale_read']} | {s['over_user']} | {s['over_bot']} "
            f"| {_fmt(s['latency_p50_s'])} / {_fmt(s['latency_p95_s'])} "
            f"| {_fmt(idle)} / {_fmt(loaded)} ({ratio}) |"
        )
    return "\n".join(lines) + "\n"
