#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""An offline interaction model with a cloud background model.

The part of the call that must be fast stays on this machine: speech in and out
(Whisper tiny.en, hibari) and the interaction model (the embedded Qwen2.5 0.5B),
so replies never wait on a network round trip. Only the delegated work goes to the
cloud: a large model (OpenAI's, or any OpenAI-compatible server's) gets the whole
conversation as the job's context and answers at its own pace::

    OPENAI_API_KEY=... python examples/cloud_background.py          # pipecat's runner
    OPENAI_BASE_URL=http://127.0.0.1:11434/v1 OPENAI_API_KEY=x BACKGROUND_MODEL=llama3 \\
        python examples/cloud_background.py                          # e.g. Ollama

Needs the embedded models: ``pip install "pipecat-tandem[local]"``. The models load
once per process and serve one call at a time. ``build_tandem`` is the recipe;
``bot`` is what pipecat's runner calls per session.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.llm_service import LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem import TandemPipeline, build_tandem_pipeline
from pipecat_tandem.bot import transport_params
from pipecat_tandem.policy.now_view import NowView
from pipecat_tandem.policy.routing import RuleRouter
from pipecat_tandem.transports.rtvi_job_bridge import RTVIJobBridge


def cloud_background_llm() -> LLMService:
    """The background model: a new pipecat service per job (jobs run in parallel).

    ``OPENAI_BASE_URL`` (read by the OpenAI client) points it at any compatible server.
    """
    return OpenAILLMService(
        api_key=os.environ["OPENAI_API_KEY"],
        settings=OpenAILLMService.Settings(model=os.environ.get("BACKGROUND_MODEL", "gpt-4.1")),
    )


def build_tandem(
    *, transport: Any, interaction_llm: LLMService, stt: Any, tts: Any, **kwargs: Any
) -> TandemPipeline:
    """The tandem pipeline with a small local interaction model and the cloud background.

    Args:
        transport: The session's pipecat transport.
        interaction_llm: The offline interaction model.
        stt: Speech to text.
        tts: Text to speech.
        **kwargs: More ``build_tandem_pipeline`` arguments (VAD, clock, event log...).
    """
    return build_tandem_pipeline(
        interaction_llm=interaction_llm,
        background=cloud_background_llm,
        transport=transport,
        stt=stt,
        tts=tts,
        # A 0.5B model calls tools unreliably: a rule router delegates for it.
        router=RuleRouter(),
        # ...and garbles numbers when it rephrases: results are spoken as written.
        verbatim=True,
        # It pays for every prompt token on a CPU: the "now" view only when it says something.
        now_view=NowView(only_when_informative=True),
        # About 20 tokens a second: speak a reply's first clause before the sentence ends.
        first_clause=True,
        **kwargs,
    )


_stack: Any = None
_stack_lock = asyncio.Lock()


async def _local_models() -> Any:
    """The embedded interaction model and speech, loaded and warmed once per process."""
    global _stack
    async with _stack_lock:
        if _stack is None:
            from pipecat_tandem.models.local_stack import LocalStack

            def load() -> LocalStack:
                # No local background model: that role is the cloud's. Whisper and the
                # voice load here, once; each session gets fresh services over them.
                stack = LocalStack(background_model=None)
                stack.stt()
                stack.tts()
                return stack

            stack = await asyncio.to_thread(load)  # blocking loads, off the event loop
            await stack.warm()
            _stack = stack
    return _stack


async def run_bot(transport: Any, runner_args: RunnerArguments) -> None:
    """One session on the shared local models and the cloud background."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker

    stack = await _local_models()
    tandem = build_tandem(
        transport=transport,
        # Fresh services per session over the models loaded once.
        interaction_llm=stack.interaction_llm(),
        stt=stack.new_stt(),
        tts=stack.new_tts(),
        vad_analyzer=SileroVADAnalyzer(),
    )
    worker = PipelineWorker(tandem.pipeline, params=PipelineParams(enable_metrics=True))
    # Jobs to RTVI clients as `tandem-job` server messages, and their cancels back.
    RTVIJobBridge(delegation=tandem.delegation, clock=tandem.clock).attach(
        worker, transport.output()
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
