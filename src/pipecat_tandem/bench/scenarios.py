#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The benchmark scenarios: scripted user timelines and background requests.

A scenario is system-agnostic: what the user says and when, which requests the
background gets (each marked with a query id ``qN`` the fake models key on) and how
long the background model takes for each, or whether it fails or hangs. Each seed
jitters the user's timing by up to ±``jitter_s`` and the model latencies by up to
±``jitter_frac``; seed 0 is the base timeline. Everything here is plain data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

#: The systems compared.
SYSTEMS = ("tandem", "llm_with_backend")

#: How a request ends at the background model.
OUTCOMES = ("ok", "fail", "hang")


@dataclass(frozen=True)
class Query:
    """One background request.

    Parameters:
        qid: Its id (``q1``...), also the token the fake models answer with.
        latency_s: The background model's time to answer it.
        outcome: ``ok``, ``fail`` (the model errors after ``latency_s``) or ``hang``.
        wanted: False when the user calls it off or moves away before it is ready:
            its answer must then not be read out as current.
    """

    qid: str
    latency_s: float
    outcome: str = "ok"
    wanted: bool = True

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if not self.latency_s >= 0:
            raise ValueError(f"latency_s must be >= 0, got {self.latency_s!r}")


@dataclass(frozen=True)
class Speech:
    """The user speaks ``text`` (None: a sound with no words, e.g. a cough) at ``t``."""

    t: float
    text: str | None
    duration: float = 1.0


@dataclass(frozen=True)
class Scenario:
    """A scripted conversation.

    Parameters:
        name: Short id.
        title: What it shows.
        speech: The user's speech, in time order.
        queries: The background requests the speech makes.
        until: Run length (session seconds).
        barge_in_after_s: If set, the user says "wait" this long after the bot starts
            the first utterance that carries a result (an announcement cut off).
        deadline_s: Job deadline for systems that have one (the timeout scenario).
    """

    name: str
    title: str
    speech: tuple[Speech, ...]
    queries: tuple[Query, ...] = ()
    until: float = 20.0
    barge_in_after_s: float | None = None
    deadline_s: float | None = None

    def query(self, qid: str) -> Query | None:
        """The query with id ``qid``."""
        return next((q for q in self.queries if q.qid == qid), None)

    def jittered(self, seed: int, *, jitter_s: float = 0.15, jitter_frac: float = 0.1) -> Scenario:
        """This scenario with timings varied by ``seed`` (seed 0: unchanged)."""
        if seed == 0:
            return self
        rng = random.Random(f"{self.name}:{seed}")
        speech = []
        last = 0.0
        for s in self.speech:
            t = max(last, s.t + rng.uniform(-jitter_s, jitter_s))
            speech.append(replace(s, t=round(t, 3)))
            last = t + s.duration + 0.05
        queries = tuple(
            replace(
                q, latency_s=round(q.latency_s * rng.uniform(1 - jitter_frac, 1 + jitter_frac), 3)
            )
            for q in self.queries
        )
        return replace(self, speech=tuple(speech), queries=queries)


_TOPICS = [
    "the weather in Paris",
    "the tides at Brest",
    "flights to Lisbon",
    "the population of Oslo",
    "museums in Vienna",
    "trains to Milan",
    "hotels near Kyoto",
    "the exchange rate for yen",
]


def ask(i: int, t: float, duration: float = 1.0) -> Speech:
    """The user asks background question ``q{i}``."""
    return Speech(t, f"please look up {_TOPICS[(i - 1) % len(_TOPICS)]} q{i}", duration)


def _chat(t: float, text: str = "how are you today", duration: float = 0.8) -> Speech:
    return Speech(t, text, duration)


def _builtin() -> list[Scenario]:
    q1 = Query("q1", 2.0)
    return [
        Scenario("idle", "result ready while both are idle", (ask(1, 1.0),), (q1,), 15),
        Scenario(
            "user_speaking",
            "result ready while the user speaks",
            (ask(1, 1.0), Speech(3.8, "and now tell me a long story about a dragon", 3.0)),
            (q1,),
            20,
        ),
        Scenario(
            "bot_speaking",
            "result ready during a long bot reply",
            (ask(1, 1.0), Speech(2.9, "tell me a story about your day", 0.6)),
            (q1,),
            20,
        ),
        Scenario(
            "barge_in",
            "announcement cut off by the user",
            (ask(1, 1.0),),
            (q1,),
            20,
            barge_in_after_s=0.4,
        ),
        Scenario(
            "two_together",
            "one turn asks two things; results ~0.1 s apart",
            (Speech(1.0, "please look up the weather in Paris q1 and plan a day in Rome q2", 2.0),),
            (Query("q1", 2.0), Query("q2", 2.1)),
            20,
        ),
        Scenario(
            "mid_response",
            "a result lands while the model answers another delegation",
            (ask(1, 1.0), ask(2, 3.0)),
            (q1, Query("q2", 2.0)),
            25,
        ),
        Scenario(
            "cough",
            "a user sound with no transcript as the result lands",
            (ask(1, 1.0), Speech(4.2, None, 0.4)),
            (q1,),
            20,
        ),
        Scenario(
            "cancel",
            "the user calls the request off before the result",
            (ask(1, 1.0), Speech(2.6, "never mind, forget it", 0.6)),
            (Query("q1", 5.0, wanted=False),),
            15,
        ),
        Scenario(
            "topic_change",
            "the user changes topic before the result",
            (ask(1, 1.0), Speech(3.5, "actually let's talk about something else", 0.8)),
            (Query("q1", 4.0, wanted=False),),
            20,
        ),
        Scenario(
            "failure",
            "the background model fails",
            (ask(1, 1.0), _chat(8.0, "hello again")),
            (Query("q1", 2.0, outcome="fail"),),
            15,
        ),
        Scenario(
            "timeout",
            "the background model hangs (8 s deadline where supported)",
            (ask(1, 1.0),),
            (Query("q1", 0.0, outcome="hang"),),
            20,
            deadline_s=8.0,
        ),
        Scenario(
            "burst8",
            "a burst of 8 requests, one per turn",
            tuple(ask(i, 1.0 + 2.5 * (i - 1), 0.8) for i in range(1, 9)),
            tuple(Query(f"q{i}", 3.0) for i in range(1, 9)),
            45,
        ),
        Scenario(
            "chat_idle",
            "chit-chat, no background work (interaction-path baseline)",
            tuple(_chat(1.0 + 3.0 * i) for i in range(6)),
            (),
            20,
        ),
        Scenario(
            "chat_loaded",
            "the same chit-chat while a long request runs",
            (ask(1, 1.0), *(_chat(4.0 + 3.0 * i) for i in range(5))),
            (Query("q1", 14.0),),
            22,
        ),
    ]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in _builtin()}


@dataclass
class ScenarioSelection:
    """A resolved selection of scenarios and seeds (see :func:`select`)."""

    scenarios: list[Scenario] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)


def select(names: list[str] | None, seeds: int) -> ScenarioSelection:
    """Resolve scenario names (None or empty: all) and a seed count.

    Raises:
        ValueError: Unknown names, duplicates, or a seed count outside 1..50.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= 50:
        raise ValueError(f"seeds must be an integer in 1..50, got {seeds!r}")
    if not names:
        chosen = list(SCENARIOS.values())
    else:
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}")
        if len(set(names)) != len(names):
            raise ValueError(f"scenario listed twice in {names}")
        chosen = [SCENARIOS[n] for n in names]
    return ScenarioSelection(chosen, list(range(seeds)))
