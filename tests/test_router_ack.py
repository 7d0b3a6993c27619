"""Jobs the router starts are acknowledged by the machinery, at once, without the model.

In a real call the 0.5B took 11 s to say "On it." after the router had already
started the job: it wrote a second ``delegate`` call, which was dropped, then ran
again without tools. The awareness gate now answers such a turn itself, like a
timer request, and the model never runs on it. Real pipecat frames through the
product's pipeline builder on virtual time.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import TranscriptionFrame, VADUserStoppedSpeakingFrame

from pipecat_tandem.policy.acknowledgements import acknowledge_job
from pipecat_tandem.policy.routing import RuleRouter
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, run_scenario, say
from tests.support.virtual_time import run_virtual


class Model:
    """Records the user turns it is asked about; guesses answers like a small model."""

    def __init__(self) -> None:
        self.user_turns: list[str] = []

    def __call__(self, messages: list[dict[str, Any]]) -> FakeReply:
        last = messages[-1] if messages else {}
        if last.get("role") == "user":
            self.user_turns.append(str(last.get("content")))
            return FakeReply(text="It is 42.")  # a guess: must never be spoken for a job
        if last.get("role") == "developer" and "5040" in str(last.get("content")):
            return FakeReply(text="There are 5040 minutes in three and a half days.")
        return FakeReply(text="Sure.")


def run(script, model, **kw):
    background = background_responder(lambda task: FakeReply(text="5040 minutes."))
    return run_virtual(
        run_scenario(script, interaction=model, background=background, router=RuleRouter(), **kw)
    )


def test_a_routed_job_is_acknowledged_at_once_and_the_model_does_not_guess():
    model = Model()
    task = "How many minutes are there in three and a half days?"
    r = run(say(1.0, task), model, until=12)
    asked_at = r.of_kind("transcript")[0]["t"]
    spoken = [(u.start, u.text) for u in r.output.spoken]
    assert spoken[0][1] == acknowledge_job(RuleRouter().route(task).reason)
    assert spoken[0][0] - asked_at < 0.5  # no model run stands between
    assert model.user_turns == []  # the model never ran on the request turn
    assert all("42" not in text for _, text in spoken)
    assert any("5040" in text for _, text in spoken[1:])  # the answer comes later
    acks = r.of_kind("acknowledged")
    assert len(acks) == 1 and acks[0]["job_id"] == r.of_kind("delegated")[0]["job_id"]


def test_the_context_shows_the_acknowledgement_as_the_assistants_reply():
    r = run(say(1.0, "Please work out 1234 times 5678."), Model(), until=2.5)
    messages = [
        m for m in r.tandem.context.get_messages() if m.get("role") in ("user", "assistant")
    ]
    assert messages[-1] == {"role": "assistant", "content": acknowledge_job("arithmetic")}
    assert messages[-2]["role"] == "user" and "1234 times 5678" in messages[-2]["content"]


def test_a_turn_with_other_words_too_still_reaches_the_model():
    model = Model()
    script = [
        (1.0, TranscriptionFrame(text="What is the capital of Italy?", user_id="u", timestamp="")),
    ] + say(1.5, "And please work out 1234 times 5678.")
    run(script, model, until=4)
    # The model answers the turn, told in the user's own words that a job is running.
    assert len(model.user_turns) == 1
    assert "Italy" in model.user_turns[0] and "Background job" in model.user_turns[0]


def test_chat_is_not_acknowledged_as_a_job():
    model = Model()
    r = run(say(1.0, "How many days are in a week?"), model, until=3)
    assert r.of_kind("delegated") == [] and r.of_kind("acknowledged") == []
    assert model.user_turns == ["How many days are in a week?"]


def test_a_timer_counts_from_the_end_of_the_users_voice_not_the_transcript():
    # The VAD is sure the voice ended 0.2 s after it did; the transcript comes 0.4 s later.
    script = [
        (1.2, VADUserStoppedSpeakingFrame(stop_secs=0.2)),
    ] + say(0.0, "Tell me when ten seconds have passed.", duration=1.6)
    r = run(script, Model(), until=14)
    fired = [u.start for u in r.output.spoken if u.text == "10 seconds have passed."]
    assert len(fired) == 1
    # Voice ended at 1.0 s; the transcript came at 1.6 s. The fake TTS speaks at once,
    # so the announcement shows its release: 0.4 s (speak_lead_s) before it is due,
    # which is what lands a real call's voice on time at the caller.
    assert abs(fired[0] - (11.0 - 0.4)) <= 0.25


def test_a_refused_task_is_said_to_be_refused_not_guessed_at():
    from pipecat_tandem.policy.job_limits import JobLimits

    model = Model()
    script = say(1.0, "Please work out 1234 times 5678.") + say(
        3.0, "How many days are there from the second of December to the eighteenth of January?"
    )
    r = run(script, model, until=5, job_limits=JobLimits(max_running=1))
    assert len(r.of_kind("delegated")) == 1
    spoken = r.spoken_texts()
    assert spoken[-1].startswith("Sorry, I can't take that on right now: too many tasks")
    assert model.user_turns == []  # no guess at the refused task either


def test_mental_arithmetic_stays_with_the_interaction_model():
    router = RuleRouter()
    for text in ("Stop. What is two plus two?", "What is 7 times 8?", "what's nine minus three"):
        assert not router.route(text).needs_background, text
    for text in ("What is thirteen times fourteen?", "What is 2 plus 2 plus 2 times 9?"):
        assert router.route(text).needs_background, text


def test_a_turn_that_only_cancels_a_job_is_acknowledged_by_the_machinery():
    from pipecat_tandem.policy.acknowledgements import acknowledge_job_cancel

    model = Model()
    script = say(1.0, "Please work out 1234 times 5678.") + say(3.0, "Actually, never mind.")
    r = run(script, model, until=6)
    assert [e["state"] for e in r.of_kind("job_state") if e["state"] == "cancelled"] == [
        "cancelled"
    ]
    spoken = r.spoken_texts()
    assert spoken[-1] in {acknowledge_job_cancel(variant=i) for i in range(3)}
    assert model.user_turns == []  # neither turn went to the model
    assert all("5040" not in text and "42" not in text for text in spoken)


def test_a_cancel_with_a_new_request_leaves_the_request_to_the_model():
    model = Model()
    script = say(1.0, "Please work out 1234 times 5678.") + say(
        3.0, "Never mind. Tell me a joke instead."
    )
    r = run(script, model, until=6)
    assert any(e["state"] == "cancelled" for e in r.of_kind("job_state"))
    assert len(model.user_turns) == 1 and "joke" in model.user_turns[0]
