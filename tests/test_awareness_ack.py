"""A handled request is acknowledged by the machinery and the interaction model stays silent.

Real pipecat frames through the product's tandem pipeline on virtual time, with the
awareness gate between the user aggregator and the interaction LLM (spliced in here
when the pipeline builder does not place it yet).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pipecat.frames.frames import InputImageRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator

import tests.support.scenario as scenario
from pipecat_tandem.frames import CueFrame
from pipecat_tandem.processors.awareness_gate import AwarenessGate
from pipecat_tandem.processors.awareness_processor import AwarenessProcessor
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, run_scenario, say
from tests.support.virtual_time import run_virtual

MICRO_TURN_S = 0.2


def _with_gate(build: Any) -> Any:
    def wrapped(**kw: Any) -> Any:
        tandem = build(**kw)
        stages = list(tandem.pipeline.processors[1:-1])
        if any(isinstance(p, AwarenessGate) for p in stages):
            return tandem  # the builder already places it
        awareness = next(p for p in stages if isinstance(p, AwarenessProcessor))
        at = next(i for i, p in enumerate(stages) if isinstance(p, LLMUserAggregator)) + 1
        stages.insert(at, awareness.gate)
        return dataclasses.replace(tandem, pipeline=Pipeline(stages))

    return wrapped


@pytest.fixture
def gated(monkeypatch):
    monkeypatch.setattr(
        scenario, "build_tandem_pipeline", _with_gate(scenario.build_tandem_pipeline)
    )


class Model:
    """A fake interaction model that records what it is asked and answers like a small one.

    Asked about a timer it claims it already happened (what the 0.5B did in the call).
    """

    def __init__(self) -> None:
        self.user_turns: list[str] = []

    def __call__(self, messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        if last.get("role") == "user":
            self.user_turns.append(str(last.get("content")))
            if "passed" in str(last.get("content")):
                return FakeReply(text="10 seconds have passed.")
        return FakeReply(text="Sure.")


def run(script, model, **kw):
    kw.setdefault("background", background_responder(lambda task: FakeReply(text="x")))
    return run_virtual(run_scenario(script, interaction=model, **kw))


def camera(t: float, end: float = 20.0) -> list[tuple[float, Any]]:
    """A lit camera, two images a second from ``t`` to ``end`` (see test_camera_bad_input)."""
    image = bytes([128]) * (4 * 4 * 3)
    return [
        (t + k * 0.5, InputImageRawFrame(image=image, size=(4, 4), format="RGB"))
        for k in range(int((end - t) / 0.5))
    ]


def test_timer_turn_is_acknowledged_verbatim_and_the_model_never_runs_on_it(gated):
    model = Model()
    r = run(say(1.0, "Tell me when ten seconds have passed."), model, until=16)
    asked_at = r.of_kind("transcript")[0]["t"]
    assert model.user_turns == []  # no inference on the request turn
    spoken = [(u.start, u.text) for u in r.output.spoken]
    assert spoken[0][1] == "Okay, I'll tell you when ten seconds have passed."
    assert spoken[0][0] - asked_at < 1.0
    # Nothing claims the outcome before it is true, and it is said once, on time.
    passed = [t for t, text in spoken if "passed." in text and "I'll" not in text]
    assert len(passed) == 1 and abs(passed[0] - (asked_at + 10.0)) <= MICRO_TURN_S + 0.2
    assert [text for _, text in spoken] == [
        "Okay, I'll tell you when ten seconds have passed.",
        "10 seconds have passed.",
    ]
    assert r.metrics.lost == 0 and r.metrics.deliveries_over_user == 0


def test_the_context_shows_the_exchange(gated):
    r = run(say(1.0, "Tell me when ten seconds have passed."), Model(), until=4)
    messages = [m for m in r.tandem.context.get_messages() if m.get("role") != "developer"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Tell me when ten seconds have passed."),
        ("assistant", "Okay, I'll tell you when ten seconds have passed."),
    ]
    notes = [m["content"] for m in r.tandem.context.get_messages() if m.get("role") == "developer"]
    assert any("registered" in n and "Never say it yourself" in n for n in notes)


def test_other_turns_still_reach_the_model_untouched(gated):
    model = Model()
    r = run(
        say(1.0, "Tell me when ten seconds have passed.")
        + say(3.0, "What is the capital of Italy?")
        + say(6.0, "Tell me a short joke."),
        model,
        until=9,
    )
    assert model.user_turns == ["What is the capital of Italy?", "Tell me a short joke."]
    assert r.spoken_texts()[1:] == ["Sure.", "Sure."]


def test_reminder_and_count_acknowledgements_restate_the_request(gated):
    model = Model()
    r = run(
        camera(0.5)
        + say(1.0, "remind me in two minutes to stretch")
        + say(4.0, "count my squats")
        + say(7.0, "stop counting"),
        model,
        until=10,
    )
    assert model.user_turns == []
    assert r.spoken_texts() == [
        "Okay, I'll remind you to stretch in two minutes.",
        "Sure, I'll count your squats.",
        "Got it, I've stopped counting.",
    ]


def test_cue_watch_without_a_camera_is_refused_honestly(gated):
    model = Model()
    r = run(
        say(1.0, "tell me when the screen changes")
        + [(8.0, CueFrame(kind="speech_onset", time=8.0, value=1.0))],
        model,
        until=10,
    )
    assert model.user_turns == []
    assert r.spoken_texts() == ["I can't see a camera right now."]
    assert not r.of_kind("delegated")  # no silent watch
    assert r.of_kind("interjection_refused")[0]["reason"] == "no camera"


def test_cue_watch_with_a_camera_is_acknowledged_and_fires(gated):
    r = run(
        camera(0.5)
        + say(1.0, "tell me when the screen changes")
        + [(8.0, CueFrame(kind="visual_change", time=8.0, value=0.9))],
        Model(),
        until=10,
    )
    assert r.spoken_texts() == [
        "Okay, I'll tell you when the view changes.",
        "The view just changed.",
    ]


def test_a_turn_with_a_request_and_a_question_goes_to_the_model(gated):
    # Two transcriptions in one turn: only one is a request, so the model answers
    # the turn (it has been told what was scheduled), and the timer still runs.
    from pipecat.frames.frames import (
        ProposedUserStartedSpeakingFrame,
        ProposedUserStoppedSpeakingFrame,
        TranscriptionFrame,
    )

    model = Model()
    script = [
        (1.0, ProposedUserStartedSpeakingFrame()),
        (
            2.0,
            TranscriptionFrame(
                text="Tell me when ten seconds have passed.", user_id="u", timestamp=""
            ),
        ),
        (
            2.5,
            TranscriptionFrame(text="And what's the capital of Italy?", user_id="u", timestamp=""),
        ),
        (2.6, ProposedUserStoppedSpeakingFrame()),
    ]
    r = run(script, model, until=14)
    assert len(model.user_turns) == 1 and "Italy" in model.user_turns[0]
    assert any("passed" in t for t in r.spoken_texts()[1:])


def _without_gate(build: Any) -> Any:
    def wrapped(**kw: Any) -> Any:
        tandem = build(**kw)
        stages = [p for p in tandem.pipeline.processors[1:-1] if not isinstance(p, AwarenessGate)]
        return dataclasses.replace(tandem, pipeline=Pipeline(stages))

    return wrapped


def test_without_the_gate_the_model_is_told_what_to_say(monkeypatch):
    # A hand-built pipeline without the gate (build_tandem_pipeline places it):
    # the model runs, but its own turn carries the acknowledgement to say.
    monkeypatch.setattr(
        scenario, "build_tandem_pipeline", _without_gate(scenario.build_tandem_pipeline)
    )
    model = Model()
    run(say(1.0, "Tell me when ten seconds have passed."), model, until=3)
    assert len(model.user_turns) == 1
    assert (
        'Reply with exactly: "Okay, I\'ll tell you when ten seconds have passed."'
        in (model.user_turns[0])
    )


def _dark_camera(t: float, end: float = 20.0) -> list[tuple[float, Any]]:
    """A muted camera: black images, two a second."""
    image = bytes(4 * 4 * 3)
    return [
        (t + k * 0.5, InputImageRawFrame(image=image, size=(4, 4), format="RGB"))
        for k in range(int((end - t) / 0.5))
    ]


@pytest.mark.parametrize(
    ("media", "answer", "state"),
    [
        (camera(0.5), "Yes, your camera is on and I can see its picture.", "live"),
        (
            _dark_camera(0.5),
            "Your camera is on, but its picture looks dark, so I can't see you.",
            "dark",
        ),
        ([], "No, I can't see a camera right now.", "none"),
    ],
)
def test_can_you_see_me_is_answered_from_the_camera_not_by_the_model(gated, media, answer, state):
    # The 0.5B cannot see, and says "Yes, I can see you." on any call.
    model = Model()
    r = run(media + say(4.0, "Can you see me?"), model, until=8)
    assert model.user_turns == []
    assert r.spoken_texts() == [answer]
    assert r.of_kind("sight_asked")[0]["camera"] == state


def test_a_camera_that_stopped_is_not_seen(gated):
    # Images until 2 s, the question at 9 s: the camera is gone (no image for 5 s).
    r = run(camera(0.5, end=2.0) + say(9.0, "Are you able to see me right now?"), Model(), until=12)
    assert r.spoken_texts() == ["No, I can't see a camera right now."]
