"""Grading a call from the caller's side: latency, topic, talking over, job answers.

Pure functions over what the peer recorded and what its own ears transcribed; no
I/O, so the rules are tested on hand-made recordings.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pipecat_tandem.background.answer import carries_value
from pipecat_tandem.bench.caller.ears import Heard
from pipecat_tandem.bench.caller.mic import Spoken
from pipecat_tandem.bench.caller.recording import BotRecording
from pipecat_tandem.bench.caller.script import Turn

_UNITS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    w: 10 * (i + 2)
    for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = re.compile(
    r"\b(?:(?:"
    + "|".join([*_UNITS, *_TENS, *_SCALES, "point"])
    + r")\b(?:[\s-]+(?:and[\s-]+)?)?)+",
    re.IGNORECASE,
)

#: What reading a plan or a tool call aloud sounds like once transcribed.
_NOT_AN_ANSWER = re.compile(
    r"\b(json|jason|arguments?|function call|tool call|calculator|convert_units|"
    r"step (?:one|1)|we can use|let's (?:use|calculate)|here's the calculation|expression)\b",
    re.IGNORECASE,
)

#: Words that say something is owed, not done ("I'll tell you when...").
_FUTURE = re.compile(r"\b(i'll|i will|will tell|will remind|i'm going to|okay|sure)\b", re.I)


def _spoken_number(words: str) -> str:
    whole, _, decimals = words.lower().partition("point")
    digits = "".join(str(_UNITS[w]) for w in decimals.split() if _UNITS.get(w, 10) < 10)
    if not whole.strip():
        return f"0.{digits}" if digits else words
    total, current = 0, 0
    for w in re.split(r"[\s-]+", whole.strip()):
        if w in _UNITS:
            current += _UNITS[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        elif w in ("thousand", "million"):
            total += max(current, 1) * _SCALES[w]
            current = 0
    number = str(total + current)
    return f"{number}.{digits}" if digits else number


def normalize(text: str) -> str:
    """Lowercase, with spoken numbers as digits.

    "five thousand forty" and "5,040" both become "5040"; "twenty six point two"
    becomes "26.2".
    """
    t = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    return _NUMBER_WORD.sub(lambda m: _spoken_number(m.group(0)) + " ", t)


def mentions(text: str, term: str) -> bool:
    """Whether ``text`` says ``term`` (a word or phrase, or a number said any common way)."""
    norm = normalize(text)
    if re.fullmatch(r"-?\d+(?:\.\d+)?", term):
        return carries_value(norm, term) or bool(
            re.search(rf"(?<![\d.]){re.escape(term)}(?!\d)", norm)
        )
    return term.lower() in norm or term.lower() in text.lower()


@dataclass
class TurnResult:
    """What the caller had of one turn."""

    conversation: str
    index: int
    kind: str
    said: str
    latency_s: float | None = None  # end of the caller's voice → first bot audio at the peer
    heard: str = ""  # the caller's transcript of the reply
    on_topic: bool | None = None
    spoke_over_user: bool = False
    over_user_s: float = 0.0  # bot audio heard while the caller was talking (or pausing)
    result_s: float | None = None  # end of the request → start of the spoken answer
    answer_spoken: bool | None = None
    not_an_answer: bool = False  # a plan or a tool call was read out
    due_s: float | None = None  # timers: when it should fire
    fired_s: float | None = None  # timers: end of the request → the announcement
    early_claim: bool = False  # timers: said it happened before it did
    stayed_quiet: bool | None = None
    stopped_after_s: float | None = None  # barge-in: caller starts → bot silent

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (rounded times)."""
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 3)
        return out


def grade_turn(
    conversation: str,
    index: int,
    turn: Turn,
    spoken: Spoken,
    window_end: float,
    recording: BotRecording,
    heard: list[Heard],
) -> TurnResult:
    """Grade one turn from its timing, the recording and the caller's transcript.

    Args:
        conversation: The conversation's name.
        index: The turn's position.
        turn: The script's turn.
        spoken: When the caller's voice for the turn went out.
        window_end: When the next turn's voice started (or the call ended): the
            reply to this turn is what the bot said before it.
        recording: The bot's audio at the peer.
        heard: The caller's transcript of all the bot said, in order.
    """
    said = " ".join(turn.say) or (turn.noise or "(silence)")
    r = TurnResult(conversation, index, turn.kind, said, due_s=turn.due_s)
    end = spoken.voice_end
    first = recording.first_loud_after(end)
    if first is not None and first < window_end:
        r.latency_s = first - end
    reply = [h for h in heard if end - 0.2 <= h.start < window_end]
    r.heard = " ".join(h.text for h in reply)
    if turn.quiet:
        r.stayed_quiet = recording.loud_between(end, window_end) < 0.3
    elif turn.expect:
        r.on_topic = any(mentions(r.heard, e) for e in turn.expect)
    if turn.barge_in_s is None and spoken.voice_end > spoken.voice_start:
        # Speech the bot started before the caller did is a barge-in, not talking over.
        started_before = recording.loud_between(spoken.voice_start - 0.1, spoken.voice_start) > 0
        over = recording.loud_between(spoken.voice_start + 0.3, spoken.voice_end)
        r.over_user_s = 0.0 if started_before else over
        r.spoke_over_user = not started_before and over >= 0.3
    if turn.barge_in_s is not None:
        last = _last_loud_in(recording, spoken.voice_start, spoken.voice_end)
        r.stopped_after_s = (last - spoken.voice_start) if last is not None else 0.0
    later = [h for h in heard if h.start >= end - 0.2]
    if turn.answer:
        _grade_job(r, turn, end, later)
    if turn.kind == "timer" and turn.due_s is not None:
        _grade_timer(r, turn.due_s, end, later)
    return r


def _last_loud_in(recording: BotRecording, t0: float, t1: float) -> float | None:
    for seg in recording.segments():
        if seg.start <= t0 < seg.end + 0.1:
            return min(seg.end, t1)
    return None


def _grade_job(r: TurnResult, turn: Turn, end: float, later: list[Heard]) -> None:
    r.answer_spoken = False
    for h in later:
        if _NOT_AN_ANSWER.search(h.text):
            r.not_an_answer = True
        if all(mentions(h.text, a) for a in turn.answer):
            r.answer_spoken = True
            r.result_s = h.start - end
            return


def _grade_timer(r: TurnResult, due_s: float, end: float, later: list[Heard]) -> None:
    for h in later:
        at = h.start - end
        if at < due_s - 0.5:
            # The acknowledgement says what is owed; anything else this early claims it.
            if h is not later[0] and not _FUTURE.search(h.text):
                r.early_claim = True
            continue
        r.fired_s = at
        return
