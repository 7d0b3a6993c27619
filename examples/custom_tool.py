#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A background tool of your own: an ordinary pipecat function, called by the background model.

The tool is written the way pipecat's function-calling examples write one: a
``FunctionSchema`` and an async handler that gets ``FunctionCallParams`` and answers
through ``params.result_callback``. Here it is pipecat's classic
``get_current_weather``, answered from a table (put your API call there). The
interaction model does not call it: it answers at once and delegates ("let me
check"); the background agent gets the tool beside the built-in offline ones
(calculator, dates, units, camera), calls it, and its answer is woven into the
call at the next natural pause::

    OPENAI_API_KEY=... python examples/custom_tool.py   # pipecat's runner, http://localhost:7860/client

``background_agent`` is the recipe; ``bot`` is what pipecat's runner calls per session.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.runner.types import RunnerArguments
from pipecat.runner.utils import create_transport
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem import BackgroundAgent, build_tandem_pipeline
from pipecat_tandem.background.tools import default_tools
from pipecat_tandem.bot import transport_params
from pipecat_tandem.transports.rtvi_job_bridge import RTVIJobBridge

WEATHER = FunctionSchema(
    name="get_current_weather",
    description="Get the current weather in a city.",
    properties={
        "location": {"type": "string", "description": "The city, e.g. San Francisco, CA."},
        "format": {
            "type": "string",
            "enum": ["celsius", "fahrenheit"],
            "description": "The temperature unit; infer it from the user's location.",
        },
    },
    required=["location", "format"],
)

#: Stand-in data: a real tool would ask a weather service here.
_FAHRENHEIT = {"san francisco": (75, "sunny"), "london": (59, "cloudy"), "tokyo": (68, "rainy")}


async def get_current_weather(params: FunctionCallParams) -> None:
    """The tool's handler: pipecat calls it with the model's arguments."""
    city = str(params.arguments.get("location", "")).split(",")[0].strip().lower()
    if city not in _FAHRENHEIT:
        # An error result, not an exception: the model reads it and can say so.
        await params.result_callback({"error": f"no weather for {city or 'that place'}"})
        return
    fahrenheit, conditions = _FAHRENHEIT[city]
    unit = params.arguments.get("format", "fahrenheit")
    value = fahrenheit if unit == "fahrenheit" else round((fahrenheit - 32) * 5 / 9)
    await params.result_callback({"temperature": value, "format": unit, "conditions": conditions})


def background_agent(llm_factory: Callable[[], LLMService]) -> BackgroundAgent:
    """The background model with the weather tool beside the built-in offline ones.

    Args:
        llm_factory: Makes the background model's service (one per job, so jobs run
            in parallel).
    """
    # pipecat functions run in pipecat's own tool loop on the job's service
    # (register_function), so any LLMService with function calling can use them.
    return BackgroundAgent(
        llm_factory=llm_factory,
        tools=default_tools(),
        functions=[(WEATHER, get_current_weather)],
    )


async def run_bot(transport: Any, runner_args: RunnerArguments) -> None:
    """One session: OpenAI for speech and both models (set ``OPENAI_API_KEY``)."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.openai.stt import OpenAISTTService
    from pipecat.services.openai.tts import OpenAITTSService

    key = os.environ["OPENAI_API_KEY"]

    def background_llm() -> LLMService:
        return OpenAILLMService(api_key=key, settings=OpenAILLMService.Settings(model="gpt-4.1"))

    tandem = build_tandem_pipeline(
        interaction_llm=OpenAILLMService(
            api_key=key, settings=OpenAILLMService.Settings(model="gpt-4.1-mini")
        ),
        background=background_agent(background_llm),
        transport=transport,
        stt=OpenAISTTService(api_key=key),
        tts=OpenAITTSService(api_key=key),
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
