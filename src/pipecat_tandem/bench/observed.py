#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Metrics derived from what was observed, the same way for every system (pure).

Input is a run record (see :class:`~pipecat_tandem.bench.harness.RunRecord`, as a
dict): the user's speech spans, the instants the background model produced each
answer or failed, and the bot's utterances with the tokens they carry (``ANS-qN``
answer, ``OFFER-qN`` offer, ``FAIL-qN``/``FAIL-?`` failure notice).

Definitions, per background request ``qN``:

* **owed** to the user: the answer of a request still wanted, or a failure notice
  for one that failed or hung. **Delivered** when an utterance carrying it was spoken
  to the end; **lost** when the run ended without that (a cut-off announcement that
  is never repeated is lost); **unfinished** when the answer was not even produced
  by the end of the run (not the delivery path's fault; reported apart).
* a request the user called off or moved away from must not be read out as current:
  an ``ANS-qN`` for it is a **stale read**; an ``OFFER-qN`` is fine.
* **repeated**: an utterance carrying a token already carried by an earlier utterance
  that was spoken to the end (re-saying a cut-off announcement is not a repeat).
* per delivery (an utterance carrying any token that started): **over the user**
  when it started inside a user speech span; **over the bot** when the system handed
  it to the output while the bot was speaking or had speech queued; its **quiet gap**
  is the silence on both sides just before it started.
* **ready → delivered**: from the model producing the answer (or failing) to the
  start of the first utterance that carried it to the end.
* **interaction latency**: end of each worded user turn to the start of the bot's
  next utterance, split by whether a background request was in flight.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pipecat_tandem.observe.metrics import percentile

QID = re.compile(r"\bq\d+\b")
TOKEN = re.compile(r"\b(ANS|OFFER|FAIL)-(q\d+|\?)")


@dataclass
class ObservedMetrics:
    """Observed metrics of one run or of several pooled (see the module docstring)."""

    runs: int = 0
    owed: int = 0
    delivered: int = 0
    lost: int = 0
    unfinished: int = 0
    repeated: int = 0
    stale_read: int = 0
    offered: int = 0
    deliveries: int = 0
    over_user: int = 0
    over_bot: int = 0
    latencies_s: list[float] = field(default_factory=list)
    gaps_s: list[float] = field(default_factory=list)
    interaction_idle_s: list[float] = field(default_factory=list)
    interaction_loaded_s: list[float] = field(default_factory=list)

    def add(self, other: ObservedMetrics) -> None:
        """Pool ``other`` into this one."""
        for name, value in asdict(other).items():
            if isinstance(value, list):
                getattr(self, name).extend(value)
            else:
                setattr(self, name, getattr(self, name) + value)

    def summary(self, min_gap_s: float = 0.5) -> dict[str, Any]:
        """Counts plus medians/percentiles (lists dropped)."""
        out: dict[str, Any] = {k: v for k, v in asdict(self).items() if not isinstance(v, list)}

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        out["latency_p50_s"] = r(percentile(self.latencies_s, 50))
        out["latency_p95_s"] = r(percentile(self.latencies_s, 95))
        out["gap_p50_s"] = r(percentile(self.gaps_s, 50))
        out["gap_ok"] = sum(1 for g in self.gaps_s if g >= min_gap_s - 1e-6)
        out["interaction_idle_p50_s"] = r(percentile(self.interaction_idle_s, 50))
        out["interaction_loaded_p50_s"] = r(percentile(self.interaction_loaded_s, 50))
        return out


def _tokens(text: str) -> set[tuple[str, str]]:
    return {(m.group(1), m.group(2)) for m in TOKEN.finditer(text)}


def _delivery_word(text: str) -> int | None:
    """Index of the first word of the first sentence that carries a token."""
    sentence = 0
    for i, word in enumerate(text.split()):
        if TOKEN.search(word):
            return sentence
        if word.endswith((".", "?", "!")):
            sentence = i + 1
    return None


def _inside(t: float, spans: list[dict[str, Any]], until: float) -> bool:
    return any(s["start"] < t <= (s["end"] if s["end"] is not None else until) for s in spans)


def _done_at(qid: str, ready: dict[str, float], failed: dict[str, float]) -> float | None:
    return ready.get(qid, failed.get(qid))


@dataclass
class _Delivery:
    """An utterance that carries tokens, with the instant its delivery sentence began."""

    utterance: dict[str, Any]
    tokens: set[tuple[str, str]]
    at: float
    glued: bool  # the delivery follows other words of the same utterance
    heard: bool  # spoken to the end

    @property
    def start(self) -> float:
        return float(self.utterance["start"])


def _deliveries(
    utts: list[dict[str, Any]], queries: dict[str, Any], failed: dict[str, float], spw: float
) -> list[_Delivery]:
    # "FAIL-?" (a failure notice that does not say which request) is attributed to the
    # failed or hung requests in order.
    unnamed = [q for q, spec in queries.items() if spec["outcome"] != "ok"]
    out = []
    for u in utts:
        toks = _tokens(u["text"])
        word = _delivery_word(u["text"])
        if not toks or word is None:
            continue
        at = u["start"] + word * spw
        end = u["end"] if u["end"] is not None else at
        if at > end:
            continue  # cut off before the delivery sentence began: never said
        if ("FAIL", "?") in toks:
            toks.discard(("FAIL", "?"))
            named = {q for kind, q in toks if kind == "FAIL"}
            for q in unnamed:
                if q not in named and (failed.get(q) is None or failed[q] <= at):
                    toks.add(("FAIL", q))
                    break
        heard = not u.get("interrupted") and u["end"] is not None
        out.append(_Delivery(u, toks, round(at, 6), word > 0, heard))
    return out


def compute_observed(record: dict[str, Any]) -> ObservedMetrics:
    """Observed metrics of one run record (a ``RunRecord.to_dict()``)."""
    until = float(record["until"])
    spw = float(record.get("seconds_per_word", 0.2))
    spans = sorted(record.get("user_spans") or [], key=lambda s: s["start"])
    utts = [u for u in record.get("utterances") or [] if u.get("start") is not None]
    utts.sort(key=lambda u: u["start"])
    ready: dict[str, float] = dict(record.get("ready") or {})
    failed: dict[str, float] = dict(record.get("failed_at") or {})
    queries = {q["qid"]: q for q in record.get("queries") or []}
    m = ObservedMetrics(runs=1)
    deliveries = _deliveries(utts, queries, failed, spw)

    # Repeats and the first full delivery of each token.
    first_heard: dict[tuple[str, str], float] = {}
    for d in deliveries:
        for tok in d.tokens:
            if tok in first_heard:
                m.repeated += 1
            elif d.heard:
                first_heard[tok] = d.at

    for qid, spec in queries.items():
        ans, offer, fail = ("ANS", qid), ("OFFER", qid), ("FAIL", qid)
        if spec["outcome"] == "ok" and not spec["wanted"]:
            if any(ans in d.tokens for d in deliveries):
                m.stale_read += 1
            elif offer in first_heard:
                m.offered += 1
            continue
        if spec["outcome"] == "ok":
            token, at = ans, ready.get(qid)
            if at is None:
                m.unfinished += 1
                continue
        else:
            token, at = fail, failed.get(qid)
        m.owed += 1
        if token in first_heard:
            m.delivered += 1
            if at is not None:
                m.latencies_s.append(round(first_heard[token] - at, 6))
        else:
            m.lost += 1

    # Per delivery: over the user / over the bot / quiet gap before it.
    for d in deliveries:
        m.deliveries += 1
        over_user = _inside(d.at, spans, until)
        m.over_user += over_user
        m.over_bot += bool(d.utterance.get("arrived_while_speaking"))
        if over_user or d.glued:
            m.gaps_s.append(0.0)
            continue
        prev_user = max((s["end"] or until for s in spans if s["start"] < d.at), default=0.0)
        prev_bot = max(
            (u["end"] for u in utts if u["end"] is not None and u["end"] <= d.start), default=0.0
        )
        m.gaps_s.append(round(max(0.0, d.start - max(prev_user, prev_bot)), 6))

    # Interaction latency: chit-chat turns (no request in them), idle vs loaded.
    asked = {q: s["end"] for s in spans if s.get("text") for q in QID.findall(s["text"])}
    for j, s in enumerate(spans):
        if not s.get("text") or s["end"] is None or QID.search(s["text"]):
            continue
        end = s["end"]
        nxt = spans[j + 1]["start"] if j + 1 < len(spans) else until
        reply = next((u for u in utts if end < u["arrived"] < nxt), None)
        if reply is None:
            continue
        loaded = any(
            t_ask < end and (_done_at(q, ready, failed) or until + 1) > end
            for q, t_ask in asked.items()
        )
        target = m.interaction_loaded_s if loaded else m.interaction_idle_s
        target.append(round(reply["start"] - end, 6))
    return m
