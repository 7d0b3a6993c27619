"""Per-session job caps: the pure limiter, and a runaway model in the real pipeline."""

from __future__ import annotations

import itertools

import pytest

from pipecat_tandem.policy.job_limits import JobLimits

from .support.fake_llm import FakeReply
from .support.scenario import run_scenario, say
from .support.virtual_time import run_virtual


def test_running_cap_refuses_with_a_sentence_fit_to_say():
    limits = JobLimits(max_running=2, max_per_window=10)
    assert limits.refusal(now=0.0, running=1) is None
    reason = limits.refusal(now=0.0, running=2)
    assert reason is not None and "wait for one to finish" in reason
    assert "{" not in reason and "_" not in reason  # words, not a code


def test_rate_cap_slides_with_the_clock():
    limits = JobLimits(max_running=100, max_per_window=3, window_s=60.0)
    for t in (0.0, 10.0, 20.0):
        assert limits.refusal(now=t, running=0) is None
        limits.record(now=t)
    reason = limits.refusal(now=30.0, running=0)
    assert reason is not None and "30 seconds" in reason
    assert limits.refusal(now=59.9, running=0) is not None
    assert limits.refusal(now=60.0, running=0) is None  # the first start left the window


@pytest.mark.parametrize(
    "kwargs",
    [{"max_running": 0}, {"max_per_window": 0}, {"window_s": 0}, {"window_s": float("inf")},
     {"max_running": 2.5}, {"window_s": float("nan")}],
)  # fmt: skip
def test_bad_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        JobLimits(**kwargs)


def _runaway(on: str):
    """An interaction model that starts a new, different job whenever it sees ``on``."""
    numbers = itertools.count(1)

    def respond(messages):
        last = messages[-1] if messages else {}
        role = last.get("role")
        if role == "user" or role == on:
            return FakeReply(
                tool_calls=[("delegate", {"task": f"what is {next(numbers) * 1000 + 7} times 89"})]
            )
        return FakeReply(text="Sure.")

    return respond


def _answer(messages):
    return FakeReply(text="There are 12 sheep.")


def test_a_model_that_starts_six_jobs_in_one_reply_gets_four():
    def six_at_once(messages):
        if messages and messages[-1].get("role") == "user":
            calls = [
                ("delegate", {"task": f"what is {n * 1000 + 7} times {n * 37 + 11}"})
                for n in range(1, 7)
            ]
            return FakeReply(tool_calls=calls)
        return FakeReply(text="Sure.")

    r = run_virtual(
        run_scenario(
            say(0.5, "what is 12 times 34"),
            interaction=six_at_once,
            background=_answer,
            background_delay_s=30.0,
            until=10.0,
            max_concurrency=8,
        )
    )
    refused = r.of_kind("delegation_refused")
    assert len(r.of_kind("delegated")) == 4
    assert len(refused) == 2 and "wait for one to finish" in refused[0]["reason"]


def test_a_model_that_delegates_on_every_delivery_is_capped_per_minute():
    # Each result delivered makes the model start another job: without a cap this is
    # a job every few seconds for as long as the call lasts.
    r = run_virtual(
        run_scenario(
            say(0.5, "what is 12 times 34"),
            interaction=_runaway("developer"),
            background=_answer,
            background_delay_s=0.5,
            until=59.0,
        )
    )
    delegated = r.of_kind("delegated")
    assert len(delegated) == 10
    assert r.of_kind("delegation_refused")
