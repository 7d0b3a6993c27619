"""Background answers on the embedded models: the labeled delegated-task set (issue 12).

Each task of ``tests/data/delegated_tasks.json`` runs as one background job through
``BackgroundAgent`` (the constrained step protocol, the default tools, the test
document folder) on the embedded 1.5B (``--model 1.5b``, the default) or the 0.5B
(``--model 0.5b``: what delegation buys). An answer is correct when it states every
expected value (numbers compared as numbers, rounding allowed) and is speakable
(no plan, JSON, tool call or markdown: ``background.answer.unspeakable_reason``);
an expected entry ``a|b`` accepts either. Tasks with an ``added`` date were written
after the first measurement (unseen tasks of the weak kinds): the summary gives the
original set's score and the whole set's apart (``--set original|added|all``).

Optional ``--load``: a second thread keeps the interaction model (0.5B) generating
without pause, the worst case a call could be.

Optional ``--call``: a real call runs on this machine while the jobs do, as it
would in use: ``tandem run`` (the embedded default, in its own process) and an
aiortc caller speaking the suite's chit-chat conversation again and again with
piper's joe voice. The call's reply latencies at the caller are reported too,
so a slow job set can't hide a starved call. The jobs keep the offline
default's placement (the 1.5B on CPU 1 at nice 19, see ``LocalStack``).

Run: .venv/bin/python benchmarks/bench_background.py [--model 1.5b|0.5b] [--limit N]
     [--kinds dates,units] [--set original|added|all] [--load | --call] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipecat_tandem.background.agent import BackgroundAgent  # noqa: E402
from pipecat_tandem.background.answer import carries_value, unspeakable_reason  # noqa: E402
from pipecat_tandem.background.packet import ContextPacket  # noqa: E402
from pipecat_tandem.background.runner import JobEvent, JobReporter  # noqa: E402
from pipecat_tandem.background.tools import default_tools  # noqa: E402
from pipecat_tandem.models.local_stack import LocalStack  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0  # noqa: E402
from pipecat_tandem.models.weights import QWEN_15B  # noqa: E402

DATA = ROOT / "tests" / "data" / "delegated_tasks.json"
DOCS = ROOT / "tests" / "data" / "documents"


def is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def states(answer: str, expected: str) -> bool:
    """Whether ``answer`` states one of the ``|``-separated alternatives of ``expected``."""
    low = answer.lower()
    return any(
        carries_value(answer, e) if is_number(e) else e.lower() in low for e in expected.split("|")
    )


def score(answer: str, expect: list[str]) -> bool:
    """Correct = every expected entry stated, and the answer is speakable."""
    if unspeakable_reason(answer) is not None:
        return False
    return all(states(answer, e) for e in expect)


def summary(rows: list[dict], label: str) -> str:
    """Correct count, per kind, and job time median and p90 (nearest rank) of ``rows``."""
    if not rows:
        return f"{label}: no tasks"
    times = sorted(r["seconds"] for r in rows)
    p90 = times[min(len(times) - 1, math.ceil(0.9 * len(times)) - 1)]
    cpu = sorted(r.get("cpu_seconds", 0.0) for r in rows)
    correct = sum(r["correct"] for r in rows)
    by_kind: dict[str, list[bool]] = {}
    for r in rows:
        by_kind.setdefault(r["kind"], []).append(r["correct"])
    kinds = ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in by_kind.items())
    return (
        f"{label}: {correct}/{len(rows)} correct ({100 * correct / len(rows):.0f} %), "
        f"median {statistics.median(times):.1f} s, p90 {p90:.1f} s "
        f"(CPU median {statistics.median(cpu):.1f} s)\n  {kinds}"
    )


async def load_interaction(stack: LocalStack, stop: asyncio.Event) -> None:
    server = stack.interaction_server
    assert server is not None
    request = {"messages": [{"role": "user", "content": "Tell me a long story."}],
               "max_tokens": 200, "temperature": 0.7}  # fmt: skip
    while not stop.is_set():
        async for _ in server.stream_chat(request):
            if stop.is_set():
                break


async def keep_a_call_going(
    ready: asyncio.Event, stop: asyncio.Event
) -> tuple[list[float | None], int]:
    """Call ``tandem run`` with chit-chat until ``stop``.

    Returns:
        Each turn's reply latency at the caller (``None``: never answered), and
        how many replies were off topic.
    """
    from pipecat_tandem.bench.caller import CONVERSATIONS
    from pipecat_tandem.bench.caller.call import Caller
    from pipecat_tandem.bench.caller.ears import CallerEars
    from pipecat_tandem.bench.caller.server import tandem_run
    from pipecat_tandem.bench.caller.voice import CallerVoice

    (chat,) = (c for c in CONVERSATIONS if c.name == "chit_chat")
    records = []
    async with tandem_run(["--documents", str(DOCS)]) as base:
        caller = Caller(base, CallerVoice(), CallerEars())
        caller.prepare(chat)
        ready.set()
        while not stop.is_set():
            call = asyncio.ensure_future(caller.call(chat))
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({call, halt}, return_when=asyncio.FIRST_COMPLETED)
            if call.done():
                records.append(call.result())
                halt.cancel()
            else:  # the jobs are done: a call cut short is not graded
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
    # Transcribed after the set, so the caller's Whisper never competes with the jobs.
    graded = [r for record in records for r in caller.grade(record, caller.hear(record))]
    return [r.latency_s for r in graded], sum(1 for r in graded if not r.on_topic)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["1.5b", "0.5b"], default="1.5b")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--kinds", default="")
    ap.add_argument("--set", choices=["original", "added", "all"], default="all")
    load = ap.add_mutually_exclusive_group()
    load.add_argument("--load", action="store_true", help="the 0.5B generating nonstop")
    load.add_argument("--call", action="store_true", help="a real call running meanwhile")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data = json.loads(DATA.read_text())
    tasks = data["tasks"]
    if args.kinds:
        tasks = [t for t in tasks if t["kind"] in args.kinds.split(",")]
    if args.set != "all":
        tasks = [t for t in tasks if bool(t.get("added")) == (args.set == "added")]
    if args.limit:
        tasks = tasks[: args.limit]
    model = QWEN_15B if args.model == "1.5b" else QWEN_05B_Q4_0
    stack = LocalStack(interaction_model=QWEN_05B_Q4_0 if args.load else None,
                       background_model=model)  # fmt: skip
    await stack.warm()
    plain = BackgroundAgent(llm_factory=stack.background_llm, tools=default_tools())
    with_docs = BackgroundAgent(
        llm_factory=stack.background_llm, tools=default_tools(documents_dir=DOCS)
    )
    stop = asyncio.Event()
    loader = asyncio.create_task(load_interaction(stack, stop)) if args.load else None
    call_ready = asyncio.Event()
    call = asyncio.create_task(keep_a_call_going(call_ready, stop)) if args.call else None
    if call is not None:
        waiting = asyncio.create_task(call_ready.wait())
        await asyncio.wait({call, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if call.done():  # the server failed to start: say why
            waiting.cancel()
            call.result()
    rows = []
    for i, item in enumerate(tasks):
        events: list[tuple[float, JobEvent]] = []
        started = time.perf_counter()
        # CPU seconds of this process (llama.cpp runs in it): the job's cost, apart from
        # how much of its core other work on the machine took meanwhile.
        cpu_started = time.process_time()

        async def sink(event: JobEvent, events: list = events, t0: float = started) -> None:
            events.append((time.perf_counter() - t0, event))  # when, to see where time goes

        packet = ContextPacket(
            job_id=f"job-{i}",
            task=item["task"],
            wall_time=data["wall_time"],
            messages=[{"role": "user", "content": item["task"]}],
        )
        agent = with_docs if item.get("documents") else plain
        try:
            answer = await agent.run(packet, JobReporter(packet.job_id, sink))
            error = ""
        except Exception as e:  # a failed job is scored, not fatal
            answer, error = "", f"{type(e).__name__}: {e}"
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        ok = score(answer, item["expect"]) if answer else False
        rows.append({"kind": item["kind"], "task": item["task"], "answer": answer,
                     "added": bool(item.get("added")),
                     "error": error, "correct": ok, "seconds": round(elapsed, 2),
                     "cpu_seconds": round(cpu, 2),
                     "speakable": bool(answer) and unspeakable_reason(answer) is None,
                     "steps": [f"{t:5.1f}s {e.text}" for t, e in events
                               if e.kind == "progress"]})  # fmt: skip
        print(f"{'OK ' if ok else 'BAD'} {elapsed:5.1f}s [{item['kind']}] {item['task']} -> "
              f"{answer or error}", flush=True)  # fmt: skip
        if not ok:
            for line in rows[-1]["steps"]:
                print(f"      {line[:160]}", flush=True)
    stop.set()
    if loader is not None:
        await loader
    latencies, off_topic = await call if call is not None else ([], 0)
    unspeakable = sum(1 for r in rows if r["answer"] and not r["speakable"])
    print(f"\nmodel {args.model}, load {args.load}, call {args.call}: answers not speakable "
          f"{unspeakable}, failed jobs {sum(1 for r in rows if r['error'])}")  # fmt: skip
    answered = sorted(x for x in latencies if x is not None)
    if answered:
        p90 = answered[min(len(answered) - 1, math.ceil(0.9 * len(answered)) - 1)]
        print(f"the call meanwhile: {len(latencies)} turns, {len(latencies) - len(answered)} "
              f"unanswered, {off_topic} off topic; reply at the caller p50 "
              f"{statistics.median(answered):.2f} s, p90 {p90:.2f} s")  # fmt: skip
    print(summary([r for r in rows if not r["added"]], "original set"))
    if any(r["added"] for r in rows):
        print(summary([r for r in rows if r["added"]], "added tasks"))
        print(summary(rows, "whole set"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
