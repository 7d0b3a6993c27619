"""Benchmark of the tandem WebRTC server with fake models (real transport and pipeline).

Measures, in one run:

1. offer → connected for an aiortc peer (sequential, median of N);
2. concurrent sessions (1, 5, 10, 20 by default): every peer sends looping speech
   and 5 fps video, the bot answers with tone audio; during a hold window the
   client timestamps every inbound RTP audio packet on arrival and compares it
   with the schedule its RTP timestamps imply (lateness, ms). A session has no
   drop-outs when its p99 lateness is within 20 ms.

The server runs in its own process (as in production); the peers share the
machine with it, so the numbers are for both on the same 2 cores. With
``--workers N`` the server is ``tandem run --workers N`` (N worker processes
behind haproxy, fake models through ``--factory``); server CPU is then the
whole process tree (parent, workers, haproxy) and each row says how the calls
were spread over the workers (from ``/metrics``).

    .venv/bin/python benchmarks/bench_server.py            # writes docs/bench/server.md
    .venv/bin/python benchmarks/bench_server.py --sessions 1 5 --hold 5 --no-write
    .venv/bin/python benchmarks/bench_server.py --workers 2 --video-fps 0 --sessions 2 4 6 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from tests.support.media import TestPeer, pacing_lateness_ms, speech_pcm  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(port: int, max_sessions: int) -> None:
    from tests.support.fake_services import serving_factory

    from pipecat_tandem.transports.webrtc_server import TandemServer

    server = TandemServer(
        factory=serving_factory(),
        port=port,
        max_sessions=max_sessions,
    )
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                pass
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every process under it (workers, haproxy)."""
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_mb(pid: int) -> dict[int, float]:
    """Resident memory of ``pid`` and each process under it (MB)."""
    out = {}
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


async def server_view(base: str) -> tuple[dict[str, int], float, float]:
    """Calls per worker, and the worst worker's outbound pacing and loop-lag p99 (ms).

    Read from ``/metrics``: the server's own view, free of the peers' process.
    """
    calls: dict[str, int] = {}
    pacing, lag = 0.0, 0.0
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as r:
        for line in (await r.text()).splitlines():
            value = float(line.rsplit(" ", 1)[1]) if not line.startswith("#") else 0.0
            if line.startswith("tandem_calls{"):
                worker = line.split('worker="', 1)[1].split('"', 1)[0]
                calls[worker] = int(value)
            elif 'quantile="0.99"' in line:
                if line.startswith("tandem_outbound_audio_lateness_seconds{"):
                    pacing = max(pacing, 1000 * value)
                elif line.startswith("tandem_event_loop_lag_seconds{"):
                    lag = max(lag, 1000 * value)
    return calls, pacing, lag


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def wait_healthy(
    base: str, timeout_s: float = 60, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``/healthz`` until 200; fail at once if ``proc`` (the server) exits."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                async with http.get(base + "/healthz") as r:
                    body = await r.json(content_type=None)
                    # Every worker taking calls (haproxy routes to it), not just warm.
                    workers = body.get("worker_detail") or [body]
                    if r.status == 200 and all(w.get("can_take_call") for w in workers):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server never became healthy")


async def connect_times(base: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        peer = TestPeer(base, pcm=b"", video=True, video_fps=5)
        times.append(await peer.connect())
        await peer.close()
        await asyncio.sleep(0.5)  # let the server tear the session down
    return times


async def hold(
    base: str, n: int, hold_s: float, pcm: bytes, server_pid: int, video_fps: int
) -> dict:
    peers = [
        TestPeer(base, pcm=pcm, video=video_fps > 0, video_fps=max(1, video_fps), loop_audio=True)
        for _ in range(n)
    ]
    setup = await asyncio.gather(*(p.connect(30) for p in peers), return_exceptions=True)
    failed = sum(isinstance(s, BaseException) for s in setup)
    await asyncio.sleep(2.0)  # settle: first turns, jitter buffers
    cpu0, t0, own0 = cpu_seconds(server_pid), time.monotonic(), time.process_time()
    loud0 = [p.stats.loud_frames for p in peers]
    await asyncio.sleep(hold_s)
    cpu1, t1, own1 = cpu_seconds(server_pid), time.monotonic(), time.process_time()
    spread, server_pacing, loop_lag = await server_view(base)
    memory = rss_mb(server_pid)
    p99s, p50s, packets = [], [], 0
    for p in peers:
        window = [(a, ts) for a, ts in p.stats.rtp if t0 <= a <= t1]
        packets += len(window)
        late = pacing_lateness_ms(window)
        if late:
            p99s.append(pct(late, 0.99))
            p50s.append(pct(late, 0.5))
    answered = sum(1 for p, l0 in zip(peers, loud0, strict=True) if p.stats.loud_frames > l0)
    await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
    await asyncio.sleep(1.0 + 0.1 * n)
    expected = n * hold_s / 0.02
    return {
        "sessions": n,
        "failed": failed,
        "p99_median": statistics.median(p99s) if p99s else float("nan"),
        "p99_max": max(p99s) if p99s else float("nan"),
        "p50_median": statistics.median(p50s) if p50s else float("nan"),
        "within_20ms": sum(1 for v in p99s if v <= 20.0),
        "packets_ratio": packets / expected if expected else 0.0,
        "answered": answered,
        "server_cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "load": os.getloadavg()[0],
        "client_cpu": 100 * (own1 - own0) / (t1 - t0),
        "spread": "/".join(str(spread[k]) for k in sorted(spread)) or "-",
        "rss_mb": round(sum(memory.values())),
        "server_pacing": server_pacing,
        "loop_lag": loop_lag,
    }


async def run(args: argparse.Namespace, server: subprocess.Popen, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    load0 = os.getloadavg()[0]
    from pipecat_tandem.transports.ice import restrict_host_candidates

    restrict_host_candidates(["127.0.0.1"])  # the client side offers loopback too
    await wait_healthy(base, proc=server)
    await connect_times(base, 1)  # warm-up: imports, first pipeline build
    times = await connect_times(base, args.connects)
    pcm = speech_pcm("Hello bot. What is the weather like today?", tail_silence_s=2.0)
    rows = [await hold(base, n, args.hold, pcm, server.pid, args.video_fps) for n in args.sessions]
    ms = [1000 * t for t in times]
    lines = [
        "# Server benchmark (`tandem run` WebRTC server, fake models)",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_server.py --workers {args.workers} "
        f"--connects {args.connects} --hold {args.hold:g} --video-fps {args.video_fps} "
        f"--sessions {' '.join(map(str, args.sessions))}`",
        "",
        f"Machine: {os.cpu_count()} vCPU (shared with other work), {platform.platform()}, "
        f"Python {platform.python_version()}. Server (`tandem run --workers {args.workers}`, "
        "fake models) in its own process tree on 127.0.0.1; "
        "all aiortc peers in the benchmark process on the same cores. "
        f"Load average at the start: {load0:.1f}.",
        "",
        "## Offer → connected (aiortc peer, sequential)",
        "",
        f"- runs: {len(ms)}; median **{statistics.median(ms):.0f} ms**; "
        f"min {min(ms):.0f} ms; max {max(ms):.0f} ms",
        "- includes building the session's pipeline (Silero VAD load) before the answer.",
        "",
        "## Concurrent sessions",
        "",
        "Each peer sends looping speech (mic) and "
        + (f"320x240 video at {args.video_fps} fps" if args.video_fps else "no video")
        + "; "
        "the bot answers "
        f"each turn with tone audio. Hold window {args.hold:g} s after a 2 s settle. "
        "Lateness = RTP arrival at the client vs. the schedule implied by RTP timestamps "
        "(ms, per session); a session is drop-out free when its p99 ≤ 20 ms.",
        "",
        "| sessions | failed | p99 lateness, median over sessions (ms) | worst session p99 (ms) "
        "| sessions within 20 ms | packets received / expected | sessions answered "
        "| server CPU (% of one core) | peers' CPU (%) | load avg 1 min "
        "| calls per worker | server RSS (MB) | server-side pacing p99, worst worker (ms) "
        "| loop lag p99, worst worker (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sessions']} | {r['failed']} | {r['p99_median']:.1f} | {r['p99_max']:.1f} "
            f"| {r['within_20ms']}/{r['sessions']} | {r['packets_ratio']:.2f} "
            f"| {r['answered']}/{r['sessions']} | {r['server_cpu']:.0f} | {r['client_cpu']:.0f} "
            f"| {r['load']:.1f} | {r['spread']} | {r['rss_mb']} "
            f"| {r['server_pacing']:.1f} | {r['loop_lag']:.1f} |"
        )
    base_row = rows[0]
    lines += ["", "Ratios against 1 session (same run):", ""]
    for r in rows[1:]:
        ratio = r["p99_median"] / base_row["p99_median"] if base_row["p99_median"] else float("nan")
        lines.append(
            f"- {r['sessions']} sessions: p99 lateness ×{ratio:.1f}, "
            f"server CPU ×{r['server_cpu'] / max(1e-9, base_row['server_cpu']):.1f}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--connects", type=int, default=7)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--video-fps", type=int, default=5, help="0 = audio only")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=1, help="server worker processes (tandem run --workers)"
    )
    args = parser.parse_args()
    if args.serve is not None:
        from loguru import logger

        logger.remove()
        logger.add(sys.stderr, level="WARNING")
        asyncio.run(serve(args.serve, args.max))
        return
    port = free_port()
    per_worker = -(-max(args.sessions) // args.workers) + 2
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipecat_tandem",
            "run",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--max-sessions",
            str(per_worker),
            "--factory",
            # Not FakeSessionFactory: it keeps every ended call for the tests, which
            # grew each worker ~13 MB and ~2 threads a call over a --sessions sweep.
            "tests.support.fake_services:serving_factory",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TANDEM_LOG_LEVEL": "WARNING"},
    )
    try:
        report = asyncio.run(run(args, server, port))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
    print(report)
    if not args.no_write:
        out = ROOT / "docs" / "bench" / "server.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
