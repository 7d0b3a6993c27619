"""Soak: call after call against one ``tandem run``; does the server give memory back?

Starts ``tandem run`` (the embedded offline default unless ``--fake``) in its
own process on 127.0.0.1, then places ``--calls`` short calls one after the
other with a real aiortc peer: connect, speak a sentence of synthetic voice,
stay ``--hold`` seconds, hang up. After each call (and ``--settle`` seconds)
it reads the server's RSS and thread count from ``/proc``.

Reported: RSS and threads before the first call, after the first, and after
the last; the growth per call over the calls after the first (a least-squares
slope, MB/call: the first call pays one-time costs, so it is left out). A
server that lives has a slope near 0 and a flat thread count.

    .venv/bin/python benchmarks/bench_soak.py --calls 20          # embedded models
    .venv/bin/python benchmarks/bench_soak.py --calls 40 --fake   # fake models
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_server import free_port, wait_healthy  # noqa: E402
from tests.support.media import TestPeer, speech_pcm  # noqa: E402


def proc_status(pid: int) -> tuple[float, int]:
    """(RSS in MB, threads) of a process, from /proc."""
    rss_kb, threads = 0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss_kb / 1024, threads


def thread_names(pid: int) -> Counter[str]:
    """How many threads of a process carry each name."""
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except FileNotFoundError:  # the thread ended while we listed them
            pass
    return names


def snapshot(pid: int, prefix: Path) -> None:
    """Save the process's memory map (``smaps``) and thread names, to diff by mapping."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_suffix(".smaps").write_text(Path(f"/proc/{pid}/smaps").read_text())
    prefix.with_suffix(".threads").write_text(json.dumps(thread_names(pid).most_common()))


def calls_from_log(path: Path) -> dict[str, object]:
    """Per call, from the server's log: was a reply voiced (TTS began before the hang-up)?

    Also counts the calls whose turn was ended and opened again by a late
    transcript (pipecat's transcription turn start), the soak's main cause of
    unanswered calls before the turn fix (issue 13).
    """
    calls: list[dict[str, bool]] = []
    current: dict[str, bool] | None = None
    for line in path.read_text(errors="replace").splitlines():
        if "_new_session" in line and " started " in line:
            current = {"replied": False, "reopened": False}
        elif current is None:
            continue
        elif "Generating TTS" in line:
            current["replied"] = True
        elif "TranscriptionUserTurnStartStrategy" in line:
            current["reopened"] = True
        elif "session_manager:_teardown" in line:
            calls.append(current)
            current = None
    return {
        "calls_in_log": len(calls),
        "replied": sum(c["replied"] for c in calls),
        "unanswered_calls": [i + 1 for i, c in enumerate(calls) if not c["replied"]],
        "reopened_turns": sum(c["reopened"] for c in calls),
    }


def slope(ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against 0, 1, 2…"""
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(ys))
    return num / sum((i - mx) ** 2 for i in range(n))


FAKE_SERVER = """
import asyncio, signal, sys
sys.path.insert(0, {root!r})
from tests.support.fake_services import FakeSessionFactory
from pipecat_tandem.transports.webrtc_server import TandemServer

class Forgetful(list):
    # The test factory keeps every call's pipeline for the tests to inspect; a soak
    # measuring the server must not count the harness's own retention.
    def append(self, item):
        pass

async def main():
    factory = FakeSessionFactory(reply="Sure.")
    factory.tandems = Forgetful()
    server = TandemServer(factory=factory, port={port})
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()

asyncio.run(main())
"""


async def one_call(base: str, pcm: bytes, hold_s: float) -> bool:
    """One short call; whether the bot said anything (loud audio reached the peer)."""
    peer = TestPeer(base, pcm=pcm, video=True)
    try:
        await peer.connect(connect_timeout_s=20.0)
        # The sentence plays first (16 kHz, 16-bit); the hold is the time left for a reply.
        await asyncio.sleep(len(pcm) / 32000 + hold_s)
        return peer.stats.loud_frames > 0
    finally:
        await peer.close()


async def soak(args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if args.fake:
        cmd = [sys.executable, "-c", FAKE_SERVER.format(root=str(ROOT), port=port)]
    else:
        cmd = [sys.executable, "-m", "pipecat_tandem", "run", "--port", str(port)]
    # Once, before any call is timed: blocking here is harmless.
    log = open(args.log, "wb") if args.log else subprocess.DEVNULL  # noqa: ASYNC230
    proc = subprocess.Popen(  # noqa: ASYNC220
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        await wait_healthy(base, 300.0, proc)
        pcm = speech_pcm("Hello there. What is the capital of Italy?")
        samples = [proc_status(proc.pid)]
        names: Counter[str] = Counter()
        answered = 0
        for i in range(args.calls):
            answered += await one_call(base, pcm, args.hold)
            await asyncio.sleep(args.settle)
            samples.append(proc_status(proc.pid))
            rss, threads = samples[-1]
            print(f"call {i + 1}: rss {rss:.0f} MB, threads {threads}", flush=True)
            if args.snapshots:
                snapshot(proc.pid, args.snapshots / f"call{i + 1:03d}")
        # An operator's server sits idle between busy hours: does it give back?
        idle: list[tuple[float, int]] = []
        for _ in range(int(args.idle // 30)):
            await asyncio.sleep(30)
            idle.append(proc_status(proc.pid))
            print(f"idle {30 * len(idle)} s: rss {idle[-1][0]:.0f} MB, threads {idle[-1][1]}")
        names = thread_names(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    after_first = [s[0] for s in samples[1:]]
    by_log = calls_from_log(args.log) if args.log else {}
    return {
        **by_log,
        "models": "fake" if args.fake else "embedded",
        "calls": args.calls,
        "rss_mb": [round(s[0]) for s in samples],
        "threads": [s[1] for s in samples],
        "rss_slope_mb_per_call": round(
            slope(after_first[1:] if len(after_first) > 2 else after_first), 1
        ),
        "thread_names": dict(names.most_common()),
        # Allocator arenas fill over the first calls; a leak keeps growing.
        "rss_slope_mb_per_call_last_half": round(slope(after_first[len(after_first) // 2 :]), 1),
        "threads_slope_per_call": round(slope([float(s[1]) for s in samples[2:]]), 2),
        "answered": answered,
        "idle_s": 30 * len(idle),
        "rss_after_idle_mb": round(idle[-1][0]) if idle else None,
        "threads_after_idle": idle[-1][1] if idle else None,
        # The target: within +50 MB of the level after the first call.
        "rss_after_idle_minus_first_call_mb": (
            round(idle[-1][0] - samples[1][0]) if idle and len(samples) > 1 else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument(
        "--hold", type=float, default=3.0, help="seconds per call after the caller's sentence"
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds after hang-up")
    parser.add_argument("--fake", action="store_true", help="fake models (transport only)")
    parser.add_argument("--log", type=Path, default=None, help="server log file")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="seconds to watch the idle server after the calls"
    )
    parser.add_argument(
        "--snapshots",
        type=Path,
        default=None,
        help="directory: save smaps and thread names after each call (to find growth)",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(soak(args))))


if __name__ == "__main__":
    main()
