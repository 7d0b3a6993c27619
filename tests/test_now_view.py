#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#
"""NowView rendering."""

import pytest

from pipecat_tandem.policy.now_view import NOW_PREFIX, NowView, RecentCue, is_now_message


def test_renders_time_silence_jobs_and_cues():
    text = NowView().render(
        now=192.4,
        user_silent_for=4.2,
        jobs=[("j1", "weather in Paris", 12.0)],
        cues=[RecentCue("visual_change", 190.4), ("repetition", 192.0, 3.0)],
    )
    assert text.startswith("[now 03:12.4] user silent 4.2s")
    assert 'j1 "weather in Paris" 12.0s' in text
    assert "repetition=3 0.4s ago, visual_change 2.0s ago" in text


def test_no_jobs_speaking_and_old_cues_dropped():
    text = NowView(cue_horizon=10).render(
        now=100.0, user_speaking=True, cues=[("visual_change", 50.0, 1.0)]
    )
    assert text == "[now 01:40.0] user speaking; no background jobs"


def test_stays_short_with_oversized_input():
    view = NowView(max_chars=400)
    jobs = [(f"job-{i}" * 20, "x" * 5000, 1e6) for i in range(50)]
    cues = [("k" * 500, 99.0 - i, float(i)) for i in range(100)]
    text = view.render(now=100.0, user_silent_for=1e9, jobs=jobs, cues=cues)
    assert len(text) <= 400
    assert "+47 more" in text


def test_out_of_order_cues_sorted_and_future_ignored():
    text = NowView().render(
        now=10.0, cues=[("a", 5.0, 0), ("b", 9.0, 0), ("c", 7.0, 0), ("future", 11.0, 0)]
    )
    assert text.endswith("cues: b 1.0s ago, c 3.0s ago, a 5.0s ago")


@pytest.mark.parametrize("now", [float("nan"), float("inf"), None, "5"])
def test_bad_now_raises(now):
    with pytest.raises(ValueError):
        NowView().render(now=now)


def test_bad_config():
    with pytest.raises(ValueError):
        NowView(max_chars=10)


def test_only_when_informative_leaves_out_the_bare_clock():
    view = NowView(only_when_informative=True)
    assert view.render(now=12.0, user_silent_for=3.0) == ""
    assert view.render(now=12.0, user_speaking=True, cues=[("visual_change", -50.0, 0.0)]) == ""
    with_job = view.render(now=12.0, jobs=[("j1", "weather in Paris", 4.0)])
    assert with_job.startswith(NOW_PREFIX) and "weather in Paris" in with_job
    assert view.render(now=12.0, cues=[("visual_change", 11.0, 0.0)]).startswith(NOW_PREFIX)


def test_the_users_speech_cues_are_not_news():
    # In a call they fire at every turn: shown, they cost a local model ~50 prompt
    # tokens a turn for what the transcript already says.
    view = NowView(only_when_informative=True)
    speech = [("speech_onset", 10.0, 8.4), ("speech_offset", 11.5, 1.5)]
    assert view.render(now=12.0, user_silent_for=0.5, cues=speech) == ""
    full = NowView().render(now=12.0, cues=[*speech, ("visual_change", 11.0, 0.0)])
    assert "visual_change" in full and "speech" not in full
    shown = NowView(hidden_cues=()).render(now=12.0, cues=speech)
    assert "speech_offset 0.5s ago" in shown
    with pytest.raises(ValueError):
        NowView(hidden_cues="speech_onset")


def test_is_now_message_recognises_only_the_view():
    assert is_now_message({"role": "developer", "content": "[now 00:01.0] user speaking"})
    assert is_now_message({"role": "user", "content": "[now 00:01.0]"})  # as sent to llama.cpp
    assert not is_now_message({"role": "assistant", "content": "[now 00:01.0]"})
    assert not is_now_message({"role": "user", "content": "now what?"})
    assert not is_now_message("[now 00:01.0]")
    assert not is_now_message({"role": "developer"})
