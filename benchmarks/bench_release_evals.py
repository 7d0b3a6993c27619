"""pipecat's release evals against the tandem's runner bot, offline.

    nice -n 10 .venv/bin/python benchmarks/bench_release_evals.py [--runs 3]
        [--scenarios async_tool_delivery,...] [--json out.json] [--judge-only]
        [--audio-dir DIR]

1. The judge (``--judge rule``, the default, or ``model``: the embedded Qwen 1.5B
   under a JSON schema) against the labeled verdicts in
   ``tests/data/release_evals/judge_labels.jsonl`` and, labeled blind by a second
   labeler, the replies heard in earlier runs (``judge_heard.jsonl``), through
   pipecat's ``EvalJudge``. Each run's judged replies are in ``--json`` (``judged``).
2. The scenarios (unless ``--judge-only``): ``python -m pipecat_tandem.bot`` on the
   embedded default models, with the scenarios' tools as background tools
   (``TANDEM_BOT_SERVICES=pipecat_tandem.bench.release_evals.tools:build``), in a
   subprocess on loopback; each scenario (pipecat's files, copied unedited) is run
   ``--runs`` times with pipecat's ``EvalScriptSession`` — user voice piper joe,
   bot speech transcribed by Whisper base, the offline judge, the function-call
   adapter. Prints pass/fail per scenario and run, and why a run failed.

Nothing is downloaded; the only network is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pipecat_tandem.bench.release_evals.bot_process import start_bot, stop_bot  # noqa: E402
from pipecat_tandem.bench.release_evals.judge_accuracy import (  # noqa: E402
    HEARD_PATH,
    LABELS_PATH,
    load_cases,
    measure,
)
from pipecat_tandem.bench.release_evals.run import (  # noqa: E402
    ASYNC_SCENARIOS,
    CONTROL_SCENARIOS,
    expects_greeting,
    load_scenario,
    local_classifier,
    run_scenario,
)


async def judge_report(kind: str) -> dict[str, Any]:
    classifier = local_classifier(kind)
    report: dict[str, Any] = {}
    for name, path in (("labeled", LABELS_PATH), ("heard", HEARD_PATH)):
        result = await measure(load_cases(ROOT / path), classifier)
        n = result["cases"]
        print(
            f"{kind} judge on {path.name}: {result['pass_fail_agree']}/{n} pass/fail agree, "
            f"{result['exact']}/{n} exact (false yes {result['false_yes']}, "
            f"false no {result['false_no']}), {result['seconds_per_case']:.1f} s a case"
        )
        for row in result["wrong"]:
            print(f"  wrong: label {row['label']} verdict {row['verdict']}: {row['reply']!r}")
        report[name] = result
    return report


async def scenarios_report(
    names: list[str],
    runs: int,
    log: Path,
    record: Path | None,
    partial: Path | None,
    judge: str,
    audio: Path | None = None,
) -> list[dict[str, Any]]:
    # A bot that greets for the scenarios that wait for a greeting, one that does not
    # for the others (see expects_greeting); each bot serves its scenarios round by round.
    groups: dict[bool, list[str]] = {}
    for name in names:
        groups.setdefault(expects_greeting(load_scenario(name, ROOT)), []).append(name)
    cache = tempfile.mkdtemp(prefix="tandem-evals-tts-")
    rows: list[dict[str, Any]] = []
    for greeting in sorted(groups, reverse=True):
        bot_log = log if greeting else log.with_name(log.stem + "-no-greeting" + log.suffix)
        try:
            proc, port = start_bot(bot_log, root=ROOT, greeting=greeting, record=record)
        except RuntimeError as e:
            raise SystemExit(str(e)) from None
        url = f"ws://127.0.0.1:{port}/ws"
        try:
            # Round by round, so a cut-short session still has every scenario.
            for run in range(1, runs + 1):
                for name in groups[greeting]:
                    wav = audio / f"{name}-run{run}.wav" if audio is not None else None
                    row = await run_once(name, url, cache, judge, wav)
                    row["run"] = run
                    row["greeting"] = greeting
                    rows.append(row)
                    report_row(row)
                    if partial is not None:
                        text = json.dumps(rows, indent=1, default=str)
                        await asyncio.to_thread(partial.write_text, text)
                    await asyncio.sleep(2.0)  # the bot releases the call's services
        finally:
            stop_bot(proc)
    return rows


async def run_once(
    name: str, url: str, cache: str, judge: str, wav: Path | None = None
) -> dict[str, Any]:
    try:
        record = str(wav) if wav is not None else None
        outcome = await run_scenario(
            name, url, root=ROOT, cache_dir=cache, judge=judge, record_path=record
        )
        row = dict(outcome.__dict__)
    except Exception as e:  # a crashed run is a failed run, reported
        row = {"name": name, "passed": False, "seconds": 0.0, "turns": []}
        row["failures"] = [f"{type(e).__name__}: {e}"[:300]]
        row["debug_tail"] = []
    return row


def report_row(row: dict[str, Any]) -> None:
    mark = "PASS" if row["passed"] else "FAIL"
    greeting = "" if row["greeting"] else " (no greeting)"
    print(
        f"{row['name']} run {row['run']}{greeting}: {mark} in {row['seconds']:.0f} s {row['turns']}"
    )
    for failure in row["failures"]:
        print(f"    {failure}")
    sys.stdout.flush()


def print_waits(rows: list[dict[str, Any]]) -> None:
    """Median wait for the bot's reply per scenario turn, over the runs that got one."""
    waits: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        for turn, seconds in (row.get("waits") or {}).items():
            waits.setdefault((row["name"], turn), []).append(seconds)
    if not waits:
        return
    print(
        "\n| scenario | turn | runs | median wait for the reply (s) | min–max |\n|---|---|---|---|---|"
    )
    for (name, turn), values in sorted(waits.items()):
        low, high = min(values), max(values)
        print(
            f"| {name} | {turn} | {len(values)} | {statistics.median(values):.2f} | {low:.2f}–{high:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(ASYNC_SCENARIOS + CONTROL_SCENARIOS))
    parser.add_argument("--judge-only", action="store_true")
    parser.add_argument(
        "--judge", choices=("rule", "model"), default="rule", help="the scenarios' judge"
    )
    parser.add_argument("--skip-judge", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--record-dir", type=Path, help="the bot's per-call event logs")
    parser.add_argument(
        "--audio-dir", type=Path, help="each audio run's conversation, as the caller heard it"
    )
    parser.add_argument(
        "--bot-log", type=Path, default=Path(tempfile.gettempdir()) / "evals-bot.log"
    )
    args = parser.parse_args()
    out: dict[str, Any] = {"load_at_start": os.getloadavg()}
    if not args.skip_judge:
        out["judge"] = asyncio.run(judge_report(args.judge))
    if not args.judge_only:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        partial = args.json.with_suffix(".partial.json") if args.json else None
        if args.audio_dir is not None:
            args.audio_dir.mkdir(parents=True, exist_ok=True)
        out["runs"] = asyncio.run(
            scenarios_report(
                names, args.runs, args.bot_log, args.record_dir, partial, args.judge, args.audio_dir
            )
        )
        summary: dict[str, list[bool]] = {}
        for row in out["runs"]:
            summary.setdefault(row["name"], []).append(row["passed"])
        print("\n| scenario | passed |\n|---|---|")
        for name, passed in summary.items():
            print(f"| {name} | {sum(passed)}/{len(passed)} |")
        print_waits(out["runs"])
    out["load_at_end"] = os.getloadavg()
    print(f"load average at start {out['load_at_start']}, at end {out['load_at_end']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
