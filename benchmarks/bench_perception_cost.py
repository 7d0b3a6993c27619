"""What perception (micro-turn ingest + encoder-free fusion + cues) costs a real call.

Two ``tandem run`` servers on the embedded default run side by side on
127.0.0.1, one with perception (the default) and one with ``--no-perception``.
An aiortc peer calls them in turn (on, off, on, off…), each call sending a
browser-like camera (VP8-encoded by aiortc, ``--size`` at ``--fps``) and a
quiet microphone for ``--hold`` seconds, so no model answers and the
difference between the two servers' CPU time during a call is what perception
costs it, video decoding included (both decode: the transport decodes every
frame it receives).

Reported: per-call server CPU (% of one core) on each side, medians over the
pairs, and their difference. Interleaving the pairs keeps the shared machine's
noise out of the difference.

With ``--camera-arm`` each round also calls the ``--no-perception`` server with
no camera at all (``novideo``): ``off`` − ``novideo`` is what receiving the
camera costs (VP8 decoding, and the transport's conversion of every decoded
frame to RGB), paid whether or not perception runs.

    .venv/bin/python benchmarks/bench_perception_cost.py --pairs 3 --hold 20
    .venv/bin/python benchmarks/bench_perception_cost.py --size 1280 720 --camera-arm
    .venv/bin/python benchmarks/bench_perception_cost.py --scene person

Each run also times one core's speed before and after the calls: the fusion's
median CPU time per micro-turn in ``bench_fusion.py`` (the same synthetic 640×480
micro-turns every time, pinned to one core). The budget is a share of *this*
machine's core, and on this shared machine the same code has timed 0.7 ms there on
one day and 1.7 ms on another: the reference says which kind of core a run had.

``--scene pattern`` (the default) sends the moving test pattern: every pixel
changes every frame, so the motion counter analyses every image, the most the
cues can cost. ``--scene person`` sends what a webcam call mostly is: a person
sitting still in a room, through a webcam sensor's noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_server import cpu_seconds, free_port, wait_healthy  # noqa: E402
from tests.support.media import PcmAudioTrack, TestPeer  # noqa: E402

from pipecat_tandem.bench.caller.camera import SceneCamera  # noqa: E402
from pipecat_tandem.bench.caller.peer import CallerPeer  # noqa: E402
from pipecat_tandem.bench.caller.scenes import Person, Room  # noqa: E402


def caller(base: str, args: argparse.Namespace, video: bool) -> CallerPeer:
    """The peer for one call: a quiet microphone and the ``--scene`` camera (or none)."""
    if video and args.scene == "person":
        # A webcam call: a person sitting still (breathing, a slight sway) in a room
        # with a small object moving in a corner, through the sensor's noise and
        # auto-exposure, encoded by aiortc. The cue calibration's still_person clip.
        room = Room(0)
        camera = SceneCamera(Person(room, seed=3), fps=args.fps, size=tuple(args.size))
        return CallerPeer(base, PcmAudioTrack(bytes(32000), 16000, loop=True), camera)
    # The test pattern: every pixel moves every frame and the whole view jumps
    # about once a second, the worst case for the motion counter's analysis.
    return TestPeer(
        base,
        pcm=bytes(32000),
        loop_audio=True,
        video=video,
        video_fps=args.fps,
        video_size=tuple(args.size),
    )


async def one_call(base: str, pid: int, args: argparse.Namespace, video: bool = True) -> float:
    """% of one core the server used during one held call (with a camera or not)."""
    # A quiet microphone: 1 s of digital silence looped.
    peer = caller(base, args, video)
    try:
        await peer.connect(connect_timeout_s=20.0)
        await asyncio.sleep(2.0)  # the first frames set up decoders and windows
        c0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(args.hold)
        c1, t1 = cpu_seconds(pid), time.monotonic()
    finally:
        await peer.close()
    await asyncio.sleep(1.0)
    return 100.0 * (c1 - c0) / (t1 - t0)


def core_reference_ms() -> float | None:
    """``bench_fusion.py``'s median fusion CPU per micro-turn (ms), or None if it failed."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_fusion.py"), "--turns", "150"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("| total |"):
            return float(line.split("|")[2])
    return None


async def run(args: argparse.Namespace) -> dict[str, object]:
    reference = [core_reference_ms()]
    servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    for side, extra in (("on", []), ("off", ["--no-perception"])):
        port = free_port()
        cmd = [sys.executable, "-m", "pipecat_tandem", "run", "--port", str(port), *extra]
        proc = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is timed
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        servers[side] = (f"http://127.0.0.1:{port}", proc)
    try:
        for base, proc in servers.values():
            await wait_healthy(base, 600.0, proc)
        results: dict[str, list[float]] = {"on": [], "off": []}
        if args.camera_arm:
            results["novideo"] = []
        for i in range(args.pairs):
            order = ["on", "off"] if i % 2 == 0 else ["off", "on"]
            if args.camera_arm:
                order.insert(i % 3, "novideo")  # its place in the round rotates too
            for side in order:
                base, proc = servers["off" if side == "novideo" else side]
                pct = await one_call(base, proc.pid, args, video=side != "novideo")
                results[side].append(round(pct, 2))
                print(f"pair {i + 1} {side}: {pct:.1f}% of a core", flush=True)
    finally:
        for _, proc in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in servers.values():
            proc.wait(30)
    reference.append(core_reference_ms())
    on, off = statistics.median(results["on"]), statistics.median(results["off"])
    diffs = [a - b for a, b in zip(results["on"], results["off"], strict=True)]
    out: dict[str, object] = {
        "video": f"{args.size[0]}x{args.size[1]} @ {args.fps} fps (VP8), {args.scene}",
        "hold_s": args.hold,
        "cpu_pct_per_call": results,
        "median_on": round(on, 2),
        "median_off": round(off, 2),
        "perception_pct_of_a_core_median_pair_diff": round(statistics.median(diffs), 2),
        # bench_fusion.py's fusion ms per micro-turn before and after the calls: how
        # fast this run's core was (see the module docstring).
        "core_reference_ms_before_after": reference,
    }
    if args.camera_arm:
        cam = [a - b for a, b in zip(results["off"], results["novideo"], strict=True)]
        out["median_novideo"] = round(statistics.median(results["novideo"]), 2)
        out["camera_pct_of_a_core_median_round_diff"] = round(statistics.median(cam), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--hold", type=float, default=20.0, help="seconds measured per call")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--size", type=int, nargs=2, default=[640, 480], metavar=("W", "H"))
    parser.add_argument(
        "--scene",
        choices=["pattern", "person"],
        default="pattern",
        help="what the camera shows: the moving test pattern (worst case) or a person on a call",
    )
    parser.add_argument(
        "--camera-arm",
        action="store_true",
        help="also call the --no-perception server without a camera (what the camera costs)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
