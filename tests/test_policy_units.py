"""Unit tests of the plain policy classes (no event loop)."""

import pytest

from pipecat_tandem.background.jobs import JobRegistry, content_words
from pipecat_tandem.errors import DelegationError, JobStateError, UnknownJobError
from pipecat_tandem.frames import DeliveryPolicy, JobState
from pipecat_tandem.policy.delivery import DeliveryScheduler
from pipecat_tandem.policy.topic import (
    TopicTracker,
    called_off,
    cancel_only,
    is_pastime,
    without_retracted,
)
from pipecat_tandem.turns.gap import GapDetector

# --- GapDetector ---------------------------------------------------------------------------


def test_gap_needs_min_quiet_after_user_and_bot():
    gap = GapDetector(min_gap_s=0.5)
    gap.user_started(1.0)
    assert not gap.is_gap(1.2)
    gap.user_stopped(2.0)
    assert not gap.is_gap(2.49)
    assert gap.is_gap(2.5)
    gap.bot_started(2.6)
    assert not gap.is_gap(10.0)
    gap.bot_stopped(3.0)
    assert gap.gap_opens_at() == 3.5


def test_gap_response_in_flight_blocks_and_stop_without_start_is_harmless():
    gap = GapDetector(min_gap_s=0.2)
    gap.bot_stopped(1.0)  # out of order: a stop with no start
    gap.user_stopped(1.0)
    assert gap.is_gap(1.2)
    gap.response_started(1.3)
    assert not gap.is_gap(5.0)
    gap.response_ended(5.0)
    assert gap.is_gap(5.2)


def test_gap_rejects_negative_gap():
    with pytest.raises(ValueError):
        GapDetector(min_gap_s=-1)


# --- DeliveryScheduler ---------------------------------------------------------------------


def _sched(**kw):
    return DeliveryScheduler(min_gap_s=0.5, **kw)


def test_result_waits_for_user_and_gap_then_delivers_once():
    s = _sched()
    s.user_started(0.0)
    s.add(job_id="j1", text="42", now=0.5, task="meaning")
    assert s.poll(0.6) is None
    s.user_stopped(1.0)
    assert s.poll(1.4) is None
    assert s.next_wakeup(1.4) == pytest.approx(1.5)
    d = s.poll(1.5)
    assert d is not None and d.mode == "weave" and d.kind == "delivered" and "42" in d.text
    assert s.poll(1.6) is None
    s.bot_started(1.8)
    s.bot_stopped(2.5)
    assert s.status["j1#1"] == "delivered"
    assert [e["kind"] for e in s.drain_events()] == ["confirmed"]


def test_never_delivers_while_bot_speaks_under_when_idle():
    s = _sched()
    s.bot_started(0.0)
    s.add(job_id="j1", text="x", now=0.1)
    assert s.poll(5.0) is None
    s.bot_stopped(5.0)
    assert s.poll(5.4) is None
    assert s.poll(5.5) is not None


def test_two_ready_results_merge_into_one_delivery():
    s = _sched()
    s.add(job_id="a", text="1", now=1.0, task="A")
    s.add(job_id="b", text="2", now=1.0, task="B")
    d = s.poll(1.0)
    assert d is not None and d.job_ids == ["a", "b"]
    s.bot_started(1.2)
    s.bot_stopped(2.0)
    assert s.status == {"a#1": "delivered", "b#1": "merged"}


def test_cut_off_delivery_is_redelivered_then_given_up():
    s = _sched(max_redeliveries=1)
    s.add(job_id="a", text="1", now=0.0)
    assert s.poll(0.5).kind == "delivered"
    s.bot_started(0.6)
    s.user_started(0.8)  # barge-in
    s.bot_stopped(0.8)
    assert s.status["a#1"] == "pending"
    s.user_stopped(1.5)
    d = s.poll(2.0)
    assert d is not None and d.kind == "redelivered" and "cut off" in d.text
    s.bot_started(2.1)
    s.user_started(2.2)  # cut off again: retries exhausted, kept in the context instead
    s.user_stopped(3.0)
    d = s.poll(3.0)
    assert d is not None and d.mode == "silent" and d.kind == "into_context"
    assert s.status["a#1"] == "into_context"
    assert s.poll(10.0) is None


def test_partial_superseded_by_final_and_second_final_ignored():
    s = _sched()
    s.user_started(0.0)
    s.add(job_id="a", text="half", now=0.1, is_final=False)
    s.add(job_id="a", text="full", now=0.2)
    assert s.status["a#1"] == "merged"
    assert s.add(job_id="a", text="again", now=0.3) is None
    s.user_stopped(1.0)
    d = s.poll(1.5)
    assert d is not None and [i.text for i in d.items] == ["full"]


def test_stale_results_are_offered_or_dropped():
    s = _sched()
    s.add(job_id="a", text="1", now=0.0, stale=True, task="the weather")
    d = s.poll(0.5)
    assert d.kind == "offered" and "do NOT read it out" in d.text
    s2 = _sched(stale_mode="drop")
    s2.add(job_id="a", text="1", now=0.0, task="x")
    s2.mark_stale("a", 0.1)
    assert s2.poll(0.5) is None
    assert s2.status["a#1"] == "dropped_stale"


def test_cancelled_job_pending_result_is_dropped_and_never_delivered():
    s = _sched()
    s.user_started(0.0)
    s.add(job_id="a", text="1", now=0.1)
    s.drop_job("a", 0.2)
    s.user_stopped(0.5)
    assert s.poll(5.0) is None and s.status["a#1"] == "dropped_stale"
    assert s.add(job_id="a", text="late", now=1.0) is None


def test_interrupt_policy_goes_over_bot_but_never_over_user():
    s = _sched()
    s.bot_started(0.0)
    s.user_started(0.1)
    s.add(job_id="u", text="fire", now=0.2, policy=DeliveryPolicy.INTERRUPT)
    assert s.poll(0.3) is None
    s.user_stopped(0.4)
    d = s.poll(0.4)
    assert d is not None and d.interrupt_bot


def test_silent_goes_into_context_without_waiting_for_gap():
    s = _sched()
    s.bot_started(0.0)
    s.add(job_id="s", text="note", now=0.1, policy=DeliveryPolicy.SILENT)
    d = s.poll(0.1)
    assert d.mode == "silent" and s.status["s#1"] == "delivered"


def test_unspoken_delivery_confirmed_after_timeout_and_close_settles_all():
    s = _sched(confirm_timeout_s=2.0)
    s.add(job_id="a", text="1", now=0.0)
    s.poll(0.5)
    assert s.next_wakeup(0.6) == pytest.approx(2.5)
    s.add(job_id="b", text="2", now=1.0)
    assert s.poll(1.0) is None  # one spoken delivery in flight at a time
    s.poll(2.5)
    assert s.status["a#1"] == "delivered"
    s.user_started(2.6)
    s.close(3.0)
    assert s.status["b#1"] == "dropped_session_end"


def test_verbatim_wording_and_failure_wording():
    s = _sched(verbatim=True)
    s.add(job_id="a", text="it timed out after 5 s", now=0.0, kind="failure", task="the plan")
    d = s.poll(0.5)
    assert d.mode == "verbatim" and d.kind == "failure"
    assert d.text.startswith("Sorry, I couldn't work out the plan")


def test_scheduler_rejects_bad_config():
    with pytest.raises(ValueError):
        DeliveryScheduler(stale_mode="shout")
    with pytest.raises(ValueError):
        DeliveryScheduler(confirm_timeout_s=0)


# --- JobRegistry ---------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["", "   ", None, 42, ["x"]])
def test_registry_refuses_empty_or_non_text_task(task):
    with pytest.raises(DelegationError):
        JobRegistry().create(task, now=0.0)


def test_registry_refuses_oversized_task_bad_policy_and_deadline():
    r = JobRegistry(max_task_chars=10)
    with pytest.raises(DelegationError, match="too long"):
        r.create("x" * 11, now=0)
    with pytest.raises(DelegationError, match="unknown delivery policy"):
        r.create("ok", now=0, policy="loudly")
    with pytest.raises(DelegationError, match="deadline"):
        r.create("ok", now=0, deadline_s=-1)
    assert r.jobs == []


def test_registry_limits_in_flight_and_lifecycle():
    r = JobRegistry(max_in_flight=2)
    a = r.create("task a", now=0)
    r.create("task b", now=0)
    with pytest.raises(DelegationError, match="too many"):
        r.create("task c", now=0)
    assert r.transition(a.job_id, JobState.RUNNING, now=1)
    assert r.transition(a.job_id, JobState.DONE, now=2)
    assert not r.transition(a.job_id, JobState.FAILED, now=3)  # ends only once
    assert r.get(a.job_id).state is JobState.DONE
    with pytest.raises(UnknownJobError, match="unknown job"):
        r.get("job-99")
    with pytest.raises(JobStateError):
        r.add_follow_up(a.job_id, "more")
    b = r.active()[0]
    with pytest.raises(JobStateError):
        r.transition(b.job_id, JobState.QUEUED, now=4)


def test_registry_duplicate_guard_and_follow_ups():
    r = JobRegistry()
    a = r.create("what is 1234 times 5678", now=0)
    assert r.find_similar_active("1234 times 5678 please", now=5, within_s=30) is a
    assert r.find_similar_active("plan a trip to Rome", now=5, within_s=30) is None
    assert r.find_similar_active("what is 1234 times 5678", now=50, within_s=30) is None
    r.add_follow_up(a.job_id, "and round it")
    assert "round" in r.get(a.job_id).keywords
    with pytest.raises(DelegationError):
        r.add_follow_up(a.job_id, "")


def test_content_words_drop_stop_words():
    assert content_words("What is the weather in Paris?") == {"weather", "paris"}


# --- TopicTracker --------------------------------------------------------------------------


def test_topic_cancellation_and_moving_on():
    r = JobRegistry()
    job = r.create("find the opening hours of the British Museum", now=0)
    t = TopicTracker()
    assert t.observe("never mind", r.active()).cancel == [job.job_id]
    assert t.observe("ok thanks", r.active()).stale == []
    assert t.observe("which city has the best museums", r.active()).stale == []
    assert t.observe("what's a good recipe for pancakes", r.active()).stale == [job.job_id]


def test_a_turn_that_only_cancels_is_told_apart_from_one_asking_more():
    r = JobRegistry()
    r.create("write a report about sea turtles", now=0)
    active = r.active()
    for only in (
        "Actually, never mind.",
        "Never mind",
        "Never mind the sea turtle report.",
        "No, cancel that. Thanks.",
        "Okay, don't bother.",
    ):
        assert cancel_only(only, active), only
    for more in (
        "Never mind. Tell me a joke instead.",
        "Never mind, what's the capital of Spain?",
        "Forget the report and find the opening hours of the museum.",
        "What is the capital of Spain?",  # no cancel at all
        "",
    ):
        assert not cancel_only(more, active), more


def test_topic_waiting_room_talk_is_not_moving_away():
    # pipecat's async_tool_deferred_delivery_audio: a story and a joke while the weather
    # is looked up made the look-up stale, and the answer was offered instead of said.
    r = JobRegistry()
    job = r.create("what's the weather in San Francisco? Use Fahrenheit.", now=0)
    t = TopicTracker()
    for utterance in (
        "Tell me a short story about a sea turtle.",
        "Actually, I've changed my mind. Tell me a joke instead.",
        "Do you know any good riddles?",
        "sing me a song about the ocean",
    ):
        verdict = t.observe(utterance, r.active())
        assert verdict.stale == [] and verdict.cancel == [], utterance
    # A pastime neither resets the count: two real topics in between still move away.
    assert t.observe("what's a good recipe for pancakes", r.active()).stale == []
    assert t.observe("tell me a joke about pancakes", r.active()).stale == []
    assert t.observe("how long should the batter rest", r.active()).stale == [job.job_id]


def test_topic_a_pastime_with_a_switch_or_cancel_still_counts():
    r = JobRegistry()
    job = r.create("opening hours of the British Museum", now=0)
    t = TopicTracker()
    verdict = t.observe("let's talk about something else, tell me a joke", r.active())
    assert verdict.stale == [job.job_id]
    other = r.create("weather in Paris", now=1)
    verdict = t.observe("never mind the weather. Tell me a joke instead.", r.active())
    assert verdict.cancel == [other.job_id]


@pytest.mark.parametrize(
    ("utterance", "pastime"),
    [
        ("Tell me a short story about a sea turtle.", True),
        ("Actually, tell me a joke instead.", True),
        ("make me laugh", True),
        ("Write me a report about sea turtles.", False),
        ("tell me the story of the Roman empire in detail", False),
        ("Can you tell me what the capital of France is?", False),
        ("What's a good recipe for pancakes?", False),
    ],
)
def test_is_pastime(utterance, pastime):
    assert is_pastime(utterance) is pastime


def test_topic_related_utterance_resets_and_switch_phrase_is_immediate():
    r = JobRegistry()
    job = r.create("opening hours of the British Museum", now=0)
    t = TopicTracker()
    t.observe("tell me a joke about penguins please", r.active())
    t.observe("is the museum open on sundays too", r.active())
    assert t.observe("what's a good recipe for pancakes", r.active()).stale == []
    assert t.observe("let's talk about something else", r.active()).stale == [job.job_id]
    assert t.observe("", r.active()).stale == []


def test_topic_a_new_task_is_not_moving_away_from_the_others():
    # A caller queueing tasks wants every answer; in a real call the second of three
    # back-to-back tasks was offered ("I also have the answer on ...") instead of said.
    r = JobRegistry()
    job = r.create("work out 1,234 times 5", now=0)
    t = TopicTracker()
    assert t.observe("convert 26.2 miles to kilometres", r.active(), new_task=True).stale == []
    assert t.observe("how many hours are in two weeks", r.active(), new_task=True).stale == []
    assert t.observe("what is fifteen percent of eighty", r.active(), new_task=True).stale == []
    # An explicit switch still is, task or not.
    verdict = t.observe("something else: plan my week", r.active(), new_task=True)
    assert verdict.stale == [job.job_id]


@pytest.mark.parametrize(
    ("said", "read"),
    [
        (
            "Story about the history of Paris. Actually. Never mind that. What's the capital of Japan?",
            "Never mind that. What's the capital of Japan?",
        ),
        (
            "Tell me about Rome. Never mind what I said. What time is it?",
            "Never mind what I said. What time is it?",
        ),
        # A cancel that names its own object takes back only that: all is read.
        ("Book a table for two. Never mind the wine. And find a taxi.", None),
        ("Actually, never mind the report. Tell me a joke instead.", None),  # nothing before
        ("Tell me about Rome. Never mind.", None),  # nothing after: cancel_only's turn
        # The bot's recognizer's early pass, unpunctuated, as two processes heard it.
        (
            "Detailed story about the history of Paris actually Never mind that What's the "
            "capital of Japan?",
            "Never mind that. What's the capital of Japan?",
        ),
        (
            "detailed story about the history of Paris, actually never mind that what's the "
            "capital of japan",
            "never mind that. what's the capital of japan",
        ),
        ("Tell me a story. Actually never mind what's the time?", "never mind. what's the time?"),
        # The recognizer's two passes joined: the cancel ends a sentence begun before it.
        (
            "Detailed story about the history of Paris, actually Never mind that. What's the "
            "capital of Japan?",
            "Never mind that. What's the capital of Japan?",
        ),
        ("Tell me about Rome, oh forget it! Is it raining?", "forget it! Is it raining?"),
        # Nothing after it: a turn that only cancels (cancel_only's case).
        ("Tell me about Rome, actually never mind.", None),
        ("Tell me about Rome, actually never mind. Okay.", None),
        # An object of its own: only that is taken back.
        ("Tell me about Rome, never mind the weather. What time is it?", None),
        # Unpunctuated, a cancel with an object of its own takes back nothing.
        ("tell me about paris never mind the louvre what time is it", None),
        ("I'll walk there never mind that it's raining", None),
        ("never mind that what's the time", None),  # nothing before it
        ("What is the time?", None),
        ("", None),
    ],
)
def test_without_retracted(said, read):
    assert without_retracted(said) == (said if read is None else read)


@pytest.mark.parametrize(
    ("turns", "off"),
    [
        # pipecat's cancellation evals: the cancel names the report, the request has it.
        (
            [
                "Write me a report about sea turtles.",
                "Actually, never mind the report. Tell me a joke instead.",
                "Anything else I should know?",
            ],
            {0},
        ),
        (
            [
                "Write me a report about sea turtles.",
                "Also write one about volcanoes.",
                "Actually, never mind the sea turtle report. Tell me a joke instead.",
            ],
            {0},
        ),
        # Two requests with every named word: the newer one is meant.
        (["Write a report on Rome.", "Write a report on Oslo.", "Never mind the report."], {1}),
        # The named words end at the clause: "tell me a joke" is not part of them.
        (["What's the weather in Paris?", "Never mind the weather, tell me a joke."], {0}),
        (["What's the weather in Paris?", "Never mind what I said about the weather."], {0}),
        # A bare cancel names nothing (without_retracted's case), nor does a cancel
        # of something no earlier turn asked for.
        (["What's the weather in Paris?", "Never mind that."], set()),
        (["Write me a poem.", "No need to write it in French."], set()),
        (["Write me a poem.", "Never mind the wine."], set()),
        # A cancel calls off only turns before it.
        (["Never mind the report.", "Write me a report."], set()),
        ([], set()),
        (["", "Never mind the report."], set()),
    ],
)
def test_called_off(turns, off):
    assert called_off(turns) == off
