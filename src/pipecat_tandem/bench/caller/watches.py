"""Watch calls: ask the bot to watch or count, then do it in front of the camera.

A :class:`Watch` is one call: the caller's camera shows a first scene, the caller
asks ("Tell me when I wave."), the bot acknowledges, the camera keeps showing the
first scene for ``still_s`` (the bot must say nothing), then cuts to the event
scene (the view changes, a wave, ``n`` squats) and the caller listens. A timer
watch has no event scene: the request's own due time is the event.

:func:`grade_watch` grades a finished call from the caller's recording and its own
transcript only; pure, so its rules are tested on hand-made recordings.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from pipecat_tandem.bench.caller.ears import Heard
from pipecat_tandem.bench.caller.recording import BotRecording
from pipecat_tandem.bench.caller.scenes import Person, Room, Scene, Slide, Squats, Wave

Kind = Literal["change", "wave", "count", "timer"]

#: An acknowledgement says what will happen, never that it happened.
_ACK = re.compile(r"\b(i'll|i will|tell you|count|remind|let you know|okay|sure|got it)\b", re.I)
_FUTURE = re.compile(r"\b(i'll|i will|tell you|let you know)\b", re.I)
_CLAIM = {
    "change": re.compile(r"\b(changed|just changed|is different)\b", re.I),
    "wave": re.compile(r"\b(waving|waved|see you wave)\b", re.I),
    "timer": re.compile(r"\b(have passed|has passed|are up|is up)\b", re.I),
}


@dataclass(frozen=True)
class Watch:
    """One watch call.

    Attributes:
        name: Names the call in the report.
        kind: What is graded.
        request: What the caller says.
        first: The scene before the event (also during the request).
        event: The event scene (``None`` for a timer).
        still_s: Seconds of the first scene after the acknowledgement.
        event_s: How long the event itself lasts (a wave, the squats).
        listen_s: Seconds the caller listens after the event ends.
        n: For a count: how many squats.
        due_s: For a timer: seconds from the end of the request.
    """

    name: str
    kind: Kind
    request: str
    first: Scene
    event: Scene | None = None
    still_s: float = 5.0
    event_s: float = 0.0
    listen_s: float = 3.0
    n: int = 0
    due_s: float = 0.0


def screen_change(seed: int = 0) -> Watch:
    """Asks to be told when the screen changes: a room with a small object moving, a slide."""
    return Watch(
        f"screen_change_{seed}", "change", "Tell me when the screen changes.",
        Room(seed), Slide(seed + 1), still_s=6.0, listen_s=3.0,
    )  # fmt: skip


def wave(seed: int = 0, hz: float = 1.6) -> Watch:
    """Asks to be told of a wave: a person standing still, then waving for 4 s."""
    room = Room(seed)
    return Watch(
        f"wave_{seed}", "wave", "Tell me when I wave.", Person(room, seed=seed + 3),
        Person(room, wave=Wave(0.0, seconds=4.0, hz=hz), seed=seed + 3),
        still_s=6.0, event_s=4.0, listen_s=3.0,
    )  # fmt: skip


def squats(n: int, seed: int = 0, period: float = 2.2) -> Watch:
    """Asks for a count: a person standing, then ``n`` squats (each a little different)."""
    room = Room(seed)
    reps = Squats(n, start=0.0, period=period, seed=seed)
    return Watch(
        f"squats_{n}", "count", "Count my squats.", Person(room, seed=seed + 3),
        Person(room, squats=reps, seed=seed + 3),
        still_s=3.0, event_s=reps.end, listen_s=4.0, n=n,
    )  # fmt: skip


def ten_seconds() -> Watch:
    """Asks to be told when ten seconds have passed, in front of a still person."""
    return Watch(
        "ten_seconds", "timer", "Tell me when ten seconds have passed.",
        Person(Room(0)), still_s=0.0, listen_s=3.0, due_s=10.0,
    )  # fmt: skip


def suite(counts: range = range(3, 11)) -> list[Watch]:
    """The whole benchmark: a screen change, two waves, squats for each ``n``, a timer."""
    return [screen_change(0), screen_change(1), wave(0, 1.6), wave(1, 1.2),
            *(squats(n, seed=n) for n in counts), ten_seconds()]  # fmt: skip


def ci_suite() -> list[Watch]:
    """The CI subset: one of each, with shorter waits than the benchmark's.

    Each check keeps what can fail it (a still view before the event that must
    stay unanswered, the event, time to hear the reaction within its limit), only
    shorter: 3 s of stillness instead of 6, squats at a 1.8 s period, listening
    no longer than the reaction's deadline needs. The benchmark keeps the long
    ones.
    """
    return [
        replace(screen_change(0), still_s=3.0, listen_s=1.5),  # its limit: 1.0 s
        replace(wave(0), still_s=3.0, listen_s=2.5),  # heard by the wave's end + 2 s
        replace(squats(3, seed=3, period=1.8), still_s=2.0, listen_s=3.0),
        ten_seconds(),
    ]


@dataclass
class WatchTimes:
    """When things happened in a watch call (caller's monotonic seconds)."""

    request_end: float = 0.0  # the end of the caller's voice
    event_at: float | None = None  # the first frame of the event scene
    event_end: float | None = None
    ended: float = 0.0


@dataclass
class WatchResult:
    """What the caller had of one watch call."""

    name: str
    kind: str
    acknowledged: bool = False  # the first reply says what will happen
    ack_claims: bool = False  # ... or claims it happened already
    ack: str = ""
    early_speech_s: float = 0.0  # bot speech between the ack and the event
    latency_s: float | None = None  # event -> first bot audio after it
    reaction: str = ""
    on_time: bool = False
    n: int = 0
    counted: int | None = None  # the highest number heard after the event
    numbers: list[int] | None = None

    @property
    def passed(self) -> bool:
        """The watch did what the caller asked, when it should have."""
        ok = self.acknowledged and not self.ack_claims and self.early_speech_s < 0.3
        if self.kind == "count":
            return ok and self.counted == self.n
        return ok and self.on_time

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (rounded times)."""
        out = asdict(self)
        out["passed"] = self.passed
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


_COUNT_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}


def heard_numbers(text: str) -> list[int]:
    """The numbers counted aloud in a transcript, each word its own ("Two three 4" -> [2, 3, 4]).

    A count is said one number at a time, and the caller's ears may drop the
    full stops between them: "two three" is two numbers here, not five.
    """
    out = []
    for token in re.findall(r"[a-z]+|\d+", text.lower()):
        if token.isdigit():
            out.append(int(token))
        elif token in _COUNT_WORDS:
            out.append(_COUNT_WORDS[token])
    return out


def grade_watch(
    watch: Watch,
    times: WatchTimes,
    recording: BotRecording,
    heard: list[Heard],
    latency_limit_s: float = 1.0,
    timer_tolerance_s: float = 0.5,
) -> WatchResult:
    """Grade one watch call from the recording and the caller's transcript of it.

    The acknowledgement is the first thing heard after the request; "early" speech
    is any bot audio after the acknowledgement and before the event (for a timer:
    before its due time minus the tolerance).
    """
    r = WatchResult(watch.name, watch.kind, n=watch.n)
    after = [h for h in heard if h.end > times.request_end]
    ack_end = times.request_end
    if after:
        first = after[0]
        r.ack = first.text
        r.acknowledged = bool(_ACK.search(first.text))
        claim = _CLAIM.get(watch.kind)
        # "I'll tell you when ten seconds have passed" owes it; "ten seconds have
        # passed" claims it.
        r.ack_claims = (
            bool(claim and claim.search(first.text)) and not _FUTURE.search(first.text)
        ) or (watch.kind == "count" and bool(heard_numbers(first.text)))
        ack_end = first.end
        ack_end = max(ack_end, _segment_end(recording, first.start))
    event = times.event_at
    if watch.kind == "timer":
        event = times.request_end + watch.due_s
    if event is None:
        return r
    quiet_until = event - timer_tolerance_s if watch.kind == "timer" else event
    r.early_speech_s = recording.loud_between(ack_end + 0.05, quiet_until)
    first_loud = recording.first_loud_after(max(quiet_until, ack_end + 0.05))
    if first_loud is not None and first_loud < times.ended:
        r.latency_s = first_loud - event
    reaction = [h for h in heard if h.end > quiet_until and h.start >= ack_end]
    r.reaction = " ".join(h.text for h in reaction)
    if watch.kind == "timer":
        r.on_time = r.latency_s is not None and abs(r.latency_s) <= timer_tolerance_s
    elif watch.kind == "count":
        r.numbers = heard_numbers(r.reaction)
        r.counted = max(r.numbers) if r.numbers else 0
    else:
        end = (times.event_end or event) + 2.0 if watch.kind == "wave" else event + latency_limit_s
        r.on_time = first_loud is not None and event <= first_loud <= end
    return r


def _segment_end(recording: BotRecording, start: float) -> float:
    for seg in recording.segments():
        if seg.start <= start + 0.3 and seg.end >= start:
            return seg.end
    return start
