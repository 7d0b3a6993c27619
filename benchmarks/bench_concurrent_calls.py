"""Two calls at once on one embedded server, measured at each caller (issue 14, part 1).

Starts ``tandem run`` (the embedded offline default) on 127.0.0.1 and places the
chit-chat conversation of the conversation suite on real aiortc callers, in
rounds that alternate one call alone (the control) and ``--calls`` calls at once,
started ``--stagger`` seconds apart so that their turns sometimes collide. While
the calls run, one more caller posts an offer: it must get 503 with
``Retry-After`` (the admission limit comes from the models, ``model_calls`` on
``/healthz``). Reply latency is the time from the end of the caller's voice to
the bot's first audio at that caller; answers are transcribed by the caller's
own Whisper base (not the bot's tiny.en).

    .venv/bin/python benchmarks/bench_concurrent_calls.py --rounds 2 --out calls.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection

ROOT = Path(__file__).resolve().parents[1]

from pipecat_tandem.bench.caller import CONVERSATIONS  # noqa: E402
from pipecat_tandem.bench.caller.call import Caller  # noqa: E402
from pipecat_tandem.bench.caller.ears import CallerEars  # noqa: E402
from pipecat_tandem.bench.caller.script import Conversation  # noqa: E402
from pipecat_tandem.bench.caller.server import tandem_run  # noqa: E402
from pipecat_tandem.bench.caller.voice import CallerVoice  # noqa: E402


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


async def _extra_caller(base: str) -> dict[str, Any]:
    """One more offer while the server is full: its status and Retry-After."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio")
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                health = await r.json()
            async with http.post(base + "/api/offer", json=body) as r:
                text = await r.text()
                return {
                    "status": r.status,
                    "retry_after": r.headers.get("Retry-After"),
                    "error": text[:120],
                    "model_calls": health.get("model_calls"),
                    "calls": health.get("calls"),
                }
    finally:
        await pc.close()


def _script(i: int, independent: bool) -> Conversation:
    """The chit-chat script of call ``i``.

    Lockstep (the default): every call says the same turns, so with a short
    stagger their turns collide all call long (the worst case). Independent:
    call ``i`` starts ``i`` half-scripts later in the list, so its turns and
    replies differ in length and its collisions fall where they may, as two
    unrelated callers' would.
    """
    (chat,) = (c for c in CONVERSATIONS if c.name == "chit_chat")
    if not independent or i == 0:
        return chat
    shift = (i * len(chat.turns) // 2) % len(chat.turns)
    return replace(chat, turns=chat.turns[shift:] + chat.turns[:shift])


async def _round(
    caller: Caller, n: int, stagger_s: float, probe: bool, independent: bool
) -> dict[str, Any]:
    async def one(i: int) -> Any:
        await asyncio.sleep(i * stagger_s)
        return await caller.call(_script(i, independent))

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    extra = None
    if probe:
        await asyncio.sleep((n - 1) * stagger_s + 6.0)  # every call connected and talking
        extra = await _extra_caller(caller.base_url)
    records = await asyncio.gather(*tasks)
    calls = []
    for record in records:  # transcribed after the round: no caller CPU during the calls
        graded = caller.grade(record, caller.hear(record))
        latencies = [r.latency_s for r in graded if r.latency_s is not None]
        calls.append(
            {
                "latencies_s": latencies,
                "p50_s": _pct(latencies, 0.5),
                "p90_s": _pct(latencies, 0.9),
                "on_topic": f"{sum(1 for r in graded if r.on_topic)}/{len(graded)}",
                "unanswered": sum(1 for r in graded if r.latency_s is None),
                "spoke_over_user": sum(1 for r in graded if r.spoke_over_user),
            }
        )
    return {"calls_at_once": n, "calls": calls, "extra_caller": extra}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    caller_voice, ears = CallerVoice(), CallerEars()
    server_args = [*args.server_arg]
    rounds = []
    async with tandem_run(server_args, log=Path(args.log) if args.log else None) as base:
        caller = Caller(base, caller_voice, ears)
        caller.prepare(_script(0, False))  # every clip before any call: none mid-call
        for r in range(args.rounds):
            for n in (1, args.calls):
                started = time.monotonic()
                result = await _round(caller, n, args.stagger, n > 1, args.independent)
                result["seconds"] = round(time.monotonic() - started, 1)
                rounds.append(result)
                p50s = [c["p50_s"] for c in result["calls"]]
                print(f"[round {r}] {n} call(s): p50 {p50s}", file=sys.stderr)
    alone = [
        x
        for rd in rounds
        if rd["calls_at_once"] == 1
        for c in rd["calls"]
        for x in c["latencies_s"]
    ]
    together = [
        x for rd in rounds if rd["calls_at_once"] > 1 for c in rd["calls"] for x in c["latencies_s"]
    ]
    per_call_p50 = [c["p50_s"] for rd in rounds if rd["calls_at_once"] > 1 for c in rd["calls"]]
    summary = {
        "alone_p50_s": _pct(alone, 0.5),
        "alone_p90_s": _pct(alone, 0.9),
        "together_p50_s": _pct(together, 0.5),
        "together_p90_s": _pct(together, 0.9),
        "together_vs_alone": (
            round(statistics.median(together) / statistics.median(alone), 2)
            if alone and together
            else None
        ),
        "worst_call_p50_s": max((p for p in per_call_p50 if p is not None), default=None),
        "unanswered": sum(c["unanswered"] for rd in rounds for c in rd["calls"]),
        "extra_callers": [rd["extra_caller"] for rd in rounds if rd["extra_caller"]],
    }
    return {"summary": summary, "rounds": rounds, "independent": args.independent}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2, help="calls at once (default 2)")
    p.add_argument("--rounds", type=int, default=2, help="alone/together pairs (default 2)")
    p.add_argument("--stagger", type=float, default=0.7, help="seconds between call starts")
    p.add_argument(
        "--independent",
        action="store_true",
        help="each further call speaks the turns in another order (not in lockstep)",
    )
    p.add_argument("--out", default="concurrent_calls.json", help="JSON report path")
    p.add_argument("--log", help="write the server's log here")
    p.add_argument("--server-arg", action="append", default=[], help="extra `tandem run` argument")
    args = p.parse_args()
    if args.calls < 2 or args.rounds < 1:
        p.error("--calls must be >= 2 and --rounds >= 1")
    report = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
