"""The watch calls' grading rules, on hand-made recordings (no call, no models)."""

import numpy as np
import pytest

from pipecat_tandem.bench.caller.ears import Heard
from pipecat_tandem.bench.caller.recording import BotRecording
from pipecat_tandem.bench.caller.watches import (
    WatchTimes,
    ci_suite,
    grade_watch,
    heard_numbers,
    screen_change,
    squats,
    suite,
    ten_seconds,
    wave,
)

LOUD = np.full(960, 3000, np.int16)
QUIET = np.zeros(960, np.int16)


def recording(*speech: tuple[float, float], until: float = 40.0) -> BotRecording:
    rec = BotRecording()
    for i in range(int(until / 0.02)):
        t = i * 0.02
        rec.add(t, LOUD if any(a <= t < b for a, b in speech) else QUIET)
    return rec


ACK = Heard(3.0, 5.0, "Okay, I'll tell you when the view changes.")


def test_a_change_spoken_within_a_second_and_nothing_before_passes():
    times = WatchTimes(request_end=2.5, event_at=12.0, ended=20.0)
    rec = recording((3.0, 5.0), (12.6, 13.5))
    heard = [ACK, Heard(12.6, 13.5, "The view just changed.")]
    r = grade_watch(screen_change(), times, rec, heard)
    assert r.acknowledged and not r.ack_claims and r.early_speech_s == 0.0
    assert r.latency_s == pytest.approx(0.6, abs=0.03) and r.passed


def test_a_change_said_too_late_or_before_it_happened_fails():
    times = WatchTimes(request_end=2.5, event_at=12.0, ended=20.0)
    late = grade_watch(screen_change(), times, recording((3.0, 5.0), (13.3, 14.0)), [ACK])
    assert late.latency_s == pytest.approx(1.3, abs=0.03) and not late.passed
    early = grade_watch(
        screen_change(), times, recording((3.0, 5.0), (8.0, 9.0), (12.3, 13.0)), [ACK]
    )
    assert early.early_speech_s >= 0.9 and not early.passed


def test_an_answer_instead_of_an_acknowledgement_fails():
    times = WatchTimes(request_end=2.5, event_at=12.0, ended=20.0)
    heard = [Heard(3.0, 4.0, "The screen changes when you click.")]
    r = grade_watch(screen_change(), times, recording((3.0, 4.0), (12.3, 13.0)), heard)
    assert not r.acknowledged and not r.passed


def test_a_wave_is_graded_from_its_start_to_two_seconds_after_it():
    w = wave()
    times = WatchTimes(request_end=2.5, event_at=12.0, event_end=16.0, ended=22.0)
    ack = Heard(3.0, 5.0, "Okay, I'll tell you when I see you wave.")
    ok = grade_watch(w, times, recording((3.0, 5.0), (14.2, 15.0)), [ack])
    assert ok.passed and ok.latency_s == pytest.approx(2.2, abs=0.03)
    never = grade_watch(w, times, recording((3.0, 5.0)), [ack])
    assert not never.passed and never.latency_s is None


def test_a_count_passes_when_the_highest_number_heard_is_n():
    times = WatchTimes(request_end=2.5, event_at=8.0, event_end=15.0, ended=20.0)
    ack = Heard(3.0, 5.0, "Okay, I'll count your squats.")
    heard = [ack, Heard(10.0, 11.0, "Two three."), Heard(13.0, 13.5, "four")]
    r = grade_watch(squats(4), times, recording((3.0, 5.0), (10.0, 11.0), (13.0, 13.5)), heard)
    assert r.numbers == [2, 3, 4] and r.counted == 4 and r.passed
    over = grade_watch(squats(3), times, recording((3.0, 5.0), (10.0, 11.0), (13.0, 13.5)), heard)
    assert over.counted == 4 and not over.passed


def test_a_timer_acknowledgement_that_restates_it_is_not_a_claim():
    times = WatchTimes(request_end=2.0, ended=16.0)
    ack = Heard(2.5, 4.5, "Okay, I'll tell you in 10 seconds have passed.")
    fired = Heard(12.3, 13.5, "10 seconds have passed.")
    r = grade_watch(ten_seconds(), times, recording((2.5, 4.5), (12.3, 13.5)), [ack, fired])
    assert r.acknowledged and not r.ack_claims
    assert r.latency_s == pytest.approx(0.3, abs=0.03) and r.on_time and r.passed
    claim = grade_watch(
        ten_seconds(), times, recording((2.5, 3.5)), [Heard(2.5, 3.5, "10 seconds have passed.")]
    )
    assert claim.ack_claims and not claim.passed


def test_counted_numbers_are_read_one_word_at_a_time():
    assert heard_numbers("Two three. 4, five!") == [2, 3, 4, 5]
    assert heard_numbers("Okay, I'll count your squats.") == []


def test_the_suites_cover_n_from_3_to_10_and_ci_has_one_of_each():
    counts = sorted(w.n for w in suite() if w.kind == "count")
    assert counts == list(range(3, 11))
    assert sorted(w.kind for w in ci_suite()) == ["change", "count", "timer", "wave"]
