"""Scripted conversations through the real tandem pipeline on virtual time."""

import pytest

from pipecat_tandem.errors import UnknownJobError
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, noise, run_scenario, say, weaving_responder
from tests.support.virtual_time import run_virtual


def delegate_arith(text):
    return text if ("times" in text or "plan" in text or "weather" in text) else None


def answer(task):
    if "times" in task:
        return FakeReply(text="7006652")
    if "plan" in task:
        return FakeReply(text="Day one: the Colosseum.")
    return FakeReply(text="Sunny, 21 degrees.")


def scenario(script, **kw):
    kw.setdefault("interaction", weaving_responder(delegate_arith))
    kw.setdefault("background", background_responder(answer))
    return run_virtual(run_scenario(script, **kw))


def assert_clean(r):
    m = r.metrics
    assert m.lost == 0 and m.repeated == 0 and m.deliveries_over_user == 0
    assert m.deliveries_over_bot == 0 and m.stale_read_as_current == 0
    return m


def test_result_delivered_when_idle_at_the_next_gap():
    r = scenario(say(1.0, "what is 1234 times 5678"), until=15)
    m = assert_clean(r)
    assert r.spoken_texts() == ["I'm on it.", "The answer is 7006652."]
    assert m.delivered_outputs == 1 and m.latency_p50_s == pytest.approx(0.0, abs=1e-6)


def test_result_ready_while_user_speaks_waits_for_turn_end_and_gap():
    # Background takes 2 s: ready at ~4.3 s, while the user talks from 4.0 to 7.0.
    r = scenario(
        say(1.0, "what is 1234 times 5678") + say(4.0, "and also tell me a story", 3.0), until=20
    )
    assert_clean(r)
    delivered = r.of_kind("delivered")[0]
    user_stop = [e["t"] for e in r.of_kind("user_stopped")][1]
    assert delivered["t"] >= user_stop + 0.5
    assert "The answer is 7006652." in r.spoken_texts()


def test_announcement_cut_off_by_user_is_delivered_again():
    r = scenario(say(1.0, "what is 1234 times 5678") + say(4.8, "wait", 0.5), until=20)
    m = assert_clean(r)
    cut = [u for u in r.output.spoken if u.interrupted]
    assert cut and cut[0].text.startswith("The answer is")
    assert m.redeliveries == 1
    assert r.spoken_texts()[-1] == "The answer is 7006652."
    # The cut-off message was taken out of the context, so the reply to "wait" did not
    # mention the result as well: it is heard in full exactly once.
    complete = [u.text for u in r.output.spoken if not u.interrupted and "7006652" in u.text]
    assert complete == ["The answer is 7006652."]


def test_cancellation_stops_the_work_in_flight():
    script = say(1.0, "what is 1234 times 5678") + say(2.5, "never mind", 0.5)
    r = scenario(script, background_delay_s=5.0, until=15)
    assert_clean(r)
    states = [(e["job_id"], e["state"]) for e in r.of_kind("job_state")]
    assert ("job-1", "cancelled") in states
    assert not r.of_kind("delivered") and not r.of_kind("result_ready")
    assert r.tandem.runner.active_job_ids == set()
    assert all("7006652" not in t for t in r.spoken_texts())


def test_two_concurrent_jobs_are_merged_into_one_delivery():
    # Both results become ready while the user is talking (4.0-6.5 s): one merged delivery.
    script = (
        say(1.0, "what is 1234 times 5678")
        + say(2.6, "and plan a day in Rome", 0.5)
        + say(4.0, "ok good", 2.5)
    )
    r = scenario(script, until=20)
    m = assert_clean(r)
    deliveries = r.of_kind("delivered")
    assert len(deliveries) == 1 and sorted(deliveries[0]["job_ids"]) == ["job-1", "job-2"]
    assert m.outputs == 2 and len(r.of_kind("merged")) == 1


def test_result_landing_mid_response_to_another_delegation_is_not_repeated():
    # Job 1 is ready at ~4.3 s, exactly while the model answers the second delegation.
    script = say(1.0, "what is 1234 times 5678") + say(3.0, "what's the weather in Paris", 1.0)
    r = scenario(script, until=25)
    m = assert_clean(r)
    spoken = " ".join(r.spoken_texts())
    assert spoken.count("7006652") == 1 and spoken.count("Sunny") == 1
    assert m.outputs == 2


def test_noise_without_words_does_not_hold_the_result_hostage():
    # pipecat ends a turn with no transcript after user_turn_stop_timeout (2 s in the
    # tandem builder); the result goes out at the gap after that, without further speech.
    r = scenario(say(1.0, "what is 1234 times 5678") + noise(4.2), until=15)
    assert_clean(r)
    delivered = r.of_kind("delivered")
    assert delivered and delivered[0]["t"] <= 4.2 + 0.4 + 2.0 + 0.5 + 0.05


def test_topic_change_makes_the_result_stale_and_it_is_offered_not_read():
    script = say(1.0, "plan a day in Rome") + say(
        3.5, "actually let's talk about something else", 0.5
    )
    r = scenario(script, background_delay_s=4.0, until=20)
    m = assert_clean(r)
    assert r.of_kind("delivered")[0]["delivery"] == "offered"
    assert "Colosseum" not in " ".join(r.spoken_texts())
    assert m.stale_read_as_current == 0


def test_background_failure_is_told_honestly_and_pipeline_goes_on():
    def boom(task):
        return FakeReply(raise_error=RuntimeError("model exploded"))

    script = say(1.0, "what is 1234 times 5678") + say(8.0, "hello again", 0.5)
    r = scenario(script, background=background_responder(boom), until=15)
    assert_clean(r)
    assert r.of_kind("failed")
    assert r.of_kind("delivered")[0]["delivery"] == "failure"
    assert "Sorry, that failed." in r.spoken_texts()
    assert r.spoken_texts()[-1] == "Sure."  # the conversation goes on


def test_background_timeout_fails_the_job():
    def hang(task):
        return FakeReply(hang=True)

    registry_kw = {
        "registry": __import__("pipecat_tandem.background.jobs", fromlist=["x"]).JobRegistry(
            default_deadline_s=5.0
        )
    }
    r = scenario(
        say(1.0, "what is 1234 times 5678"),
        background=background_responder(hang),
        until=15,
        **registry_kw,
    )
    assert_clean(r)
    failed = r.of_kind("failed")
    assert failed and "timed out" in failed[0]["error"]
    assert r.tandem.runner.active_job_ids == set()


def test_garbage_answer_fails_the_job():
    r = scenario(
        say(1.0, "what is 1234 times 5678"),
        background=background_responder(lambda t: FakeReply(text=" ...  ")),
        until=10,
    )
    assert "no usable answer" in r.of_kind("failed")[0]["error"]


def test_delegate_tool_refuses_empty_and_oversized_tasks_without_starting_jobs():
    def bad_task(text):
        return "" if "empty" in text else ("x" * 5000 if "huge" in text else None)

    interaction = weaving_responder(bad_task)
    r = scenario(
        say(1.0, "empty please") + say(4.0, "huge please"), interaction=interaction, until=10
    )
    assert not r.of_kind("delegated")
    tool_results = [m for m in r.tandem.context.get_messages() if m.get("role") == "tool"]
    assert len(tool_results) == 2 and all("error" in m["content"] for m in tool_results)


def test_python_api_cancel_unknown_job_and_session_end_cancels_jobs():
    errors = []

    async def cancel_unknown(tandem):
        try:
            await tandem.delegation.cancel("job-404")
        except UnknownJobError as e:
            errors.append(str(e))

    async def api_delegate(tandem):
        await tandem.delegation.delegate("what is 2 times 3")

    r = scenario(
        [], actions=[(0.5, cancel_unknown), (1.0, api_delegate)], background_delay_s=50.0, until=3.0
    )
    assert errors and "unknown job" in errors[0]
    states = [e for e in r.of_kind("job_state") if e["state"] == "cancelled"]
    assert states and states[0]["detail"] == "session ended"
    assert r.tandem.runner.active_job_ids == set()
    assert r.metrics.lost == 0


def test_router_delegates_for_models_that_do_not_call_tools():
    class Router:
        def route(self, text):
            return type("D", (), {"needs_background": "times" in text, "task": text})()

    r = scenario(say(1.0, "what is 1234 times 5678"), interaction=weaving_responder(lambda t: None),
                 router=Router(), until=15)  # fmt: skip
    assert_clean(r)
    assert r.of_kind("delegated") and "The answer is 7006652." in r.spoken_texts()
    users = [m["content"] for m in r.tandem.context.get_messages() if m.get("role") == "user"]
    assert "job-1 is working this out" in users[0] and users[0].startswith("what is 1234")


def test_delivery_cut_off_before_it_is_heard_is_taken_back_and_said_once():
    # The user barges in while the model is still composing the woven answer (4.31-4.61 s):
    # the delivery is retracted from the context, so the reply to the user does not carry
    # the result, and the redelivery says it once.
    r = scenario(say(1.0, "what is 1234 times 5678") + say(4.4, "wait", 0.5), until=20)
    assert_clean(r)
    said = [u.text for u in r.output.spoken if "7006652" in u.text]
    assert said == ["The answer is 7006652."]
    assert r.metrics.redeliveries == 1
