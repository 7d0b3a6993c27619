"""The conversation suite: calls placed by a real caller, graded at the caller.

Starts ``tandem run`` (the embedded offline default) on 127.0.0.1 and places the
scripted calls of ``pipecat_tandem.bench.caller.conversations`` with a real aiortc
peer. The caller speaks with piper's joe voice (not the bot's hibari) in real time,
records the bot's audio as it arrives, and transcribes it after each call with
Whisper base (not the bot's tiny.en). Per turn: latency from the end of the
caller's voice to the first bot audio at the peer, on topic, talking over the
caller, time to a job's spoken answer and whether it was the answer, timer error.

    .venv/bin/python benchmarks/bench_conversation.py                  # the full suite
    .venv/bin/python benchmarks/bench_conversation.py --only timers    # one conversation
    .venv/bin/python benchmarks/bench_conversation.py --ci             # the CI subset

Writes ``--out`` (JSON: per-turn results, summary, transcripts) and prints markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from pipecat_tandem.bench.caller import CONVERSATIONS, ci_subset  # noqa: E402
from pipecat_tandem.bench.caller.call import Caller, transcript  # noqa: E402
from pipecat_tandem.bench.caller.ears import CallerEars  # noqa: E402
from pipecat_tandem.bench.caller.server import tandem_run  # noqa: E402
from pipecat_tandem.bench.caller.summary import markdown, summarize  # noqa: E402
from pipecat_tandem.bench.caller.voice import CallerVoice  # noqa: E402


async def run(args: argparse.Namespace) -> dict:
    conversations = ci_subset() if args.ci else CONVERSATIONS
    if args.only:
        conversations = tuple(c for c in conversations if c.name in args.only)
        if not conversations:
            sys.exit(f"no conversation named {args.only}; have {[c.name for c in CONVERSATIONS]}")
    voice, ears = CallerVoice(), CallerEars()
    server_args = ["--documents", str(ROOT / "tests" / "data" / "documents"), *args.server_arg]
    results, calls = [], []
    async with tandem_run(server_args, log=Path(args.log) if args.log else None) as base:
        caller = Caller(base, voice, ears)
        for conversation in conversations:
            started = time.monotonic()
            record = await caller.call(conversation)
            heard = caller.hear(record)
            graded = caller.grade(record, heard)
            results += graded
            calls.append(
                {
                    "conversation": conversation.name,
                    "seconds": round(time.monotonic() - started, 1),
                    "transcript": transcript(record, heard),
                }
            )
            print(f"[conversation] {conversation.name}: {len(graded)} turns", file=sys.stderr)
    return {
        "summary": summarize(results),
        "turns": [r.to_json() for r in results],
        "calls": calls,
        "markdown": markdown(results),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="conversation names to run")
    p.add_argument("--ci", action="store_true", help="the small CI subset")
    p.add_argument("--out", default="conversation.json", help="JSON report path")
    p.add_argument("--log", help="write the server's log here")
    p.add_argument("--server-arg", action="append", default=[], help="extra `tandem run` argument")
    args = p.parse_args()
    report = asyncio.run(run(args))
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(report["markdown"])


if __name__ == "__main__":
    main()
