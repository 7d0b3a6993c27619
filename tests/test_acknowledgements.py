"""Acknowledgement wording and the handled-turn record (pure, no event loop)."""

from __future__ import annotations

import pytest

from pipecat_tandem.frames import DeliveryPolicy
from pipecat_tandem.policy.acknowledgements import (
    NO_CAMERA,
    HandledTurns,
    InferenceVerdict,
    acknowledge,
    needs_video,
)
from pipecat_tandem.policy.interjections import (
    InterjectionSpec,
    parse_interjection,
    spoken_duration,
)

# (request, acknowledgement with the first opener): each restates the parsed request.
LABELED = [
    ("Tell me when ten seconds have passed.", "Okay, I'll tell you when ten seconds have passed."),
    ("tell me when 10 seconds have passed", "Okay, I'll tell you when ten seconds have passed."),
    ("ping me in 45s", "Okay, I'll tell you when forty-five seconds have passed."),
    ("let me know when a minute and a half has passed",
     "Okay, I'll tell you when one and a half minutes have passed."),
    ("remind me in two minutes to stretch", "Okay, I'll remind you to stretch in two minutes."),
    ("Remind me to drink water in 5 minutes",
     "Okay, I'll remind you to drink water in five minutes."),
    ("remind me in two and a half minutes to check the oven",
     "Okay, I'll remind you to check the oven in two and a half minutes."),
    ("set a timer for 1.5 minutes", "Okay, a timer for one and a half minutes, starting now."),
    ("every 30 seconds tell me the time", "Okay, I'll tell you every thirty seconds."),
    ("tell me when the screen changes", "Okay, I'll tell you when the view changes."),
    ("say something when I wave", "Okay, I'll tell you when I see you wave."),
    ("tell me whenever I stop moving", "Okay, I'll tell you every time you stop moving."),
    ("tell me when I stop talking", "Okay, I'll tell you when you stop talking."),
    ("count my squats", "Okay, I'll count your squats."),
    ("Count how many push-ups I do", "Okay, I'll count your push-ups."),
    ("stop counting", "Okay, I've stopped counting."),
    ("cancel the timer", "Okay, that's cancelled."),
]  # fmt: skip


@pytest.mark.parametrize(("request_text", "expected"), LABELED)
def test_acknowledgement_restates_what_was_parsed(request_text, expected):
    spec = parse_interjection(request_text)
    assert spec is not None
    assert acknowledge(spec) == expected


def test_acknowledgement_never_states_the_outcome():
    for request_text, _ in LABELED:
        text = acknowledge(parse_interjection(request_text))
        assert "have passed." not in text or "I'll tell you when" in text
        assert "is up" not in text


def test_openers_vary_but_are_deterministic():
    spec = parse_interjection("tell me when ten seconds have passed")
    texts = [acknowledge(spec, variant=i) for i in range(8)]
    assert len(set(texts)) == 4  # four openers, then they repeat
    assert texts[:4] == texts[4:]
    assert all(t.endswith("I'll tell you when ten seconds have passed.") for t in texts)


def test_the_numbers_come_from_the_request_not_a_phrase_table():
    for seconds in (7, 25, 90, 600):
        spec = InterjectionSpec(
            "timed", "x", DeliveryPolicy.INTERRUPT, delay=float(seconds), source="whatever"
        )
        assert spoken_duration(float(seconds)) in acknowledge(spec)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (1, "one second"),
        (10, "ten seconds"),
        (45, "forty-five seconds"),
        (60, "one minute"),
        (150, "two and a half minutes"),
        (3600, "an hour"),
        (4500, "seventy-five minutes"),
        (125, "125 seconds"),
        (0.5, "0.5 seconds"),
    ],
)
def test_spoken_duration(seconds, said):
    assert spoken_duration(float(seconds)) == said


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        acknowledge("tell me when ten seconds have passed")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        acknowledge(InterjectionSpec("timed", "x", DeliveryPolicy.INTERRUPT))
    with pytest.raises(ValueError):
        acknowledge(InterjectionSpec("cue", "x", DeliveryPolicy.INTERRUPT, cue_kind="smell"))


def test_which_requests_need_video():
    assert needs_video(parse_interjection("tell me when the screen changes"))
    assert needs_video(parse_interjection("count my squats"))
    assert needs_video(parse_interjection("say something when I wave"))
    assert not needs_video(parse_interjection("tell me when I stop talking"))
    assert not needs_video(parse_interjection("remind me in two minutes to stretch"))
    assert NO_CAMERA == "I can't see a camera right now."


ASK = "Tell me when ten seconds have passed."
ACK = "Okay, I'll tell you when ten seconds have passed."


def test_handled_turn_skips_its_inference_and_says_the_acknowledgement_once():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    assert turns.turn_written(ASK) == ""  # owed to the turn's inference
    assert turns.on_inference(ASK, speculative=False) == InferenceVerdict(True, ACK)
    # A later inference on the same context (a woven result) runs.
    assert turns.on_inference(ASK, speculative=False) == InferenceVerdict(False)
    assert not turns.pending


def test_a_turn_with_other_words_goes_to_the_model():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    written = f"{ASK} And what's the capital of Italy?"
    assert turns.turn_written(written) == ""
    assert turns.on_inference(written, speculative=False) == InferenceVerdict(False)
    assert not turns.pending


def test_two_handled_utterances_in_one_turn_are_both_acknowledged():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    turns.add("count my squats", "Sure, I'll count your squats.")
    written = f"{ASK} count my squats"
    turns.turn_written(written)
    verdict = turns.on_inference(written, speculative=False)
    assert verdict == InferenceVerdict(True, f"{ACK} Sure, I'll count your squats.")


def test_matching_ignores_case_and_punctuation_only():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    turns.turn_written("tell me when ten seconds have passed")
    assert turns.on_inference("Tell me, when ten seconds have passed!", speculative=False).skip


def test_speculative_inference_is_dropped_and_a_confirmed_turn_speaks_at_once():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    assert turns.on_inference(ASK, speculative=True) == InferenceVerdict(True)
    # Confirmed: pipecat writes the turn without another inference.
    assert turns.turn_written(ASK) == ACK
    assert turns.on_inference(ASK, speculative=False) == InferenceVerdict(False)


def test_inference_not_ending_with_the_user_runs():
    turns = HandledTurns()
    turns.add(ASK, ACK)
    turns.turn_written(ASK)
    assert turns.on_inference(None, speculative=False) == InferenceVerdict(False)


@pytest.mark.parametrize("bad", ["", "   ", "?!", None, 3])
def test_wordless_or_bad_text_is_never_recorded(bad):
    turns = HandledTurns()
    turns.add(bad, ACK)  # type: ignore[arg-type]
    assert not turns.pending
    assert turns.turn_written(bad) == ""  # type: ignore[arg-type]
    assert not turns.on_inference("", speculative=False).skip


def test_job_acknowledgement_says_the_work_started_never_an_answer():
    from pipecat_tandem.policy.acknowledgements import acknowledge_job

    texts = {
        reason: acknowledge_job(reason)
        for reason in ("arithmetic", "lookup", "planning", "reasoning", "", "unknown")
    }
    assert all(t.endswith(".") and "I'll" in t for t in texts.values())
    assert not any(ch.isdigit() for t in texts.values() for ch in t)
    assert len({texts["arithmetic"], texts["lookup"], texts["planning"]}) == 3
    openers = {acknowledge_job("arithmetic", variant=i).split()[0] for i in range(8)}
    assert len(openers) > 1  # a run of jobs does not sound canned


def test_words_with_nothing_of_their_own_transcribed_apart_keep_a_turn_handled():
    # "Actually..." and "Never mind" came as two transcriptions of one turn in a call.
    turns = HandledTurns()
    turns.add("Never mind", "Okay, I've stopped that.")
    written = "Actually... Never mind"
    turns.turn_written(written)
    assert turns.on_inference(written, speculative=False) == InferenceVerdict(
        True, "Okay, I've stopped that."
    )
    other = HandledTurns()
    other.add("Never mind", "Okay, I've stopped that.")
    other.turn_written("Never mind, tell me a joke")
    assert not other.on_inference("Never mind, tell me a joke", speculative=False).skip


def test_job_cancel_acknowledgement_says_it_stopped_never_that_it_is_done():
    from pipecat_tandem.policy.acknowledgements import acknowledge_job_cancel

    texts = {acknowledge_job_cancel(variant=i) for i in range(6)}
    assert len(texts) > 1 and all("stopped" in t or "dropped" in t for t in texts)
