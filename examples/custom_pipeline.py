#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Add the tandem to the pipecat bot you already have: two processors and its tools.

A pipecat bot (pipecat's development runner, OpenAI services) has this pipeline::

    transport.input() → STT → user aggregator → LLM → TTS → transport.output() → assistant

The tandem adds (the lines marked ``# tandem`` in :func:`build_worker`): a
:class:`DelegationProcessor` before the user aggregator, which gives the LLM the
``delegate``/``cancel_job``/``follow_up_job`` tools and runs the jobs on a background
model; those tools in the context; a :class:`ResultInterleaver` after the LLM, which
holds each result until a natural pause and weaves it into the conversation::

    transport.input() → STT → DelegationProcessor → user aggregator → LLM
      → ResultInterleaver → TTS → transport.output() → assistant aggregator

Run it like any pipecat bot::

    OPENAI_API_KEY=... python examples/custom_pipeline.py          # http://localhost:7860/client
    OPENAI_API_KEY=... python examples/custom_pipeline.py -t daily # any transport of the runner

``build_worker`` is the whole recipe; ``bot`` is what pipecat's runner calls per session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.llm_service import LLMService
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.background.agent import BackgroundAgent
from pipecat_tandem.background.runner import InProcessRunner
from pipecat_tandem.bot import transport_params
from pipecat_tandem.clock import MonotonicClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver
from pipecat_tandem.transports.rtvi_job_bridge import RTVIJobBridge


def build_worker(
    *,
    transport: Any,
    interaction_llm: LLMService,
    background_llm_factory: Callable[[], LLMService],
    stt: Any,
    tts: Any,
    user_params: LLMUserAggregatorParams | None = None,
    event_log: EventLog | None = None,
) -> tuple[PipelineWorker, DelegationProcessor]:
    """Your pipecat pipeline, with the tandem's two processors in it.

    Args:
        transport: The session's pipecat transport.
        interaction_llm: The bot's LLM: it answers at once and delegates.
        background_llm_factory: Makes the background model (one service per job).
        stt: Speech to text.
        tts: Text to speech.
        user_params: The user aggregator's parameters (VAD, turn strategies).
        event_log: Where the tandem records jobs and deliveries (default: in memory).

    Returns:
        The worker to run, and the delegation processor (``await delegation.delegate(...)``
        starts a job from your own code).
    """
    log = event_log or EventLog(MonotonicClock())
    context = LLMContext()
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context, user_params=user_params
    )
    # tandem: jobs run in this process, two at a time, on a fresh background service each.
    runner = InProcessRunner(BackgroundAgent(llm_factory=background_llm_factory), max_concurrency=2)
    delegation = DelegationProcessor(
        runner=runner, llm=interaction_llm, context=context, clock=log.clock, event_log=log
    )
    context.set_tools(ToolsSchema(standard_tools=delegation.function_schemas()))  # tandem
    interleaver = ResultInterleaver(min_gap_s=0.5, clock=log.clock, event_log=log)  # tandem
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            delegation,  # tandem: before the user aggregator, so it sees every user turn
            user_aggregator,
            interaction_llm,
            interleaver,  # tandem: after the LLM, so it knows when a response is in flight
            tts,
            transport.output(),
            assistant_aggregator,
        ]
    )
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))
    # tandem: jobs to RTVI clients as `tandem-job` server messages, and their cancels back.
    RTVIJobBridge(delegation=delegation, clock=log.clock).attach(worker, transport.output())
    return worker, delegation


async def run_bot(transport: Any, runner_args: RunnerArguments) -> None:
    """One session: OpenAI for speech and both models (set ``OPENAI_API_KEY``)."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.openai.stt import OpenAISTTService
    from pipecat.services.openai.tts import OpenAITTSService

    key = os.environ["OPENAI_API_KEY"]
    worker, _ = build_worker(
        transport=transport,
        interaction_llm=OpenAILLMService(
            api_key=key, settings=OpenAILLMService.Settings(model="gpt-4.1-mini")
        ),
        background_llm_factory=lambda: OpenAILLMService(
            api_key=key, settings=OpenAILLMService.Settings(model="gpt-4.1")
        ),
        stt=OpenAISTTService(api_key=key),
        tts=OpenAITTSService(api_key=key),
        user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()),
    )

    @transport.event_handler("on_client_disconnected")
    async def _on_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=runner_args.handle_sigint)
    await runner.add_workers(worker)
    await runner.run()


async def bot(runner_args: RunnerArguments) -> None:
    """Pipecat's runner calls this for every session."""
    transport = await create_transport(runner_args, transport_params())
    await run_bot(transport, runner_args)


if __name__ == "__main__":
    from pipecat.runner.run import main

    main()
