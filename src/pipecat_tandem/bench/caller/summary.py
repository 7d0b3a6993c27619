"""The conversation suite's report: a summary, a per-turn markdown table, JSON."""

from __future__ import annotations

import math
import statistics
from typing import Any

from pipecat_tandem.bench.caller.grading import TurnResult


def _pct(values: list[float], q: float) -> float | None:
    """The median for ``q`` = 0.5, else the nearest-rank percentile (never below it)."""
    if not values:
        return None
    if q == 0.5:
        return statistics.median(values)
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def summarize(results: list[TurnResult]) -> dict[str, Any]:
    """Headline figures of a suite run (``None`` where no turn measured a figure)."""
    chat = [r for r in results if r.kind in ("chat", "topic", "barge_in")]
    chat_lat = [r.latency_s for r in chat if r.latency_s is not None]
    busy_lat = [r.latency_s for r in results if r.kind == "busy_chat" and r.latency_s is not None]
    idle_p50, busy_p50 = _pct(chat_lat, 0.5), _pct(busy_lat, 0.5)
    jobs = [r for r in results if r.answer_spoken is not None]
    job_times = [r.result_s for r in jobs if r.result_s is not None]
    acks = [r.latency_s for r in results if r.kind == "job" and r.latency_s is not None]
    timers = [r for r in results if r.kind == "timer"]
    graded = [r for r in results if r.on_topic is not None]
    quiet = [r for r in results if r.stayed_quiet is not None]
    return {
        "turns": len(results),
        # A turn the caller spoke in; a silence that only waits for a job owes no reply.
        "unanswered": sum(
            1
            for r in results
            if r.latency_s is None and r.stayed_quiet is None and r.kind not in ("silence", "noise")
        ),
        "on_topic": f"{sum(1 for r in graded if r.on_topic)}/{len(graded)}",
        "chat_latency_p50_s": idle_p50,
        "chat_latency_p90_s": _pct(chat_lat, 0.9),
        "chat_during_job_p50_s": busy_p50,
        "chat_during_job_vs_idle": (
            round(busy_p50 / idle_p50, 2) if busy_p50 is not None and idle_p50 else None
        ),
        "job_ack_latency_p50_s": _pct(acks, 0.5),
        "jobs_answered": f"{sum(1 for r in jobs if r.answer_spoken)}/{len(jobs)}",
        "job_result_median_s": statistics.median(job_times) if job_times else None,
        "job_result_p90_s": _pct(job_times, 0.9),
        "not_an_answer": sum(1 for r in results if r.not_an_answer),
        "spoke_over_user": sum(1 for r in results if r.spoke_over_user),
        # A reply that started in a pause and yielded when the caller went on.
        "brief_overlaps": sum(1 for r in results if 0 < r.over_user_s < 0.3),
        "timer_errors_s": [
            None if r.fired_s is None else round(r.fired_s - _due(r), 2) for r in timers
        ],
        "timer_early_claims": sum(1 for r in timers if r.early_claim),
        "stayed_quiet": f"{sum(1 for r in quiet if r.stayed_quiet)}/{len(quiet)}",
    }


def _due(r: TurnResult) -> float:
    return r.due_s if r.due_s is not None else 0.0


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v).replace("|", "/")


def markdown(results: list[TurnResult]) -> str:
    """A summary list and a per-turn table."""
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(v)} |" for k, v in summarize(results).items()]
    lines += [
        "",
        "| conversation | # | kind | caller said | latency s | on topic | over user | "
        "result s | answer | bot said (caller's transcript) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        topic = r.on_topic if r.on_topic is not None else r.stayed_quiet
        lines.append(
            f"| {r.conversation} | {r.index} | {r.kind} | {_cell(r.said)} | {_cell(r.latency_s)} | "
            f"{_cell(topic)} | {_cell(r.spoke_over_user)} | {_cell(r.result_s or r.fired_s)} | "
            f"{_cell(r.answer_spoken)} | {_cell(r.heard[:160])} |"
        )
    return "\n".join(lines)
