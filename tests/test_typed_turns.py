"""A turn typed by an RTVI client (``send-text``) is routed like a spoken one.

pipecat's RTVI processor turns ``send-text`` into one user
``LLMMessagesAppendFrame`` with ``run_llm``, which never passes the
transcription path; pipecat's text-mode release evals (and any text client)
send their turns that way. Frame-level, with pipecat's ``run_test``.
"""

from __future__ import annotations

from pipecat.frames.frames import LLMMessagesAppendFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from pipecat_tandem.clock import LoopClock
from pipecat_tandem.frames import BackgroundJobStateFrame
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.pipelines.tandem import make_runner
from pipecat_tandem.policy.routing import RuleRouter
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from tests.support.fake_llm import FakeLLMService, FakeReply


def _delegation() -> DelegationProcessor:
    clock = LoopClock()
    runner = make_runner(lambda: FakeLLMService(lambda m: FakeReply(text="75 degrees.")))
    return DelegationProcessor(
        runner=runner,
        llm=FakeLLMService(),
        context=LLMContext(),
        clock=clock,
        event_log=EventLog(clock),
        router=RuleRouter(),
    )


def _typed(text: str, role: str = "user") -> LLMMessagesAppendFrame:
    return LLMMessagesAppendFrame(messages=[{"role": role, "content": text}], run_llm=True)


async def test_a_typed_request_is_delegated_and_the_model_told_to_acknowledge():
    delegation = _delegation()
    typed = _typed("What's the weather in San Francisco? Use Fahrenheit.")
    down, _ = await run_test(
        delegation,
        frames_to_send=[typed],
        expected_down_frames=None,
        ignore_start=True,
    )
    assert any(isinstance(f, BackgroundJobStateFrame) for f in down)
    (append,) = [f for f in down if isinstance(f, LLMMessagesAppendFrame)]
    content = append.messages[0]["content"]
    assert content.startswith("What's the weather") and "Background job job-1" in content


async def test_the_machinerys_own_appends_and_small_talk_are_left_alone():
    delegation = _delegation()
    woven = _typed("Job job-1 is done: 75 degrees.", role="developer")
    joke = _typed("Tell me a joke.")
    down, _ = await run_test(
        delegation, frames_to_send=[woven, joke], expected_down_frames=None, ignore_start=True
    )
    assert not any(isinstance(f, BackgroundJobStateFrame) for f in down)
    texts = [f.messages[0]["content"] for f in down if isinstance(f, LLMMessagesAppendFrame)]
    assert texts == ["Job job-1 is done: 75 degrees.", "Tell me a joke."]
