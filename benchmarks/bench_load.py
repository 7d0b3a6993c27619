"""Load benchmark: many tandem sessions in one process, in real time (issue 6 §3).

Each session is the real tandem pipeline (delegation, awareness, pipecat's
aggregators, interleaver, background agent on the in-process runner) with the
benchmark's fake models of fixed latency (interaction 0.3 s, background 3 s) and
fake speech output; the user chats every 3 s and asks one background request.
Sessions start staggered over the first second. For N = 1, 10, 50 sessions (one
step each, bounded by --step-s of session time):

* plugin overhead per frame: wall time inside the plugin processors' process_frame
  (DelegationProcessor, AwarenessProcessor, ResultInterleaver), p50/p99;
* interaction-path latency (user turn end → bot starts speaking), p50/p99, against
  the 0.40 s the fake models allow;
* event-loop lag (a 50 ms ticker's overshoot), p50/p99;
* CPU per session (process CPU seconds / session seconds) → sessions per core;
* memory per session: tracemalloc peak (separate 6 s pass; it slows Python down) and
  RSS growth, divided by N.

A 5 s single-session warm-up runs first and is not reported.

Run: .venv/bin/python benchmarks/bench_load.py [--sessions 1,10,50] [--step-s 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from pipecat_tandem.bench.harness import quiet_logs, run_system
from pipecat_tandem.bench.observed import compute_observed
from pipecat_tandem.bench.scenarios import Query, Scenario, Speech
from pipecat_tandem.observe.metrics import percentile
from pipecat_tandem.processors.awareness_processor import AwarenessProcessor
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver

PLUGIN = (DelegationProcessor, AwarenessProcessor, ResultInterleaver)


def load_scenario(step_s: float, offset: float) -> Scenario:
    """Chit-chat every 3 s plus one background request, shifted by ``offset``."""
    speech = [Speech(round(0.5 + offset, 3), "please look up the weather in Paris q1", 1.0)]
    t = 3.0
    while t + 1.0 < step_s - 1.0:
        speech.append(Speech(round(t + offset, 3), "how are you today", 0.8))
        t += 3.0
    return Scenario("load", "load step", tuple(speech), (Query("q1", 3.0),), until=step_s)


class FrameTimer:
    """Times every call of the plugin processors' ``process_frame`` (wall, seconds)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._orig: dict[type, Callable[..., Any]] = {}

    def __enter__(self) -> FrameTimer:
        for cls in PLUGIN:
            orig = cls.process_frame
            self._orig[cls] = orig

            async def timed(self_: Any, frame: Any, direction: Any, _orig: Any = orig) -> None:
                t0 = time.perf_counter()
                try:
                    await _orig(self_, frame, direction)
                finally:
                    self.samples.append(time.perf_counter() - t0)

            cls.process_frame = timed  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, orig in self._orig.items():
            cls.process_frame = orig  # type: ignore[method-assign]


async def ticker(stop: asyncio.Event, lags: list[float], period: float = 0.05) -> None:
    """Measure how late a periodic 50 ms timer wakes up (event-loop lag)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(period)
        lags.append(loop.time() - t0 - period)


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except OSError:
        return 0.0


async def one_step(n: int, step_s: float, *, trace: bool = False) -> dict[str, Any]:
    stop = asyncio.Event()
    lags: list[float] = []
    tick = asyncio.ensure_future(ticker(stop, lags))
    rss0 = rss_mb()
    if trace:
        tracemalloc.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with FrameTimer() as timer:
        records = await asyncio.gather(
            *(
                run_system("tandem", load_scenario(step_s, round(i / max(n, 1), 3)))
                for i in range(n)
            )
        )
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    rss1 = rss_mb()
    stop.set()
    await tick
    latencies: list[float] = []
    delivered = owed = 0
    for r in records:
        m = compute_observed(r.to_dict())
        latencies += m.interaction_idle_s + m.interaction_loaded_s
        delivered, owed = delivered + m.delivered, owed + m.owed
    ms = [s * 1000 for s in timer.samples]
    cpu_per_session_s = cpu / (n * wall)

    def p(values: list[float], q: float) -> float | None:
        v = percentile(values, q)
        return None if v is None else round(v, 3)

    return {
        "sessions": n,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_per_session": round(cpu_per_session_s, 4),
        "sessions_per_core": round(1 / cpu_per_session_s, 1) if cpu_per_session_s else None,
        "plugin_frames": len(ms),
        "plugin_ms_p50": p(ms, 50),
        "plugin_ms_p99": p(ms, 99),
        "interaction_s_p50": p(latencies, 50),
        "interaction_s_p99": p(latencies, 99),
        "interaction_turns": len(latencies),
        "loop_lag_ms_p50": p([x * 1000 for x in lags], 50),
        "loop_lag_ms_p99": p([x * 1000 for x in lags], 99),
        "results_delivered": f"{delivered}/{owed}",
        "tracemalloc_peak_mb_per_session": round(peak / 1e6 / n, 2),
        "rss_growth_mb_per_session": round((rss1 - rss0) / n, 2),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| sessions | CPU/session | sessions/core | plugin ms/frame p50 / p99 (frames) "
        "| interaction s p50 / p99 (turns) | loop lag ms p50 / p99 | results delivered "
        "| tracemalloc peak MB/session | RSS growth MB/session | wall s |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = "".join(
        f"| {r['sessions']} | {r['cpu_per_session']:.3f} | {r['sessions_per_core']} "
        f"| {r['plugin_ms_p50']} / {r['plugin_ms_p99']} ({r['plugin_frames']}) "
        f"| {r['interaction_s_p50']} / {r['interaction_s_p99']} ({r['interaction_turns']}) "
        f"| {r['loop_lag_ms_p50']} / {r['loop_lag_ms_p99']} | {r['results_delivered']} "
        f"| {r['tracemalloc_peak_mb_per_session']} | {r['rss_growth_mb_per_session']} "
        f"| {r['wall_s']} |\n"
        for r in rows
    )
    return head + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="tandem sessions per core (real time)")
    parser.add_argument("--sessions", default="1,10,50", help="comma-separated session counts")
    parser.add_argument("--step-s", type=float, default=15.0, help="session seconds per step")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    try:
        counts = [int(x) for x in args.sessions.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--sessions: not a list of integers: {args.sessions!r}")
    if not counts or any(not 1 <= n <= 500 for n in counts):
        parser.error("--sessions: counts must be in 1..500")
    if not 5.0 <= args.step_s <= 120.0:
        parser.error("--step-s must be in 5..120")
    quiet_logs("CRITICAL")
    asyncio.run(one_step(1, 5.0))  # warm-up: imports, tool set-up, first pipeline
    rows = []
    for n in counts:
        row = asyncio.run(one_step(n, args.step_s))
        # tracemalloc slows everything down: memory is measured in a separate, shorter pass.
        mem = asyncio.run(one_step(n, 6.0, trace=True))
        row["tracemalloc_peak_mb_per_session"] = mem["tracemalloc_peak_mb_per_session"]
        rows.append(row)
        print(f"[load] {n} sessions done", file=sys.stderr, flush=True)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "load", "step_s": args.step_s, "rows": rows}, f, indent=1)
    med = statistics.median(r["cpu_per_session"] for r in rows)
    print(f"median CPU per session: {med:.3f} of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
