"""Benchmark of the tandem core (issue 2).

1. Interaction-path latency (user turn end → bot starts speaking) over N chit-chat turns,
   with no background job vs 8 background jobs streaming (fake models with fixed delays,
   real pipecat pipeline, real time). Reported as medians and their ratio (target ≤ 1.05).
2. Plugin overhead per frame: audio frames through [DelegationProcessor, ResultInterleaver]
   vs two pass-through processors, in one pipeline run each; p50/p99 per frame.
3. Delivery decision cost: DeliveryScheduler add+poll with many outputs pending.

Run: .venv/bin/python benchmarks/bench_core.py [--turns 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger  # noqa: E402
from pipecat.frames.frames import Frame, InputAudioRawFrame  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from tests.support.fake_llm import FakeReply  # noqa: E402
from tests.support.scenario import run_scenario, say  # noqa: E402

from pipecat_tandem.background.runner import InProcessRunner  # noqa: E402
from pipecat_tandem.frames import DeliveryPolicy  # noqa: E402
from pipecat_tandem.policy.delivery import DeliveryScheduler  # noqa: E402
from pipecat_tandem.processors import DelegationProcessor, ResultInterleaver  # noqa: E402

logger.remove()
logger.add(sys.stderr, level="ERROR")


def chit_chat(messages):
    return FakeReply(text="Sure, happy to help with that.")


def long_background(messages):
    return FakeReply(text=" ".join(["word"] * 1500))


async def interaction_latency(turns: int, jobs: int) -> list[float]:
    script = []
    for i in range(turns):
        script += say(1.0 + 3.0 * i, f"tell me something nice number {i}", 0.8)

    async def start_jobs(tandem):
        topics = [
            "volcanoes",
            "tides",
            "glaciers",
            "comets",
            "forests",
            "deserts",
            "rivers",
            "storms",
        ]
        for topic in topics[:jobs]:
            await tandem.delegation.delegate(f"research {topic} thoroughly")

    r = await run_scenario(
        script,
        interaction=chit_chat,
        background=long_background,
        background_delay_s=0.0,
        background_per_word_s=0.01,
        until=3.0 * turns + 2.0,
        actions=[(0.2, start_jobs)] if jobs else [],
        max_concurrency=8,
    )
    stops = [e["t"] for e in r.events if e["kind"] == "user_stopped"]
    starts = [e["t"] for e in r.events if e["kind"] == "bot_started"]
    lat = []
    for s in stops:
        after = [b for b in starts if b >= s]
        if after:
            lat.append(after[0] - s)
    if jobs:
        running = [e for e in r.events if e["kind"] == "job_state" and e["state"] == "running"]
        if len(running) != jobs:
            kinds = [
                (e["kind"], e.get("state"), e.get("detail")) for e in r.events if e.get("job_id")
            ]
            raise RuntimeError(f"background jobs did not all run: {kinds[:40]}")
    return lat


def _timed(cls: type[FrameProcessor], samples: list[float]) -> type[FrameProcessor]:
    """A subclass recording the time each audio frame spends in ``process_frame``."""

    class Timed(cls):  # type: ignore[valid-type, misc]
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            t0 = time.perf_counter()
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                samples.append(time.perf_counter() - t0)

    return Timed


class _Pass(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


async def frame_overhead(n: int) -> tuple[list[float], list[float]]:
    """Per-frame processing time of the two tandem processors vs two pass-throughs."""
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.tests.utils import SleepFrame, run_test

    class _NoRunner(InProcessRunner):
        def __init__(self) -> None:
            super().__init__(worker=None)  # type: ignore[arg-type]

    base: list[float] = []
    plug: list[float] = []
    delegation = _timed(DelegationProcessor, plug)(runner=_NoRunner())
    interleaver = _timed(ResultInterleaver, plug)(min_gap_s=0.5)
    passes = [_timed(_Pass, base)(), _timed(_Pass, base)()]
    frames: list[Frame] = []
    for _ in range(n):
        frames.append(InputAudioRawFrame(audio=b"\0" * 640, sample_rate=16000, num_channels=1))
        frames.append(SleepFrame(0.001))  # paced, so queueing does not count
    await run_test(Pipeline([delegation, interleaver]), frames_to_send=frames)
    await run_test(Pipeline(passes), frames_to_send=frames)
    # Two processors each: sum consecutive pairs into a per-frame figure.
    return [a + b for a, b in zip(base[::2], base[1::2], strict=False)], [
        a + b for a, b in zip(plug[::2], plug[1::2], strict=False)
    ]


def decision_cost(pending: int, rounds: int = 2000) -> list[float]:
    s = DeliveryScheduler(min_gap_s=0.5)
    s.user_started(0.0)
    for i in range(pending):
        s.add(job_id=f"p{i}", text="x", now=0.0)
    out = []
    for i in range(rounds):
        t0 = time.perf_counter()
        s.add(job_id=f"r{i}", text="y", now=1.0, policy=DeliveryPolicy.WHEN_IDLE)
        s.poll(1.0)
        s.next_wakeup(1.0)
        out.append(time.perf_counter() - t0)
        s.drop_job(f"r{i}", 1.0)
        s.drain_events()
    return out


def q(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round((len(data) - 1) * p / 100)))]


def write_json(path: str, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=2))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--json")
    args = ap.parse_args()
    idle = await interaction_latency(args.turns, 0)
    loaded = await interaction_latency(args.turns, 8)
    base, plug = await frame_overhead(args.frames)
    dec = decision_cost(50)
    res = {
        "cpu_count": os.cpu_count(),
        "turns": args.turns,
        "interaction_latency_idle_p50_s": statistics.median(idle),
        "interaction_latency_8_jobs_p50_s": statistics.median(loaded),
        "latency_ratio_8_jobs_vs_idle": statistics.median(loaded) / statistics.median(idle),
        "passthrough_pair_per_frame_p50_ms": q(base, 50) * 1e3,
        "tandem_pair_per_frame_p50_ms": q(plug, 50) * 1e3,
        "tandem_pair_per_frame_p99_ms": q(plug, 99) * 1e3,
        "tandem_vs_passthrough_p50_ratio": q(plug, 50) / q(base, 50),
        "delivery_decision_p50_us": q(dec, 50) * 1e6,
        "delivery_decision_p99_us": q(dec, 99) * 1e6,
    }
    for k, v in res.items():
        print(f"{k:40s} {v:.4f}" if isinstance(v, float) else f"{k:40s} {v}")
    if args.json:
        write_json(args.json, res)


if __name__ == "__main__":
    asyncio.run(main())
