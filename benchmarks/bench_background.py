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
on its own, as a call would, while the jobs run.

Run: .venv/bin/python benchmarks/bench_background.py [--model 1.5b|0.5b] [--limit N]
     [--kinds dates,units] [--set original|added|all] [--load] [--json out.json]
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


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["1.5b", "0.5b"], default="1.5b")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--kinds", default="")
    ap.add_argument("--set", choices=["original", "added", "all"], default="all")
    ap.add_argument("--load", action="store_true")
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
    unspeakable = sum(1 for r in rows if r["answer"] and not r["speakable"])
    print(f"\nmodel {args.model}, load {args.load}: answers not speakable {unspeakable}, "
          f"failed jobs {sum(1 for r in rows if r['error'])}")  # fmt: skip
    print(summary([r for r in rows if not r["added"]], "original set"))
    if any(r["added"] for r in rows):
        print(summary([r for r in rows if r["added"]], "added tasks"))
        print(summary(rows, "whole set"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
