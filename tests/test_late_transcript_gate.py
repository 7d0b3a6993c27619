"""A transcript that arrives after its user turn ended "empty" is not answered twice.

Seen at a real caller under load (issue 16): "Count my squats." reached the user
aggregator seconds after the caller stopped talking; the aggregator had ended the
turn with no words and run the interaction model on its empty-turn prompt (the
model said "Certainly!"), and the request's acknowledgement came after that. Real
pipecat frames through the product's tandem pipeline on virtual time.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    InputImageRawFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
)

from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, run_scenario
from tests.support.virtual_time import run_virtual


class Model:
    """A fake interaction model that records every inference it is asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        self.asked.append((str(last.get("role")), str(last.get("content"))))
        return FakeReply(text="Certainly!")


def late(text: str, *, spoken_at: float, delay: float) -> list[tuple[float, Any]]:
    """The user speaks ``text`` for a second; its transcript comes ``delay`` s after.

    The turn ends empty at the aggregator's stop timeout (2 s); the late transcript
    then starts and ends a turn of its own, as pipecat's transcription start
    strategy does in ``tandem run`` (the scenario's turns are external).
    """
    end = spoken_at + 1.0
    heard = end + delay
    return [
        (spoken_at, ProposedUserStartedSpeakingFrame()),
        (end, ProposedUserStoppedSpeakingFrame()),
        (heard - 0.01, ProposedUserStartedSpeakingFrame()),
        (heard, TranscriptionFrame(text=text, user_id="user", timestamp="")),
        (heard + 0.01, ProposedUserStoppedSpeakingFrame()),
    ]


def run(script: list[tuple[float, Any]], model: Model, until: float) -> Any:
    # A lit camera for the whole call (a watch on the user needs one that shows them).
    image = bytes([128]) * (4 * 4 * 3)
    camera = [
        (0.5 + k * 0.5, InputImageRawFrame(image=image, size=(4, 4), format="RGB"))
        for k in range(int(until / 0.5))
    ]
    return run_virtual(
        run_scenario(
            camera + script,
            interaction=model,
            background=background_responder(lambda task: FakeReply(text="x")),
            until=until,
        )
    )


def test_a_late_request_is_acknowledged_and_the_empty_turn_is_not_answered():
    model = Model()
    r = run(late("Count my squats.", spoken_at=1.0, delay=3.0), model, until=9)
    assert model.asked == []  # neither the empty turn nor the request reached the model
    spoken = r.spoken_texts()
    assert len(spoken) == 1 and spoken[0].endswith("I'll count your squats."), spoken


def test_a_late_question_is_answered_once_not_asked_to_be_repeated_first():
    model = Model()
    r = run(late("What is the capital of Italy?", spoken_at=1.0, delay=3.0), model, until=9)
    assert model.asked == [("user", "What is the capital of Italy?")]
    assert r.spoken_texts() == ["Certainly!"]


def test_a_turn_that_stays_empty_still_gets_its_recovery():
    # A cough over nothing: no transcript ever comes; pipecat's empty-turn recovery
    # (ask the user to repeat) still runs, only later.
    model = Model()
    r = run(late("", spoken_at=1.0, delay=30.0)[:2], model, until=12)
    assert [role for role, _ in model.asked] == ["developer"]
    assert r.spoken_texts() == ["Certainly!"]
