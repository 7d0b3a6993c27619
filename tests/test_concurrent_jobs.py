"""Two jobs at once: a follow-up request ("also write one about ...") and a cancel that names one.

pipecat's ``async_tool_cancellation_concurrent`` release eval asks for two reports,
then "never mind the sea turtle report": the second request has to reach the
background as a report, and the cancel has to stop the report it names, not the
newest job.
"""

from __future__ import annotations

import pytest
from pipecat.frames.frames import LLMMessagesAppendFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.clock import LoopClock
from pipecat_tandem.frames import JobState
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.pipelines.tandem import make_runner
from pipecat_tandem.policy.routing import RuleRouter, resolve_follow_up
from pipecat_tandem.policy.topic import TopicTracker, cancel_target
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from tests.support.fake_llm import FakeLLMService, FakeReply

TURTLES = "Write me a report about sea turtles."
VOLCANOES = "Also write a report about volcanoes."


def _jobs(*tasks: str) -> list:
    registry = JobRegistry()
    return [registry.create(t, now=float(i)) for i, t in enumerate(tasks)]


@pytest.mark.parametrize(
    ("utterance", "expected"),
    [
        # The named one, though it is the older.
        ("Actually, never mind the sea turtle report. Tell me a joke instead.", 0),
        ("Forget it, the turtle one.", 0),
        ("Never mind the volcano report.", 1),
        # Nothing named: the newest.
        ("Never mind.", 1),
        # The words of the other sentence ("a joke") name nothing.
        ("Never mind that. Tell me a joke about sea turtles.", 1),
        # Both named equally ("report"): the newest of them.
        ("Never mind the report.", 1),
    ],
)
def test_cancel_target_is_the_job_the_words_name(utterance, expected):
    jobs = _jobs(TURTLES, VOLCANOES)
    assert cancel_target(utterance, jobs) == jobs[expected].job_id


def test_cancel_target_with_nothing_in_flight_is_none():
    assert cancel_target("Never mind the report.", []) is None


def test_the_tracker_cancels_the_named_job_not_the_newest():
    jobs = _jobs(TURTLES, VOLCANOES)
    verdict = TopicTracker().observe("Actually, never mind the sea turtle report.", jobs)
    assert verdict.cancel == [jobs[0].job_id]


@pytest.mark.parametrize(
    ("task", "earlier", "expected"),
    [
        ("Also write one about volcanoes.", [TURTLES], VOLCANOES),
        ("Write another one on tides.", ["Draft me an email to Sam"], "Write an email on tides."),
        (
            "Also write one about volcanoes.",
            ["what is 2 plus 2"],
            "Also write one about volcanoes.",
        ),
        ("What about volcanoes?", [TURTLES], "What about volcanoes?"),
    ],
)
def test_resolve_follow_up_names_what_one_stands_for(task, earlier, expected):
    assert resolve_follow_up(task, earlier) == expected


def test_a_follow_up_writing_request_is_routed_to_the_background():
    assert RuleRouter().route("Also write one about volcanoes.").needs_background


def _typed(text: str) -> LLMMessagesAppendFrame:
    return LLMMessagesAppendFrame(messages=[{"role": "user", "content": text}], run_llm=True)


async def test_two_reports_then_the_named_one_cancelled_through_the_processor():
    clock = LoopClock()
    # Slow jobs: both still run when the cancel arrives.
    slow = FakeReply(text="The report is finished.", delay_s=30.0)
    runner = make_runner(lambda: FakeLLMService(lambda m: slow))
    delegation = DelegationProcessor(
        runner=runner,
        llm=FakeLLMService(),
        context=LLMContext(),
        clock=clock,
        event_log=EventLog(clock),
        router=RuleRouter(),
    )
    frames = [
        _typed(TURTLES),
        SleepFrame(0.2),
        _typed("Also write one about volcanoes."),
        SleepFrame(0.2),
        _typed("Actually, never mind the sea turtle report. Tell me a joke instead."),
        SleepFrame(0.2),
    ]
    down, _ = await run_test(
        delegation, frames_to_send=frames, expected_down_frames=None, ignore_start=True
    )
    jobs = {j.task: j for j in delegation.registry.jobs}
    assert set(jobs) == {TURTLES, VOLCANOES}
    assert jobs[TURTLES].state is JobState.CANCELLED
    # Cancelled or not, the session's end settles it; what matters is which one the user stopped.
    assert jobs[VOLCANOES].detail != "user cancelled"
    # The interaction model reads the user's own words, no note: a bracketed "job is now
    # cancelled" before them made the 0.5B refuse the joke (pipecat's async_tool_cancellation).
    turns = [f.messages[0]["content"] for f in down if isinstance(f, LLMMessagesAppendFrame)]
    assert turns[2] == "Actually, never mind the sea turtle report. Tell me a joke instead."
