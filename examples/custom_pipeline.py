#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Mix tandem processors with plain pipecat services in your own pipeline.

The interaction and background models here are OpenAI services, the speech
services are whatever you like; the two tandem processors sit where they need to:

    transport.input() → STT → DelegationProcessor → user aggregator → LLM
      → ResultInterleaver → TTS → transport.output() → assistant aggregator

    OPENAI_API_KEY=... python examples/custom_pipeline.py

``build_worker`` is the whole recipe; ``main`` runs it in a WebRTC server.
"""

from __future__ import annotations

import asyncio
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
from pipecat.services.llm_service import LLMService

from pipecat_tandem.background.agent import BackgroundAgent
from pipecat_tandem.background.runner import InProcessRunner
from pipecat_tandem.clock import MonotonicClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.processors.delegation_processor import DelegationProcessor
from pipecat_tandem.processors.result_interleaver import ResultInterleaver


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
    """Assemble the pipeline by hand: any pipecat services, two tandem processors."""
    log = event_log or EventLog(MonotonicClock())
    context = LLMContext()
    runner = InProcessRunner(BackgroundAgent(llm_factory=background_llm_factory), max_concurrency=2)
    delegation = DelegationProcessor(
        runner=runner, llm=interaction_llm, context=context, clock=log.clock, event_log=log
    )
    context.set_tools(ToolsSchema(standard_tools=delegation.function_schemas()))
    users, assistant = LLMContextAggregatorPair(context, user_params=user_params)
    interleaver = ResultInterleaver(min_gap_s=0.5, clock=log.clock, event_log=log)
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            delegation,
            users,
            interaction_llm,
            interleaver,
            tts,
            transport.output(),
            assistant,
        ]
    )
    worker = PipelineWorker(pipeline, params=PipelineParams(enable_metrics=True))
    return worker, delegation


class _OpenAIFactory:
    """Session factory for the WebRTC server using OpenAI for both roles."""

    async def warm(self, progress: Callable[[str], None]) -> dict[str, Any]:
        if not os.environ.get("OPENAI_API_KEY"):
            raise ValueError("set OPENAI_API_KEY")
        return {"interaction": "openai:gpt-4.1-mini", "background": "openai:gpt-4.1"}

    async def create_worker(self, transport: Any, session: Any) -> PipelineWorker:
        from pipecat.audio.vad.silero import SileroVADAnalyzer
        from pipecat.services.openai.llm import OpenAILLMService
        from pipecat.services.openai.stt import OpenAISTTService
        from pipecat.services.openai.tts import OpenAITTSService

        key = os.environ["OPENAI_API_KEY"]
        worker, _ = build_worker(
            transport=transport,
            interaction_llm=OpenAILLMService(api_key=key, model="gpt-4.1-mini"),
            background_llm_factory=lambda: OpenAILLMService(api_key=key, model="gpt-4.1"),
            stt=OpenAISTTService(api_key=key),
            tts=OpenAITTSService(api_key=key),
            user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()),
            event_log=EventLog(session.clock, path=session.record_path),
        )
        return worker


async def main() -> None:
    from pipecat_tandem.transports.webrtc_server import TandemServer

    server = TandemServer(factory=_OpenAIFactory(), port=7860)
    await server.start()
    print(f"open http://127.0.0.1:{server.port}/")
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
