"""pipecat's release evals against the tandem: the adapter, tools and data (no models).

The full runs are ``benchmarks/bench_release_evals.py`` (minutes per scenario on
the embedded models; results in docs/benchmarks.md). Here, fast and
deterministic: the copied scenarios load in pipecat's own parser, the labeled
verdicts are balanced, the background tools answer as the scenarios assume, and
the adapter turns ``tandem-job`` messages into the events pipecat's matcher
expects, inside a real ``EvalEventStream``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipecat_tandem.bench.release_evals import tools as eval_tools
from pipecat_tandem.bench.release_evals.adapter import (
    TandemJobAdapter,
    adapt_stream,
    keep_job_messages,
)
from pipecat_tandem.bench.release_evals.judge import render_state
from pipecat_tandem.bench.release_evals.judge_accuracy import (
    HEARD_PATH,
    LABELS_PATH,
    load_cases,
    passes,
)
from pipecat_tandem.bench.release_evals.run import (
    ASYNC_SCENARIOS,
    CONTROL_SCENARIOS,
    SCENARIO_DIR,
    load_scenario,
)
from pipecat_tandem.bot_settings import DEFAULT_GREETING, BotSettings

ROOT = Path(__file__).resolve().parents[1]


def job(event: str, job_id: str = "job-1", **extra: object) -> dict:
    data = {"type": "tandem-job", "version": 1, "event": event, "job_id": job_id, "task": "t"}
    return {"label": "rtvi-ai", "type": "server-message", "data": {**data, **extra}}


@pytest.mark.parametrize("name", ASYNC_SCENARIOS + CONTROL_SCENARIOS)
def test_pipecats_scenarios_load_unedited_with_their_licence(name):
    scenario = load_scenario(name, ROOT)
    assert scenario.turns
    licence = (ROOT / SCENARIO_DIR.parent / "LICENSE").read_text()
    assert "BSD 2-Clause License" in licence and "Daily" in licence


def test_the_labeled_verdicts_are_enough_and_balanced():
    cases = load_cases(ROOT / LABELS_PATH)
    labels = [c.label for c in cases]
    assert len(cases) >= 40
    assert labels.count("yes") >= 15 and labels.count("no") >= 15
    assert set(labels) <= {"yes", "no", "continue"}


def test_a_continue_on_a_finished_no_is_a_fail_like_no_but_yes_is_exact():
    assert passes("continue", "no") and passes("no", "continue")
    assert not passes("continue", "yes") and not passes("yes", "no")


def test_the_judge_sees_the_conversation_and_what_it_judges():
    state = {
        "conversation": [
            {"speaker": "user", "text": "hi"},
            {"speaker": "bot", "turn": 1, "text": "yo"},
        ],
        "latest_bot_reply": "It is 75 degrees.",
    }
    text = render_state(state)
    assert "user: hi" in text and "bot (turn 1): yo" in text and "75 degrees" in text


def test_the_weather_tool_gives_75_fahrenheit_for_san_francisco(monkeypatch):
    monkeypatch.setattr(eval_tools, "WEATHER_DELAY_S", 0.0)
    weather, report = eval_tools.eval_tools()
    env = eval_tools.ToolEnv()
    out = weather.call({"location": "San Francisco, CA", "format": "fahrenheit"}, env)
    assert out["result"]["temperature"] == 75
    assert "error" in weather.call({"location": "Atlantis", "format": "celsius"}, env)
    assert "error" in report.call({"topic": " "}, env)


def test_tool_starts_map_to_function_calls_and_a_cancel_to_cancel_and_stopped():
    adapter = TandemJobAdapter()
    assert adapter.events(job("delegated")) == []
    call = adapter.events(job("progress", text='write_report {"topic": "sea turtles"}'))
    assert call == [
        {"type": "function_call", "name": "write_report", "args": {"topic": "sea turtles"}}
    ]
    # A tool's result note and the built-in tools are not the scenarios' calls.
    assert adapter.events(job("progress", text='write_report → {"result": 1}')) == []
    assert adapter.events(job("progress", text='calculator {"expression": "1+1"}')) == []
    assert [(e["type"], e["name"], e["args"]) for e in adapter.events(job("cancelled"))] == [
        ("function_call", "cancel_write_report", {"tool_call_id": "job-1"}),
        ("function_call_stopped", "write_report", {"tool_call_id": "job-1", "cancelled": True}),
    ]


def test_a_finished_call_stops_uncancelled_and_clipped_arguments_still_name_the_tool():
    adapter = TandemJobAdapter()
    (call,) = adapter.events(job("progress", "job-2", text='get_current_weather {"location": "S'))
    assert call["name"] == "get_current_weather" and call["args"] == {}
    assert adapter.events(job("result_ready", "job-2", text="75", final=False)) == []
    (stopped,) = adapter.events(job("result_ready", "job-2", text="75", final=True))
    assert stopped["args"] == {"tool_call_id": "job-2", "cancelled": False}
    assert adapter.events({"type": "server-message", "data": "not a dict"}) == []
    assert adapter.events("garbage") == []


async def test_the_adapter_feeds_pipecats_matcher_through_a_real_event_stream():
    from pipecat.evals.events import EvalEventStream
    from pipecat.evals.results import EvalTrace
    from pipecat.evals.serializer import EvalClientSerializer
    from pipecat.frames.frames import InputTransportMessageFrame

    stream = EvalEventStream(bot_audio=False, trace=EvalTrace())
    adapt_stream(stream, TandemJobAdapter())
    serializer = EvalClientSerializer()
    keep_job_messages(serializer)
    wire = job("progress", text='get_current_weather {"location": "San Francisco"}')
    frame = await serializer.deserialize(json.dumps(wire))
    assert isinstance(frame, InputTransportMessageFrame)
    other = {"label": "rtvi-ai", "type": "server-message", "data": {"type": "x"}}
    assert await serializer.deserialize(json.dumps(other)) is None
    event = stream.frame_to_event(frame)
    assert event is not None
    await stream.append(event)
    got = await stream.next_event("function_call", deadline=_soon(), since=0)
    assert got["name"] == "get_current_weather"


def _soon() -> float:
    import time

    return time.monotonic() + 2.0


def test_the_greeting_is_off_by_default_and_on_with_1_or_an_instruction():
    assert BotSettings.from_env({}).greeting is None
    assert BotSettings.from_env({"TANDEM_BOT_GREETING": "0"}).greeting is None
    assert BotSettings.from_env({"TANDEM_BOT_GREETING": "1"}).greeting == DEFAULT_GREETING
    said = BotSettings.from_env({"TANDEM_BOT_GREETING": "Say ahoy."}).greeting
    assert said == "Say ahoy."


def test_the_labels_file_is_one_json_object_a_line():
    for line in (ROOT / LABELS_PATH).read_text().splitlines():
        assert set(json.loads(line)) == {"criterion", "user_turns", "reply", "label"}


def test_the_judge_gets_the_criterion_on_its_own_without_the_harness_notes():
    from pipecat_tandem.bench.release_evals.judge import split_criterion

    question, criterion = split_criterion(
        "Does `latest_bot_reply` satisfy this criterion? Criterion: tells a joke. "
        "The bot's text may be an automatic speech-to-text transcription: judge its meaning."
    )
    assert question.startswith("Does") and criterion == "tells a joke."
    assert split_criterion("no criterion here") == ("no criterion here", "")


async def test_the_rule_judge_agrees_with_every_labeled_verdict_through_pipecats_judge():
    # Optimistic (the rules were written after the labels, by the same person),
    # but it pins the rules: a change that breaks a labeled verdict fails here.
    from pipecat_tandem.bench.release_evals.judge_accuracy import measure
    from pipecat_tandem.bench.release_evals.rule_judge import RuleJudgeClassifier

    result = await measure(load_cases(ROOT / LABELS_PATH), RuleJudgeClassifier())
    assert result["pass_fail_agree"] == result["cases"], result["wrong"]


def test_the_heard_replies_are_many_real_and_labeled_all_three_ways():
    rows = [json.loads(line) for line in (ROOT / HEARD_PATH).read_text().splitlines()]
    assert len(rows) >= 150
    for row in rows:
        assert set(row) == {"scenario", "criterion", "user_turns", "reply", "label", "why"}
        assert row["label"] in {"yes", "no", "continue"} and row["reply"].strip()
    labels = [row["label"] for row in rows]
    assert min(labels.count(k) for k in ("yes", "no", "continue")) >= 20


async def test_the_rule_judge_agrees_with_the_second_labeler_on_every_heard_reply():
    # The first 194: 189 before the two rules below were mended on what it got
    # wrong. The last 32, from later runs and labeled after the mending, are the
    # held-out measure: 32 of 32 (docs/benchmarks.md).
    from pipecat_tandem.bench.release_evals.judge_accuracy import measure
    from pipecat_tandem.bench.release_evals.rule_judge import RuleJudgeClassifier

    result = await measure(load_cases(ROOT / HEARD_PATH), RuleJudgeClassifier())
    assert result["pass_fail_agree"] == result["cases"], result["wrong"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("It's 75 degrees and sunny.", "yes"),
        ("Seventy-five degrees and clear.", "yes"),
        ("San Francisco is sunny. It's 75 degrees Fahrenheit there.", "yes"),
        ("In San Francisco, the temperature is currently 75 degrees.", "yes"),
        # The result garbled onto something else: 75 of no weather.
        ("The user is looking at their height, which is 75 degrees Fahrenheit.", "no"),
        ("The user is looking at their height. which is 75 degrees Fahrenheit.", "no"),
        ("It is 24 degrees Celsius in London.", "no"),
    ],
)
def test_the_weather_reading_is_75_said_of_the_weather(reply, expected):
    from pipecat_tandem.bench.release_evals.rule_judge import verdict

    criterion = "informs that the weather in San Francisco is 75 degrees"
    assert verdict(criterion, reply, ["yes", "no"]) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # The setup went before, in a stretch of speech of its own.
        ("because it wanted to get to the other side. It's 75 degrees in San Francisco.", "yes"),
        ("Because it wanted to get to the other side.", "continue"),
        ("It's 75 degrees in San Francisco, because it is summer.", "no"),
        ("Why did the tomato turn red? The user is looking at their height, 75 degrees.", "no"),
    ],
)
def test_a_reply_that_opens_on_the_punchline_has_told_the_joke(reply, expected):
    from pipecat_tandem.bench.release_evals.rule_judge import verdict

    criterion = "first, tells a joke, then informs that the weather in San Francisco is 75 degrees"
    assert verdict(criterion, reply) == expected


async def test_a_judge_keeps_every_reply_it_judged_for_a_labeler():
    from pipecat.evals.judge import EvalJudge

    from pipecat_tandem.bench.release_evals.rule_judge import RuleJudgeClassifier

    classifier = RuleJudgeClassifier()
    judge = EvalJudge(classifier, explainer=None)
    judge.add_user_message("Tell me a joke.")
    judge.add_assistant_message("Why did the tomato turn red? It saw the salad dressing.")
    assert (await judge.evaluate("tells a joke")).verdict == "yes"
    judge.add_user_message("And the capital of Japan?")
    judge.add_assistant_message("Paris.")
    assert (await judge.evaluate("the capital of Japan is Tokyo")).verdict == "no"
    first, second = classifier.judged
    assert first["criterion"] == "tells a joke" and first["verdict"] == "yes"
    assert first["user_turns"] == ["Tell me a joke."]
    assert second["reply"] == "Paris." and second["verdict"] == "no"
    assert second["user_turns"] == ["Tell me a joke.", "And the capital of Japan?"]
    assert [e["speaker"] for e in second["conversation"]] == ["user", "bot", "user"]


def test_the_rule_judge_refuses_a_criterion_it_has_no_rule_for():
    from pipecat.classifiers.base_classifier import ClassifierError

    from pipecat_tandem.bench.release_evals.rule_judge import verdict

    with pytest.raises(ClassifierError):
        verdict("orders a pizza with extra cheese", "One pizza, extra cheese.")
    assert verdict("tells a joke", "Let me think of one.") == "continue"
    assert verdict("tells a joke", "Let me think of one.", ["yes", "no"]) == "no"


def test_only_the_scenarios_that_wait_for_a_greeting_get_one():
    # interruption_audio opens with the user speaking: a greeting there raced its first
    # turn (send_after llm_started + 2 s fired on the greeting's llm_started).
    from pipecat_tandem.bench.release_evals.run import (
        ASYNC_SCENARIOS,
        CONTROL_SCENARIOS,
        expects_greeting,
        load_scenario,
    )

    greets = {
        n: expects_greeting(load_scenario(n, ROOT)) for n in ASYNC_SCENARIOS + CONTROL_SCENARIOS
    }
    assert greets.pop("interruption_audio") is False
    assert all(greets.values()), greets


def test_reply_waits_run_from_the_users_last_word_to_the_bots_first_reply():
    from pipecat_tandem.bench.release_evals.run import reply_waits

    log = [
        "   0.146  [ t1]  send: 'Write me a report about sea turtles.' (text)",
        "   0.172  [ t1]  event: llm_started",
        "   0.432  [ t1]  event: llm_response  'On it.'",
        "   1.725  [ t2]  send_after: waiting 3000ms",
        '  22.986  [ t3]  send: "Actually, I\'ve changed my mind." (audio)',
        "  23.382  [ t3]  event: user_started_speaking",
        "  23.382  [ t3]  event: bot_stopped_speaking",
        "  29.699  [ t3]  event: user_stopped_speaking",
        "  30.007  [ t3]  event: bot_started_speaking",
        "  31.081  [ t3]  event: llm_response  'Oh, I see.'",
        "  33.969  [ t3]  event: bot_started_speaking",
        "not a line of the log",
    ]
    # t2 never spoke: no wait. t3 is timed from the end of the user's speech.
    assert reply_waits(log) == {"t1": 0.286, "t3": 0.308}
    assert reply_waits([]) == {}
