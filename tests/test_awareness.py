"""Time and cue awareness through the real tandem pipeline, on virtual time."""

import pytest
from pipecat.frames.frames import InputImageRawFrame

from pipecat_tandem.frames import CueFrame
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, run_scenario, say, weaving_responder
from tests.support.virtual_time import run_virtual

MICRO_TURN_S = 0.2


def run(script, **kw):
    kw.setdefault("interaction", weaving_responder(lambda text: None))
    kw.setdefault("background", background_responder(lambda task: FakeReply(text="x")))
    return run_virtual(run_scenario(script, **kw))


def camera(t, end=20.0):
    """A lit camera, two images a second from ``t`` to ``end``.

    Watches that need video are refused without one, and a watch whose camera sends
    nothing for camera_timeout_s is told that it was lost.
    """
    image = bytes([128]) * (4 * 4 * 3)
    return [
        (t + k * 0.5, InputImageRawFrame(image=image, size=(4, 4), format="RGB"))
        for k in range(int((end - t) / 0.5))
    ]


def spoken_at(r, text):
    return [u.start for u in r.output.spoken if u.text == text]


#: A timed announcement is released this early, so that its voice reaches the caller
#: at the due time (AwarenessProcessor's speak_lead_s default).
SPEAK_LEAD_S = 0.4


def test_timed_interjection_fires_within_one_micro_turn_without_user_speaking_first():
    r = run(say(1.0, "tell me when thirty seconds have passed"), until=40)
    target = [e for e in r.events if e["kind"] == "transcript"][0]["t"] + 30.0
    delivered = [e for e in r.events if e["kind"] == "delivered"]
    assert len(delivered) == 1 and delivered[0]["mode"] == "verbatim"
    # Released speak_lead_s ahead: a real caller heard the voice start 0.55 s late
    # when it was released at the due time (docs/bench/cues-caller-section.md).
    assert abs(delivered[0]["t"] - (target - SPEAK_LEAD_S)) <= MICRO_TURN_S
    assert spoken_at(r, "30 seconds have passed.")  # spoken exactly, not reworded
    assert [e["t"] for e in r.events if e["kind"] == "user_started"] == [1.0]
    assert r.metrics.lost == 0 and r.metrics.deliveries_over_user == 0


def test_timed_interjection_never_speaks_over_the_user():
    # The user is talking at the target time (31.5-34 s): it waits for the turn to end.
    r = run(
        say(1.0, "tell me when thirty seconds have passed") + say(31.5, "hold on a second", 2.5),
        until=45,
    )
    d = [e for e in r.events if e["kind"] == "delivered"][-1]
    stop = [e["t"] for e in r.events if e["kind"] == "user_stopped"][-1]
    assert d["t"] >= stop and r.metrics.deliveries_over_user == 0


def test_cue_triggered_interjection_is_spoken_soon_after_the_cue():
    script = (
        camera(0.5)
        + say(1.0, "tell me when the screen changes")
        + [(10.0, CueFrame(kind="visual_change", time=10.0, value=0.9))]
    )
    r = run(script, until=15)
    d = [e for e in r.events if e["kind"] == "delivered"]
    assert len(d) == 1 and 10.0 <= d[0]["t"] <= 10.0 + 2 * MICRO_TURN_S
    assert spoken_at(r, "The view just changed.")


def test_repetition_count_is_spoken_as_it_grows_and_stops_on_request():
    script = camera(0.5) + say(1.0, "count my squats")
    for i, t in enumerate([5.0, 7.0, 9.0], start=1):
        script.append((t, CueFrame(kind="repetition", time=t, value=float(i))))
    script += say(10.0, "stop counting", 0.5)
    script.append((12.0, CueFrame(kind="repetition", time=12.0, value=4.0)))
    r = run(script, until=16)
    texts = r.spoken_texts()
    assert [t for t in texts if t in ("One.", "Two.", "Three.", "Four.")] == [
        "One.",
        "Two.",
        "Three.",
    ]
    states = [e["state"] for e in r.events if e["kind"] == "job_state"]
    assert "cancelled" in states and r.metrics.lost == 0


def test_now_view_is_refreshed_not_accumulated():
    r = run(say(1.0, "hello there") + say(5.0, "how long have I been quiet"), until=10)
    now_msgs = [
        m for m in r.tandem.context.get_messages() if str(m.get("content", "")).startswith("[now ")
    ]
    assert len(now_msgs) == 1 and "user" in now_msgs[0]["content"]


def test_interjection_is_not_also_routed_to_the_background():
    class Router:
        def route(self, text):
            return type("D", (), {"needs_background": True, "task": text})()

    r = run(say(1.0, "remind me in two minutes to stretch"), router=Router(), until=5)
    delegated = [e for e in r.events if e["kind"] == "delegated"]
    assert len(delegated) == 1 and delegated[0].get("interjection") == "timed"


@pytest.mark.parametrize(
    "text", ["", "tell me when", "remind me in minus five minutes", "count", "x" * 5000]
)
def test_unparseable_requests_start_nothing(text):
    r = run(say(1.0, text or "   "), until=4)
    assert not [e for e in r.events if e["kind"] == "delegated"]


def test_sparse_now_view_is_shown_only_while_a_job_runs():
    # A local model pays for the view's tokens every turn: chit-chat goes without it.
    from pipecat_tandem.policy.now_view import NowView, is_now_message

    seen: list[list[str]] = []
    weave = weaving_responder(lambda text: "weather in Paris" if "weather" in text else None)

    def interaction(messages):
        if messages and messages[-1].get("role") == "user":
            seen.append([m["content"] for m in messages if is_now_message(m)])
        return weave(messages)

    r = run(
        say(1.0, "hello there")
        + say(4.0, "what is the weather in Paris")
        + say(6.0, "and how are you")
        + say(16.0, "ok thanks"),
        interaction=interaction,
        background_delay_s=4.0,
        now_view=NowView(only_when_informative=True),
        until=20,
    )
    assert len(seen) == 4
    hello, weather, during_job, after_job = seen
    assert hello == [] and weather == []
    assert len(during_job) == 1 and "weather in Paris" in during_job[0]
    assert after_job == []
    assert not [m for m in r.tandem.context.get_messages() if is_now_message(m)]
    assert r.metrics.lost == 0
