#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""Interjection parsing (labeled list) and scheduling on virtual time."""

import pytest

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.frames import DeliveryPolicy
from pipecat_tandem.policy.interjections import (
    InterjectionScheduler,
    InterjectionSpec,
    parse_duration,
    parse_interjection,
)

INT, W = DeliveryPolicy.INTERRUPT, DeliveryPolicy.WHEN_IDLE

# (request, kind, delay or cue kind or label, policy)
LABELED = [
    ("tell me when thirty seconds have passed", "timed", 30.0, INT),
    ("Tell me when 30 seconds have passed.", "timed", 30.0, INT),
    ("remind me in two minutes to stretch", "timed", 120.0, W),
    ("Remind me to drink water in 5 minutes", "timed", 300.0, W),
    ("remind me in two and a half minutes to check the oven", "timed", 150.0, W),
    ("let me know when a minute and a half has passed", "timed", 90.0, INT),
    ("tell me when half a minute is up", "timed", 30.0, INT),
    ("in twenty-five seconds tell me", "timed", 25.0, INT),
    ("set a timer for 1.5 minutes", "timed", 90.0, INT),
    ("ping me in 45s", "timed", 45.0, INT),
    ("remind me in a couple of minutes to call Sam, no rush", "timed", 120.0, W),
    ("remind me in ten minutes to take the pizza out, it's urgent", "timed", 600.0, INT),
    ("tell me when the screen changes", "cue", "visual_change", INT),
    ("let me know when the slide switches", "cue", "visual_change", INT),
    ("say something when I wave", "cue", "periodic_motion", INT),
    # What the bot's tiny.en heard a real caller say "Tell me when I wave." as.
    ("Tell me when I wait.", "cue", "periodic_motion", INT),
    ("tell me when I weigh", "cue", "periodic_motion", INT),
    ("Tell me when I waste.", "cue", "periodic_motion", INT),
    ("let me know when you see me waving", "cue", "periodic_motion", INT),
    ("tell me whenever I stop moving", "cue", "motion_offset", INT),
    ("let me know when I start moving", "cue", "motion_onset", INT),
    ("tell me when I stop talking", "cue", "speech_offset", INT),
    ("count my squats", "count", "squats", INT),
    ("Count how many push-ups I do", "count", "push-ups", INT),
    ("can you count my reps please", "count", "reps", INT),
    ("stop counting", "cancel", "count", DeliveryPolicy.SILENT),
    ("cancel the timer", "cancel", "timed", DeliveryPolicy.SILENT),
    ("never mind the reminder", "cancel", "timed", DeliveryPolicy.SILENT),
]

UNPARSEABLE = [
    "",
    "   ",
    "what's the weather in Paris",
    "tell me a joke",
    "remind me to call mom",  # no time
    "tell me when",
    "tell me when I wait for the bus",  # a wait with more after it is not a wave
    "tell me when I waste time",
    "I ran 5 minutes ago",
    "remind me in 400 hours to renew",  # beyond 24 h
    "remind me in zero seconds",
    "remind me in minus five minutes",
    "tell me in -5 seconds",
    "x" * 5000,
    None,
    42,
    ["tell me in 5 seconds"],
]


@pytest.mark.parametrize(("text", "kind", "target", "policy"), LABELED)
def test_labeled_requests(text, kind, target, policy):
    spec = parse_interjection(text)
    assert spec is not None, text
    assert spec.kind == kind and spec.policy == policy
    if kind == "timed":
        assert spec.delay == pytest.approx(target)
        assert spec.text
    elif kind == "cue":
        assert spec.cue_kind == target and spec.text
    else:
        assert spec.label == target


@pytest.mark.parametrize("text", UNPARSEABLE)
def test_unparseable_gives_none(text):
    assert parse_interjection(text) is None


def test_texts_say_the_content():
    assert parse_interjection("tell me when thirty seconds have passed").text == (
        "30 seconds have passed."
    )
    assert parse_interjection("remind me in two minutes to stretch").text == "Reminder: stretch."
    assert "timer" in parse_interjection("set a timer for 2 minutes").text
    assert parse_duration("every 90 seconds") == 90.0
    assert parse_duration(None) is None  # type: ignore[arg-type]


def test_timed_fires_within_one_micro_turn_on_virtual_time():
    clock = ManualClock(start=3.37)
    sched = InterjectionScheduler()
    sid = sched.add(parse_interjection("tell me when thirty seconds have passed"), now=clock.now())
    target = 3.37 + 30.0
    fired = []
    while clock.now() < 40 and not fired:
        clock.advance(0.2)  # one micro-turn
        fired = sched.poll(clock.now())
    (item,) = fired
    assert item.spec_id == sid and item.policy == INT and item.kind == "timed"
    assert target <= clock.now() < target + 0.2
    assert item.time == pytest.approx(target)
    assert sched.poll(clock.now() + 100) == []  # fired once


def test_repeating_timer_and_stall_without_burst():
    sched = InterjectionScheduler()
    sched.add(parse_interjection("every 10 seconds tell me the time"), now=0.0)
    assert [i.id for i in sched.poll(10.0)] == ["i1#1"]
    assert sched.poll(15.0) == []
    assert len(sched.poll(95.0)) == 1  # a stall fires once, not eight times
    assert [i.id for i in sched.poll(100.0)] == ["i1#3"]


def test_cue_interjections_once_or_every_time():
    sched = InterjectionScheduler()
    sched.add(parse_interjection("tell me when the screen changes"), now=5.0)
    sched.add(parse_interjection("tell me every time I stop moving"), now=5.0)
    assert sched.on_cue("visual_change", 4.0) == []  # before the request
    assert [i.text for i in sched.on_cue("visual_change", 6.0)] == ["The view just changed."]
    assert sched.on_cue("visual_change", 7.0) == []
    assert len(sched.on_cue("motion_offset", 8.0)) == 1
    assert len(sched.on_cue("motion_offset", 9.0)) == 1


def test_count_reps_from_request_across_sets_and_stop():
    sched = InterjectionScheduler()
    sched.on_cue("motion_onset", 0.0)
    sched.on_cue("repetition", 1.0, 2.0)  # two reps before the request
    sched.add(parse_interjection("count my squats"), now=1.5)
    said = [i.text for i in sched.on_cue("repetition", 2.0, 3.0)]
    said += [i.text for i in sched.on_cue("repetition", 3.0, 5.0)]  # jumped by two
    sched.on_cue("motion_offset", 4.0, 5.0)
    sched.on_cue("motion_onset", 6.0)
    said += [i.text for i in sched.on_cue("repetition", 7.0, 1.0)]
    assert said == ["One.", "Two, three.", "Four."]  # the number passed is said too
    sched.add(parse_interjection("stop counting"), now=8.0)
    assert sched.on_cue("repetition", 9.0, 2.0) == []
    assert sched.pending == {}


def test_a_count_that_moves_by_several_says_the_numbers_it_passed():
    # The counter's first cue often comes at two (it confirms a repetition once the
    # motion is periodic): "One, two.", as a person counting would say it.
    sched = InterjectionScheduler()
    sched.add(parse_interjection("count my squats"), now=0.0)
    sched.on_cue("motion_onset", 1.0)
    said = [i.text for i in sched.on_cue("repetition", 3.0, 2.0)]
    said += [i.text for i in sched.on_cue("repetition", 4.0, 3.0)]
    said += [i.text for i in sched.on_cue("repetition", 9.0, 8.0)]  # a jump of five
    assert said == ["One, two.", "Three.", "Eight."]


def test_cancel_and_limits_and_bad_input():
    sched = InterjectionScheduler(max_pending=2)
    sched.add(parse_interjection("remind me in 1 minute to stretch"), now=0.0)
    sched.add(parse_interjection("tell me when the screen changes"), now=0.0)
    with pytest.raises(ValueError, match="too many"):
        sched.add(parse_interjection("set a timer for 5 minutes"), now=0.0)
    assert sched.add(parse_interjection("cancel the timer"), now=1.0) is None
    assert [s.kind for s in sched.pending.values()] == ["cue"]
    with pytest.raises(ValueError):
        sched.add(parse_interjection("set a timer for 5 minutes"), now=float("nan"))
    with pytest.raises(ValueError):
        sched.add("remind me", now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sched.add(InterjectionSpec("timed", "x", INT, delay=-1.0), now=0.0)
    with pytest.raises(ValueError):
        sched.add(InterjectionSpec("dance", "x", INT), now=0.0)
    with pytest.raises(ValueError):
        sched.poll(float("inf"))
    with pytest.raises(ValueError):
        sched.on_cue("visual_change", float("nan"))
    assert sched.on_cue("repetition", 1.0, float("nan")) == []


@pytest.mark.parametrize("text", ["Never mind, forget it.", "never mind that", "forget it"])
def test_never_mind_about_the_talk_is_not_a_timer_cancel(text):
    assert parse_interjection(text) is None


@pytest.mark.parametrize(
    ("text", "label"), [("never mind the reminder", "timed"), ("forget the timer", "timed")]
)
def test_never_mind_naming_a_timer_still_cancels_it(text, label):
    spec = parse_interjection(text)
    assert spec is not None and spec.kind == "cancel" and spec.label == label
