"""Scripted conversations: what the caller says, when, and what it expects to hear."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal[
    "chat",
    "sight",
    "busy_chat",
    "monologue",
    "job",
    "timer",
    "nevermind",
    "topic",
    "barge_in",
    "noise",
    "silence",
]
Wait = Literal["reply", "ack", "result", "none"]

#: The pauses between two sentences of one utterance, as heard, taken in turn
#: (people pause 0.6-0.8 s inside one thought).
SENTENCE_PAUSES_S = (0.7, 0.6, 0.8)


@dataclass(frozen=True)
class Turn:
    """One thing the caller does, and what a good bot does in reply.

    Attributes:
        kind: What the turn exercises (the report groups by it); ``busy_chat`` is a
            chat question asked while the caller's own job runs; ``monologue`` is a
            long turn of many sentences (one reply, at its end).
        say: Sentences of one utterance, joined by :data:`SENTENCE_PAUSES_S`; empty
            for a noise or a silence.
        expect: A reply is on topic when its transcript holds any of these
            (case-insensitive, numbers compared as numbers); empty = anything.
        answer: For a job: the spoken result is the answer when it holds every
            one of these.
        wait: ``reply``: go on once the bot has replied and fallen silent;
            ``ack``: go on ``after_s`` after the reply starts (talking on while a
            job runs); ``result``: wait for the job's spoken result; ``none``:
            go on ``after_s`` after the turn, whatever the bot does.
        after_s: Seconds of silence to keep (or wait for) before the next turn.
        timeout_s: The longest the caller waits for what ``wait`` names.
        due_s: For a timer: when, after the end of the request, it should fire.
        quiet: The bot should say nothing in reply (a cough, a silence).
        barge_in_s: Start speaking this many seconds into the bot's next speech,
            over it (the bot should stop).
        noise: ``cough`` plays a cough instead of speech.
    """

    kind: Kind
    say: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    answer: tuple[str, ...] = ()
    wait: Wait = "reply"
    after_s: float = 1.5
    timeout_s: float = 12.0
    due_s: float | None = None
    quiet: bool = False
    barge_in_s: float | None = None
    noise: Literal["cough"] | None = None

    def __post_init__(self) -> None:
        if not self.say and self.noise is None and self.kind != "silence":
            raise ValueError(f"a {self.kind} turn must say something")
        if any(not s.strip() for s in self.say):
            raise ValueError("a sentence of a turn is empty")
        if self.after_s < 0 or self.timeout_s <= 0:
            raise ValueError("after_s must be >= 0 and timeout_s > 0")
        if self.kind == "timer" and self.due_s is None:
            raise ValueError("a timer turn needs due_s")


@dataclass(frozen=True)
class Conversation:
    """A scripted call: turns in order, spoken in real time."""

    name: str
    turns: tuple[Turn, ...] = field(default_factory=tuple)
    ci: bool = False  # part of the small subset CI runs
    camera: bool = False  # the caller's webcam shows a person in a room all call long

    def __post_init__(self) -> None:
        if not self.name or not self.turns:
            raise ValueError("a conversation needs a name and at least one turn")
