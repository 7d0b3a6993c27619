#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The fake models' behaviour, one policy for both systems (pure functions, no I/O).

The interaction model behaves the same way in both systems; only the *dialect*
differs — how each system asks it to delegate and how each hands it background
output:

* ``tandem``: ``delegate(task=...)`` per request; results arrive as one developer
  message "Background work has finished ..." with ``Result:``/offer/failure items.
* ``backend`` (pipecat's ``LLMWithBackend``): ``delegate()`` with no arguments, once
  per reply (the transcript strategy), also to hand over a "never mind"; results
  arrive as developer messages ``Backend: ...``.

Behaviour (what a competent, literal model does): answer the user's newest
unanswered message first; delegate requests (``qN``); after a delegation, say
"I'm on it."; relay every background message that arrived since its last spoken
reply, once, at the end of the reply; never read out an answer it is told to
offer. Answers are spoken as tokens — ``ANS-qN``, ``OFFER-qN``, ``FAIL-qN``
(``FAIL-?`` when the failure does not say which request) — so what is *spoken*
can be counted.

The background model answers every request id in its newest request with
``ANS-qN`` after the scenario's latency (the backend dialect marks it ``>>``, as
``BackendLLMWorker`` requires), fails or hangs as scripted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipecat_tandem.bench.fakes import Brain, Reply
from pipecat_tandem.bench.fakes import message_text as _text
from pipecat_tandem.bench.scenarios import Scenario
from pipecat_tandem.policy.topic import TopicTracker

DIALECTS = ("tandem", "backend")
QID = re.compile(r"\bq\d+\b")
ANS = re.compile(r"\bANS-(q\d+)\b")
LONG_REPLY = (
    "Well, my day has been lovely so far: I read about old bridges, learned a new "
    "recipe for bread, and watched the rain over the harbour for a while."
)


def _relay_tandem(content: str) -> list[str]:
    if "Background work has finished" not in content:
        return []
    parts = []
    for item in content.split("\n- ")[1:]:
        head = item.split("\n", 1)[0]
        if "moved on from" in item:
            qids = QID.findall(item.split("An answer exists", 1)[0]) or ["?"]
            parts.append(
                f"I also have the answer on {' '.join('OFFER-' + q for q in qids)}, want it?"
            )
        elif "It failed" in item:
            qids = QID.findall(head) or ["?"]
            parts.append(f"Sorry, I could not finish {' '.join('FAIL-' + q for q in qids)}.")
        else:
            tokens = ANS.findall(item)
            if tokens:
                parts.append("The answer is " + "; ".join("ANS-" + q for q in tokens) + ".")
    return parts


def _relay_backend(content: str) -> list[str]:
    if not content.startswith("Backend: "):
        return []  # notes, thoughts, "working" marks: never relayed on their own
    body = content.removeprefix("Backend: ").split("\n\n", 1)[0]
    if "could not be completed" in body:
        return ["Sorry, I could not finish FAIL-?."]
    tokens = ANS.findall(body)
    return ["The answer is " + "; ".join("ANS-" + q for q in tokens) + "."] if tokens else []


def interaction_brain(dialect: str, *, delay_s: float = 0.3) -> Brain:
    """The fake interaction (frontend) model for ``dialect``."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    relay_of = _relay_tandem if dialect == "tandem" else _relay_backend

    def brain(messages: list[dict[str, Any]]) -> Reply:
        last_spoken = max(
            (
                i
                for i, m in enumerate(messages)
                if m.get("role") == "assistant" and _text(m).strip()
            ),
            default=-1,
        )
        tail = messages[last_spoken + 1 :]
        relay = [p for m in tail if m.get("role") == "developer" for p in relay_of(_text(m))]
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        said = _text(messages[users[-1]]) if users else ""
        cancelling = TopicTracker.is_cancellation(said)
        if any(m.get("role") == "tool" for m in tail):
            # The run on a delegation's result: acknowledge it (and relay what came in).
            own = "OK, I've stopped that." if cancelling else "I'm on it."
            return Reply(text=" ".join([own, *relay]), delay_s=delay_s)
        if not users or users[-1] <= last_spoken:
            return Reply(text=" ".join(relay) or "Anything else?", delay_s=delay_s)
        calls: list[tuple[str, dict[str, Any]]] = []
        if dialect == "backend" and (QID.search(said) or cancelling):
            calls = [("delegate", {})]  # one handoff per reply, the stop included
        elif dialect == "tandem" and QID.search(said):
            calls = [("delegate", {"task": part.strip()}) for part in re.split(r"\band\b", said)
                     if QID.search(part)]  # fmt: skip
        if calls:
            return Reply(text=" ".join(relay), tool_calls=calls, delay_s=delay_s)
        if cancelling:
            own = "OK, I've stopped that."
        elif "story" in said:
            own = LONG_REPLY
        else:
            own = "Sure, happy to help with that."
        return Reply(text=" ".join([own, *relay]), delay_s=delay_s)

    return brain


def _pending_backend(messages: list[dict[str, Any]]) -> tuple[list[str], bool]:
    """Request ids not yet answered or called off, and whether the newest line calls off."""
    answered = {q for m in messages if m.get("role") == "assistant" for q in ANS.findall(_text(m))}
    pending: list[str] = []
    cancelled = False
    for m in messages:
        if m.get("role") != "user":
            continue
        for line in _text(m).splitlines():
            if not line.startswith("USER:"):
                continue
            cancelled = TopicTracker.is_cancellation(line)
            if cancelled:
                pending.clear()
            pending += [q for q in QID.findall(line) if q not in answered and q not in pending]
    return pending, cancelled


def background_brain(
    dialect: str, scenario: Scenario, *, idle_delay_s: float = 0.2
) -> Callable[[list[dict[str, Any]]], Reply]:
    """The fake background model for ``dialect`` answering ``scenario``'s queries."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")

    def brain(messages: list[dict[str, Any]]) -> Reply:
        if dialect == "tandem":
            last = _text(messages[-1]) if messages else ""
            task = last.split("\n", 1)[0]
            qids = list(dict.fromkeys(QID.findall(task)))
            cancelled = False
        else:
            qids, cancelled = _pending_backend(messages)
        queries = [q for q in (scenario.query(qid) for qid in qids) if q is not None]
        if not queries:
            note = "Stopped as asked." if cancelled else "Nothing new to do."
            return Reply(text=note, delay_s=idle_delay_s)
        delay = max(q.latency_s for q in queries)
        ids = tuple(q.qid for q in queries)
        if any(q.outcome == "hang" for q in queries):
            return Reply(hang=True, delay_s=delay, qids=ids)
        if any(q.outcome == "fail" for q in queries):
            return Reply(error="the background model failed", delay_s=delay, qids=ids)
        answer = " ".join(f"ANS-{q}." for q in ids)
        return Reply(text=(">> " if dialect == "backend" else "") + answer, delay_s=delay, qids=ids)

    return brain
