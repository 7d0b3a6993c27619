"""The runner bot and its RTVI job events, measured at real clients.

    .venv/bin/python benchmarks/bench_pipecat_native.py [--runs 5] [--real] [--json out.json]

1. ``python -m pipecat_tandem.bot`` (pipecat's development runner, a subprocess)
   on scripted models (``tests.support.bot_services``) or, with ``--real``, the
   embedded offline models:
   * over the eval harness's ``/ws`` route, with pipecat's own RTVI client
     transport: connect to ``bot-ready``; a text turn to the bot's first word;
     (scripted) a delegated job's events as the client sees them; a
     ``tandem-cancel-job`` to its ``server-response`` and ``cancelled`` event;
   * over WebRTC (``/api/offer``) with an aiortc peer that speaks: end of the
     peer's voice to the first loud bot audio at the peer.
2. In process (``tandem run``'s server, same session factory, scripted models):
   the time from a job event (its session-time stamp, when the job frame is
   pushed) to the ``tandem-job`` RTVI message arriving at an aiortc peer's data
   channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.media import PcmAudioTrack, speech_pcm  # noqa: E402
from tests.support.rtvi_client import RTVITestClient  # noqa: E402

from pipecat_tandem.bench.caller.peer import CallerPeer  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bot(real: bool, log: Path | None = None) -> tuple[subprocess.Popen[str], int, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    env["PYTHONPATH"] = str(ROOT)
    if not real:
        env["TANDEM_BOT_SERVICES"] = "tests.support.bot_services:build"
    cmd = [sys.executable, "-m", "pipecat_tandem.bot", "--host", "127.0.0.1", "--port", str(port)]
    t0 = time.monotonic()
    sink = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=sink, text=True)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, time.monotonic() - t0
        except OSError:
            time.sleep(0.05)
        if time.monotonic() - t0 > 600:
            raise SystemExit("the bot did not listen within 600 s")


def first(client: RTVITestClient, kind: str, after: float) -> float | None:
    for t, m in client.messages:
        if t >= after and m.get("type") == kind:
            return t
    return None


async def ws_session(port: int, real: bool, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"connect_s": [], "text_turn_first_word_s": []}
    if not real:
        out.update(job_delegated_s=[], job_result_ready_s=[], job_delivered_s=[])
        out.update(cancel_response_s=[], cancel_event_s=[])
    for _ in range(runs):
        client = RTVITestClient(f"ws://127.0.0.1:{port}/ws")
        try:
            await ws_call(client, real, out)
        finally:
            await client.stop()
        await asyncio.sleep(0.5)
    return out


async def ws_call(client: RTVITestClient, real: bool, out: dict[str, list[float]]) -> None:
    t0 = time.monotonic()
    await client.start(timeout_s=120)
    out["connect_s"].append(time.monotonic() - t0)
    sent = time.monotonic()
    await client.send_text("Hello, how are you today?")
    word = await client.wait_for(lambda: first(client, "bot-llm-text", sent), 120, "reply")
    out["text_turn_first_word_s"].append(word - sent)
    if real:
        return
    sent = time.monotonic()
    await client.send_text("what's the weather in San Francisco?")
    await client.wait_for(lambda: _arrival(client, "delivered"), 20, "delivered")
    for event in ("delegated", "result_ready", "delivered"):
        out[f"job_{event}_s"].append(_arrival(client, event) - sent)
    await client.send_text("write me a report")
    await client.wait_for(lambda: _arrival(client, "running", "report"), 20)
    job = [e for e in client.job_events() if "report" in e["task"]][0]["job_id"]
    sent = time.monotonic()
    msg = await client.client_message("tandem-cancel-job", {"job_id": job})
    await client.wait_for(lambda: client.reply_to(msg), 10)
    await client.wait_for(lambda: _arrival(client, "cancelled"), 10)
    replied = next(t for t, m in client.messages if m.get("id") == msg)
    out["cancel_response_s"].append(replied - sent)
    out["cancel_event_s"].append(_arrival(client, "cancelled") - sent)


def _arrival(client: RTVITestClient, event: str, task: str = "") -> float:
    for t, m in client.messages:
        data = m.get("data")
        if isinstance(data, dict) and data.get("type") == "tandem-job":
            if data.get("event") == event and task in data.get("task", ""):
                return t
    return 0.0


async def webrtc_turn(port: int, runs: int) -> dict[str, list[float]]:
    pcm = speech_pcm("Hello there. How are you doing today?", tail_silence_s=8.0)
    samples = np.abs(np.frombuffer(pcm, dtype=np.int16).astype(np.float32))
    voice_end = float(np.nonzero(samples > 500)[0][-1]) / 16000
    out: dict[str, list[float]] = {"webrtc_connect_s": [], "webrtc_voice_end_to_bot_audio_s": []}
    for _ in range(runs):
        track = PcmAudioTrack(pcm)
        peer = CallerPeer(f"http://127.0.0.1:{port}", track, None)
        try:
            out["webrtc_connect_s"].append(await peer.connect(60))
            for _ in range(600):
                start = track._start
                if start is not None:
                    reply = peer.recording.first_loud_after(start + voice_end)
                    if reply is not None:
                        out["webrtc_voice_end_to_bot_audio_s"].append(reply - start - voice_end)
                        break
                await asyncio.sleep(0.05)
        finally:
            await peer.close()
        await asyncio.sleep(1.0)
    return out


async def in_process_event_latency(runs: int) -> dict[str, list[float]]:
    """Job event stamp → tandem-job message at an aiortc peer, via ``tandem run``'s server."""
    from tests.support import bot_services

    from pipecat_tandem.transports import session as session_module
    from pipecat_tandem.transports.tandem_session import TandemSessionFactory
    from pipecat_tandem.transports.webrtc_server import TandemServer

    infos: list[Any] = []
    original = session_module.SessionInfo.new

    def recording_new(*args: Any, **kwargs: Any) -> Any:
        info = original(*args, **kwargs)
        infos.append(info)
        return info

    session_module.SessionInfo.new = recording_new  # type: ignore[method-assign]
    factory = TandemSessionFactory(perception=False, build_services=bot_services.build_reporter)
    server = TandemServer(factory=factory, port=0)
    await server.start()
    await server.wait_warm()
    pcm = speech_pcm("Please write me a report.", tail_silence_s=6.0)
    latencies: list[float] = []
    by_event: dict[str, list[float]] = {}
    try:
        for _ in range(runs):
            peer = CallerPeer(f"http://127.0.0.1:{server.port}", PcmAudioTrack(pcm), None)
            await peer.connect(30)
            epoch = infos[-1].clock._epoch
            for _ in range(200):
                events = _rtvi_job_events(peer)
                if any(e["event"] == "running" for e in events):
                    break
                await asyncio.sleep(0.05)
            job = events[0]["job_id"]
            peer.channel.send(
                json.dumps(
                    {
                        "label": "rtvi-ai",
                        "type": "client-message",
                        "id": "c1",
                        "data": {"t": "tandem-cancel-job", "d": {"job_id": job}},
                    }
                )
            )
            for _ in range(100):
                if any(e["event"] == "cancelled" for e in _rtvi_job_events(peer)):
                    break
                await asyncio.sleep(0.05)
            for m in peer.stats.messages:
                data = m.get("data")
                if m.get("label") == "rtvi-ai" and isinstance(data, dict):
                    if data.get("type") == "tandem-job":
                        latencies.append((m["_arrived"] - epoch) - data["t"])
                        by_event.setdefault(data["event"], []).append(latencies[-1])
            await peer.close()
            await asyncio.sleep(1.0)
    finally:
        await server.stop()
        session_module.SessionInfo.new = original  # type: ignore[method-assign]
    out = {"job_event_to_client_webrtc_s": latencies}
    out.update({f"  {event}_to_client_webrtc_s": v for event, v in by_event.items()})
    return out


def _rtvi_job_events(peer: CallerPeer) -> list[dict[str, Any]]:
    return [
        m["data"]
        for m in peer.stats.messages
        if m.get("label") == "rtvi-ai"
        and isinstance(m.get("data"), dict)
        and m["data"].get("type") == "tandem-job"
    ]


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f} ms p90={p90:.1f} ms max={ms[-1]:.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="the embedded offline models")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--bot-log", type=Path, default=None, help="the bot's own output")
    args = parser.parse_args()
    results: dict[str, Any] = {"models": "embedded" if args.real else "scripted"}
    proc, port, listen_s = start_bot(args.real, args.bot_log)
    results["bot_listening_s"] = [listen_s]
    try:
        results.update(await ws_session(port, args.real, args.runs))
        results.update(await webrtc_turn(port, args.runs))
    finally:
        proc.terminate()
        proc.wait(20)
    if not args.real:
        results.update(await in_process_event_latency(args.runs))
    for key, values in results.items():
        if isinstance(values, list):
            print(f"{key:36s} {summary(values)}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
