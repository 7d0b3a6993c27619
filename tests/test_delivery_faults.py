"""Fault injection on the delivery path (issue 13): a background model that fails in any way.

The background model raises, hangs past the job's deadline, or returns garbage or
empty text. In every case the user is told in one short sentence, once, and the call
goes on: the next user turn is answered as usual. ``test_scenarios`` covers the
raising model's woven notice; this adds the other faults, the verbatim wording and
the check that the conversation goes on after each.
"""

import re

import pytest

from pipecat_tandem.background.jobs import JobRegistry
from tests.support.fake_llm import FakeReply
from tests.support.scenario import background_responder, say
from tests.test_scenarios import assert_clean, scenario

FAULTS = {
    "raises": FakeReply(raise_error=RuntimeError("model exploded")),
    "hangs": FakeReply(hang=True),
    "garbage": FakeReply(text=" ...  "),
    "empty": FakeReply(text=""),
    "a tool call as text": FakeReply(text='{"tool": "calculator", "arguments": {"x": 1}}'),
}


def _run(fault, *, verbatim):
    script = say(1.0, "what is 1234 times 5678") + say(12.0, "hello again", 0.5)
    return scenario(
        script,
        background=background_responder(lambda task: FAULTS[fault]),
        registry=JobRegistry(default_deadline_s=5.0),  # a hanging model fails at ~7.3 s
        verbatim=verbatim,
        until=20,
    )


def _sentences(text):
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_user_is_told_once_and_the_call_goes_on_woven(fault):
    r = _run(fault, verbatim=False)
    m = assert_clean(r)
    assert len(r.of_kind("failed")) == 1 and m.failures == 1
    [delivered] = r.of_kind("delivered")
    assert delivered["delivery"] == "failure" and delivered["t"] < 12.0
    assert r.spoken_texts().count("Sorry, that failed.") == 1
    assert r.spoken_texts()[-1] == "Sure."  # the next turn is answered
    assert r.tandem.runner.active_job_ids == set()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_the_user_is_told_in_one_short_sentence_verbatim(fault):
    r = _run(fault, verbatim=True)
    m = assert_clean(r)
    assert m.failures == 1
    told = [t for t in r.spoken_texts() if t.startswith("Sorry")]
    assert told == ["Sorry, I couldn't work out what is 1234 times 5678."]
    assert len(_sentences(told[0])) == 1 and len(told[0].split()) <= 15
    # The error itself is for the log, never read out.
    error = r.of_kind("failed")[0]["error"]
    assert error and error not in " ".join(r.spoken_texts())
    assert r.spoken_texts()[-1] == "Sure."
