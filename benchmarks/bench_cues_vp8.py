"""Cue calibration on video as it arrives through WebRTC, VP8 or H.264 (issue 16, part 2).

Every clip of ``pipecat_tandem.bench.caller.calibration`` (a room with a small object
moving in a corner for 60 s, a person standing still, a scene cut, another room,
the lights going off, a person walking in, a wave, squats) is filmed through a
webcam sensor model (auto-exposure, noise, flicker), encoded and decoded by
aiortc's own VP8 codec with a call's settings (``--codec h264``: aiortc's H.264,
at a bitrate kept in aiortc's 500 k - 3 M), sampled at the server's 5 fps and
given to the server's cue detectors. It runs over seeds, sender resolutions, frame
rates and bitrates, prints every clip whose cues are wrong, and how late the
squats' motion onset and offset came (seconds after the body started and stopped).

    .venv/bin/python benchmarks/bench_cues_vp8.py                    # seeds 0-3, full grid
    .venv/bin/python benchmarks/bench_cues_vp8.py --seeds 0 --quick  # 640x480 only
    .venv/bin/python benchmarks/bench_cues_vp8.py --codec h264 --seeds 0 1 --sizes 640x480

Writes ``--out`` (JSON) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from pipecat_tandem.bench.caller.calibration import (
    check,
    clips,
    motion_delay_table,
    motion_delays,
    run_clip,
)
from pipecat_tandem.bench.caller.codec_loop import CODECS, H264_BITRATES

GRID = [
    ((640, 480), 15.0, 500_000),
    ((640, 480), 30.0, 250_000),
    ((640, 480), 15.0, 1_500_000),
    ((320, 240), 15.0, 250_000),
    ((480, 360), 10.0, 500_000),
    ((1280, 720), 15.0, 1_500_000),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3])
    p.add_argument("--quick", action="store_true", help="640x480 at 15 fps, 500 kbit/s only")
    p.add_argument("--sizes", nargs="*", help="only these sender sizes (e.g. 320x240 1280x720)")
    p.add_argument("--idle-s", type=float, default=60.0, help="length of the idle clip")
    p.add_argument("--codec", choices=CODECS, default="vp8")
    p.add_argument("--out", default=None, help="JSON rows (default cues_<codec>.json)")
    args = p.parse_args()
    grid = GRID[:1] if args.quick else GRID
    if args.sizes:
        grid = [g for g in grid if f"{g[0][0]}x{g[0][1]}" in args.sizes]
    if args.codec == "h264":  # aiortc's H264Encoder asks libx264 for 500 k at least
        low, high = H264_BITRATES
        grid = [(s, f, min(max(b, low), high)) for s, f, b in grid]
    rows = []
    with threadpool_limits(limits=1):
        for size, fps, bitrate in grid:
            for seed in args.seeds:
                for clip in clips(seed, long_idle_s=args.idle_s):
                    t0 = time.process_time()
                    cues = run_clip(clip, size=size, fps=fps, bitrate=bitrate, codec=args.codec)
                    problems = check(clip, cues)
                    onset, offset = motion_delays(clip, cues)
                    rows.append(
                        {
                            "clip": clip.name,
                            "codec": args.codec,
                            "size": f"{size[0]}x{size[1]}",
                            "fps": fps,
                            "kbps": bitrate // 1000,
                            "ok": not problems,
                            "problems": problems,
                            "cues": [(c.kind, round(c.time, 2), round(c.value, 2)) for c in cues],
                            "cpu_s": round(time.process_time() - t0, 1),
                            "motion_delays": (onset, offset) if clip.expect == "count" else None,
                        }
                    )
                    mark = "ok " if not problems else "BAD"
                    print(f"{mark} {clip.name} {size} {fps} {bitrate}: {problems}", flush=True)
    Path(args.out or f"cues_{args.codec}.json").write_text(json.dumps(rows, indent=1))
    print(f"\n{args.codec}\n\n| sender | clips | right | wrong |\n|---|---|---|---|")
    for size, fps, bitrate in grid:
        key = (f"{size[0]}x{size[1]}", fps, bitrate // 1000)
        sel = [r for r in rows if (r["size"], r["fps"], r["kbps"]) == key]
        bad = [str(r["clip"]) for r in sel if not r["ok"]]
        print(
            f"| {key[0]} {fps:g} fps {key[2]} kbit/s | {len(sel)} | {len(sel) - len(bad)} | "
            f"{', '.join(bad) or '–'} |"
        )
    delays: dict[str, list[tuple[float | None, float | None]]] = {}
    for size, fps, bitrate in grid:
        key = (f"{size[0]}x{size[1]}", fps, bitrate // 1000)
        sel = [r for r in rows if (r["size"], r["fps"], r["kbps"]) == key]
        delays[f"{key[0]} {fps:g} fps {key[2]} kbit/s"] = [
            r["motion_delays"] for r in sel if r["motion_delays"] is not None
        ]
    print("\nthe squats' motion cues\n\n" + motion_delay_table(delays))


if __name__ == "__main__":
    main()
