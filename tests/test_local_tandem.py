"""The embedded default end to end (slow): a delegated question answered by the background.

Real models on both sides (Qwen2.5 0.5B interaction, Qwen2.5 1.5B background with the
built-in calculator), the product's own tandem pipeline and the RuleRouter. Only the
audio output is a stand-in (tests/support's speech output, which emits pipecat's
bot-speaking frames as a transport does), so natural-gap delivery is exercised.
"""

from __future__ import annotations

import asyncio
import re

import pytest

pytest.importorskip("xllamacpp")

from pipecat.frames.frames import EndFrame  # noqa: E402
from pipecat.processors.aggregators.llm_response_universal import (  # noqa: E402
    LLMUserAggregatorParams,
)
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from pipecat_tandem.background.jobs import JobRegistry  # noqa: E402
from pipecat_tandem.background.tools.calculator import calculator_tool  # noqa: E402
from pipecat_tandem.bench.harness import worker_with_start_event  # noqa: E402
from pipecat_tandem.clock import LoopClock  # noqa: E402
from pipecat_tandem.models.local_stack import LocalStack  # noqa: E402
from pipecat_tandem.pipelines.tandem import build_tandem_pipeline  # noqa: E402
from pipecat_tandem.policy.routing import RuleRouter  # noqa: E402
from tests.support.scenario import FakeSpeechOutput, say  # noqa: E402

pytestmark = pytest.mark.slow

ANSWER = re.compile(
    r"\b7006652\b|seven million,? six thousand,? six hundred (?:and )?fifty[- ]two", re.I
)


def normalized(text: str) -> str:
    """Digit groups joined: "7,006,652" / "7 006 652" / "7.006.652" → "7006652"."""
    return re.sub(r"(?<=\d)[,. ](?=\d{3}\b)", "", text)


async def test_delegated_arithmetic_is_answered_by_the_background_at_a_gap():
    stack = LocalStack()  # 0.5B on CPU 0, 1.5B on CPU 1
    clock = LoopClock()
    clock.now()
    output = FakeSpeechOutput(clock, seconds_per_word=0.05)
    tandem = build_tandem_pipeline(
        interaction_llm=stack.interaction_llm(),
        background=stack.background_llm,
        router=RuleRouter(),
        # Only the tool this task needs: a shorter prompt for a CPU-only 1.5B model,
        # and a deadline that fits one core shared with other work.
        tools=[calculator_tool()],
        registry=JobRegistry(default_deadline_s=300.0),
        tts=output,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=ExternalUserTurnStrategies(), user_turn_stop_timeout=2.0
        ),
        min_gap_s=0.5,
        # A 0.5B model garbles numbers when it rephrases a result ("7,000,000,000"):
        # the local preset speaks background results verbatim.
        verbatim=True,
        clock=clock,
    )
    await stack.warm()
    worker, started = worker_with_start_event(tandem.pipeline)

    def kinds(kind: str) -> list[dict]:
        return [e for e in tandem.event_log.events if e["kind"] == kind]

    async def drive() -> None:
        await started.wait()
        for _, frame in say(0.0, "What is 1234 times 5678?", 1.0):
            await worker.queue_frame(frame)
            await asyncio.sleep(0.05)
        # Bounded wait (CPU-only models on a shared machine): until the answer has been
        # spoken after a delivery, or the deadline.
        deadline = asyncio.get_running_loop().time() + 420
        while asyncio.get_running_loop().time() < deadline:
            spoken = normalized(" ".join(u.text for u in output.spoken))
            if kinds("delivered") and ANSWER.search(spoken) and not output._current:
                break
            await asyncio.sleep(0.5)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), drive()), timeout=480)

    for event in tandem.event_log.events:  # shown if the test fails
        print(event)
    delegated = kinds("delegated")
    assert delegated, tandem.event_log.events
    assert "1234" in delegated[0]["task"] and "5678" in delegated[0]["task"]
    results = [e for e in kinds("result_ready") if e.get("is_final")]
    assert results, [e for e in tandem.event_log.events if e.get("job_id")]
    delivered = kinds("delivered")
    assert delivered, tandem.event_log.events
    assert delivered[0]["user_speaking"] is False
    assert delivered[0]["bot_speaking"] is False
    print("SPOKEN:", [u.text for u in output.spoken])
    spoken = normalized(" ".join(u.text for u in output.spoken))
    assert ANSWER.search(spoken), spoken
