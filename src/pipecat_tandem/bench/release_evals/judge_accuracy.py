#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""How far the offline judge can be trusted: its verdicts against labeled ones.

Each labeled case (``tests/data/release_evals/judge_labels.jsonl``) is one of the
release scenarios' criteria, the user's turns before it, a bot reply, and the
verdict a person gave it (``yes``, ``no``, or ``continue`` for a reply that is
only on its way to the answer). The case goes through pipecat's ``EvalJudge``
exactly as a scenario turn does (``evaluate``), so the prompt and the outcomes
are the harness's own.

A second set (``judge_heard.jsonl``) holds replies as the caller's transcriber
heard them in real eval runs (taken from the runs' judged verdicts), labeled by a
second labeler who saw only the criterion, the user's turns and the reply, with
pipecat's definitions of the outcomes, never the rules: the measure of the rule
judge that its author did not write the labels for.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS_PATH = Path("tests/data/release_evals/judge_labels.jsonl")
#: Replies heard in eval runs, labeled blind by a second labeler.
HEARD_PATH = Path("tests/data/release_evals/judge_heard.jsonl")


@dataclass(frozen=True)
class LabeledCase:
    """One labeled verdict.

    Parameters:
        criterion: The scenario's ``eval`` criterion.
        user_turns: What the user said before the reply, in order.
        reply: The bot reply to judge.
        label: ``yes``, ``no`` or ``continue``.
    """

    criterion: str
    user_turns: tuple[str, ...]
    reply: str
    label: str


def load_cases(path: Path) -> list[LabeledCase]:
    """The labeled cases, one JSON object a line."""
    cases = []
    for line in path.read_text().splitlines():
        if line.strip():
            raw = json.loads(line)
            cases.append(
                LabeledCase(raw["criterion"], tuple(raw["user_turns"]), raw["reply"], raw["label"])
            )
    return cases


def passes(verdict: str, label: str) -> bool:
    """Whether a verdict agrees with the label where it matters to a scenario.

    A ``continue`` makes the harness wait for more of the reply; on a reply that
    is complete it ends as a timeout, i.e. a fail, like ``no``. So ``no`` and
    ``continue`` are the same outcome for a finished reply labeled ``no``, and
    vice versa; ``yes`` must be exact.
    """
    if label == "yes" or verdict == "yes":
        return verdict == label
    return True


async def measure(cases: list[LabeledCase], classifier: Any) -> dict[str, Any]:
    """Run every case through a fresh ``EvalJudge``; exact and pass/fail agreement."""
    from pipecat.evals.judge import EvalJudge

    rows = []
    started = time.monotonic()
    for case in cases:
        judge = EvalJudge(classifier, explainer=None)
        for text in case.user_turns:
            judge.add_user_message(text)
        judge.add_assistant_message(case.reply)
        verdict = (await judge.evaluate(case.criterion)).verdict
        rows.append({"label": case.label, "verdict": verdict, "reply": case.reply[:60]})
    n = len(rows)
    exact = sum(r["verdict"] == r["label"] for r in rows)
    agree = sum(passes(r["verdict"], r["label"]) for r in rows)
    false_yes = sum(r["verdict"] == "yes" and r["label"] != "yes" for r in rows)
    false_no = sum(r["verdict"] != "yes" and r["label"] == "yes" for r in rows)
    return {
        "cases": n,
        "exact": exact,
        "pass_fail_agree": agree,
        "false_yes": false_yes,
        "false_no": false_no,
        "seconds_per_case": (time.monotonic() - started) / max(n, 1),
        "wrong": [r for r in rows if not passes(r["verdict"], r["label"])],
    }
