#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Routing accuracy on the labeled utterance set (tests/data/routing_labeled.jsonl).

Each utterance is labeled with where it must go: ``awareness`` (a timer, reminder,
cue watch or count, answered by the awareness processor), ``background`` (delegated)
or ``answer`` (the interaction model answers it). The route is decided the way the
pipeline decides it: the awareness processor's parser first, then the rule router
for what it leaves. Prints the accuracy and every confusion; ``--json`` for a record.

Run: ``.venv/bin/python benchmarks/bench_routing.py``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pipecat_tandem.policy.interjections import parse_interjection
from pipecat_tandem.policy.routing import RuleRouter

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "routing_labeled.jsonl"
ROUTES = ("answer", "background", "awareness")


def load(path: Path = DATA) -> list[dict[str, str]]:
    """The labeled rows: ``{"text": ..., "route": one of ROUTES}``."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for row in rows:
        if row.get("route") not in ROUTES or not isinstance(row.get("text"), str):
            raise ValueError(f"bad row in {path}: {row!r}")
    return rows


def decide(text: str, router: RuleRouter | None = None) -> str:
    """Where the pipeline sends ``text``: awareness first, then the router."""
    if parse_interjection(text) is not None:
        return "awareness"
    return "background" if (router or RuleRouter()).route(text).needs_background else "answer"


def evaluate(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Accuracy, the confusion counts and the misrouted utterances."""
    router = RuleRouter()
    wrong: list[dict[str, str]] = []
    confusion: Counter[tuple[str, str]] = Counter()
    for row in rows:
        got = decide(row["text"], router)
        confusion[(row["route"], got)] += 1
        if got != row["route"]:
            wrong.append({"text": row["text"], "expected": row["route"], "got": got})
    return {
        "n": len(rows),
        "correct": len(rows) - len(wrong),
        "accuracy": (len(rows) - len(wrong)) / len(rows) if rows else 0.0,
        "confusion": {f"{e}->{g}": n for (e, g), n in sorted(confusion.items())},
        "wrong": wrong,
    }


def main(argv: list[str] | None = None) -> int:
    """Print the report (markdown, or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = evaluate(load(args.data))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"routing accuracy: {report['correct']}/{report['n']} = {report['accuracy']:.1%}\n")
    print("| expected | got | count |\n|---|---|---|")
    for key, n in report["confusion"].items():
        expected, got = key.split("->")
        print(f"| {expected} | {got} | {n} |")
    if report["wrong"]:
        print("\nmisrouted:")
        for w in report["wrong"]:
            print(f"- {w['text']!r}: expected {w['expected']}, got {w['got']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
