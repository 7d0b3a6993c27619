"""Cue and time awareness at the caller: watch calls placed by a real caller (issue 16).

Starts ``tandem run`` (the embedded offline default, perception on) on 127.0.0.1 and
places watch calls with a real aiortc peer. The caller speaks with piper's joe voice
and sends a synthetic camera (a room, a person; webcam noise and auto-exposure),
VP8-encoded by aiortc like a browser's, 640x480 at 15 fps. It records the bot's audio
as it arrives and transcribes it with Whisper base. Per call: the request is
acknowledged (not answered), nothing is said before the event, and then

* "Tell me when the screen changes."  -> speech <= 1.0 s after the change;
* "Tell me when I wave."               -> speech after the wave starts, none before;
* "Count my squats." (n = 3..10)       -> the highest number said is n;
* "Tell me when ten seconds have passed." -> speech at 10 +- 0.5 s, none before.

    .venv/bin/python benchmarks/bench_cues_caller.py                 # the whole suite
    .venv/bin/python benchmarks/bench_cues_caller.py --ci            # one of each
    .venv/bin/python benchmarks/bench_cues_caller.py --only squats_5 wave_0
    .venv/bin/python benchmarks/bench_cues_caller.py --only wave_0 wave_1 \
        --sizes 320x240 480x360 640x480 1280x720     # waves per camera size, one server
    .venv/bin/python benchmarks/bench_cues_caller.py --codec H264    # an H.264 camera

Writes ``--out`` (JSON: per-call results, summary) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pipecat_tandem.bench.caller.ears import CallerEars
from pipecat_tandem.bench.caller.server import tandem_run
from pipecat_tandem.bench.caller.voice import CallerVoice
from pipecat_tandem.bench.caller.watch_call import WatchCaller
from pipecat_tandem.bench.caller.watches import Watch, WatchResult, ci_suite, suite


def summarize(results: list[WatchResult]) -> dict[str, Any]:
    """Headline figures per kind of watch."""
    out: dict[str, Any] = {"calls": len(results), "passed": sum(r.passed for r in results)}
    for kind in ("change", "wave", "count", "timer"):
        rs = [r for r in results if r.kind == kind]
        if not rs:
            continue
        lat = [r.latency_s for r in rs if r.latency_s is not None]
        out[kind] = {
            "passed": f"{sum(r.passed for r in rs)}/{len(rs)}",
            "acknowledged": f"{sum(r.acknowledged and not r.ack_claims for r in rs)}/{len(rs)}",
            "spoke_early": sum(r.early_speech_s >= 0.3 for r in rs),
            "latency_median_s": round(statistics.median(lat), 2) if lat else None,
            "latency_max_s": round(max(lat), 2) if lat else None,
        }
        if kind == "count":
            out[kind]["exact"] = f"{sum(r.counted == r.n for r in rs)}/{len(rs)}"
    return out


def markdown(results: list[WatchResult]) -> str:
    """A per-call table."""
    lines = [
        "| call | acknowledged | early speech s | latency s | count (n) | passed | ack / reaction heard |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lat = "–" if r.latency_s is None else f"{r.latency_s:+.2f}"
        count = f"{r.counted} ({r.n})" if r.kind == "count" else "–"
        heard = f"{r.ack} / {r.reaction}".replace("|", "/")[:150]
        lines.append(
            f"| {r.name} | {'yes' if r.acknowledged and not r.ack_claims else 'no'} | "
            f"{r.early_speech_s:.2f} | {lat} | {count} | {'yes' if r.passed else 'no'} | {heard} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    watches = ci_suite() if args.ci else suite()
    if args.only:
        watches = [w for w in watches if w.name in args.only]
        if not watches:
            sys.exit(f"no watch named {args.only}")
    voice, ears = CallerVoice(), CallerEars()
    results: list[WatchResult] = []
    calls = []
    sizes = [_size(s) for s in args.sizes] if args.sizes else [(args.width, args.height)]
    async with tandem_run(args.server_arg, log=Path(args.log) if args.log else None) as base:
        for size in sizes:
            caller = WatchCaller(base, voice, ears, fps=args.fps, size=size, video_codec=args.codec)
            for watch in watches:
                results.append(await _place(caller, watch, calls, tag=len(sizes) > 1))
    return {
        "summary": summarize(results),
        "results": [r.to_json() for r in results],
        "calls": calls,
        "markdown": markdown(results),
    }


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


async def _place(
    caller: WatchCaller, watch: Watch, calls: list[dict[str, Any]], *, tag: bool
) -> WatchResult:
    """One watch call, graded; its record goes to ``calls`` (named ``@WxH`` if ``tag``)."""
    started = time.monotonic()
    record = await caller.call(watch)
    if caller.video_codec not in (None, record.peer.video_codec):
        sys.exit(f"asked for {caller.video_codec}, the call used {record.peer.video_codec}")
    heard = caller.hear(record)
    result = caller.grade(record, heard)
    if tag:
        result.name = f"{result.name}@{caller.size[0]}x{caller.size[1]}"
    t0 = record.times.request_end
    calls.append(
        {
            "watch": result.name,
            "seconds": round(time.monotonic() - started, 1),
            "codec": record.peer.video_codec,
            "event_at": None
            if record.times.event_at is None
            else round(record.times.event_at - t0, 2),
            "heard": [
                {"t": round(h.start - t0, 2), "end": round(h.end - t0, 2), "text": h.text}
                for h in heard
            ],
        }
    )
    print(f"[watch] {result.name}: {result.to_json()}", file=sys.stderr)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ci", action="store_true", help="the CI subset (one of each)")
    p.add_argument("--only", nargs="*", help="watch names to run")
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument(
        "--codec", choices=["VP8", "H264"], help="the camera's codec (default: the server's pick)"
    )
    p.add_argument("--sizes", nargs="*", help="camera sizes (WxH) to run every watch at")
    p.add_argument("--out", default="cues_caller.json", help="JSON report path")
    p.add_argument("--log", help="write the server's log here")
    p.add_argument("--server-arg", action="append", default=[], help="extra `tandem run` argument")
    args = p.parse_args()
    report = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))
    print(report["markdown"])


if __name__ == "__main__":
    main()
