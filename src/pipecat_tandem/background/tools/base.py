#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The tool interface of the background agent.

A :class:`Tool` is a plain synchronous function plus its JSON schema. Tools do no
asyncio work; the :class:`~pipecat_tandem.background.agent.BackgroundAgent` runs
them off the event loop and registers them on its pipecat ``LLMService`` the
ordinary way (``register_function`` + a ``FunctionSchema`` in the context's tools),
so users can add their own pipecat functions and MCP tools beside them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema

from pipecat_tandem.background.packet import CameraSnapshot, ContextPacket


class ToolError(Exception):
    """A tool refused its input; the message is returned to the model as the tool result."""


@dataclass
class ToolEnv:
    """What a tool may look at besides its arguments.

    Parameters:
        packet: The job's context packet (conversation, latest camera frame, cues...).
        previous_camera: An earlier camera frame, when the caller kept one (lets the
            camera tool report motion; optional).
    """

    packet: ContextPacket | None = None
    previous_camera: CameraSnapshot | None = None


@dataclass
class Tool:
    """A synchronous, I/O-light tool for the background agent.

    Parameters:
        name: Function name shown to the model.
        description: What it does, for the model.
        properties: JSON-schema properties of the arguments.
        required: Names of required arguments.
        fn: ``fn(args, env) -> result``; raise :class:`ToolError` for bad input.
        extra: Protocol hints (e.g. ``step_properties``, see ``background.steps``).
        domain: Words that name what the tool is for (``("report",)``). A task that
            uses one of them is offered the tool and must call it before answering
            (see ``background.steps.required_tools``): only the tool knows the answer,
            and a small model otherwise writes one itself.
        answer_fields: Fields of the tool's result a spoken answer must state
            (``("temperature",)``): the figure the user asked for. An answer that
            leaves it out ("The weather in San Francisco is sunny." for 75 °F and
            sunny, the 1.5B in pipecat's deferred eval) is sent back once; when the
            second leaves it out too, the figure is said after it ("... The
            temperature is 75."). Numeric fields only.
    """

    name: str
    description: str
    properties: dict[str, Any]
    required: list[str]
    fn: Callable[[Mapping[str, Any], ToolEnv], Any]
    extra: dict[str, Any] = field(default_factory=dict)
    domain: tuple[str, ...] = ()
    answer_fields: tuple[str, ...] = ()

    def schema(self) -> FunctionSchema:
        """The pipecat ``FunctionSchema`` of this tool."""
        return FunctionSchema(
            name=self.name,
            description=self.description,
            properties=self.properties,
            required=self.required,
        )

    def call(self, args: Mapping[str, Any], env: ToolEnv) -> dict[str, Any]:
        """Run the tool and wrap the outcome as ``{"result": ...}`` or ``{"error": ...}``.

        Any exception of the tool becomes an error result, not only :class:`ToolError`:
        the arguments come from a model, and one it got wrong (``limit=1e999`` makes
        ``int()`` raise ``OverflowError``) must be an answer the model can react to, not
        a failed job. Unexpected exceptions are logged with their traceback.
        """
        try:
            result = self.fn(args, env)
        except ToolError as e:
            return {"error": str(e)}
        except Exception as e:
            logger.opt(exception=e).warning(f"tool {self.name!r} raised on {repr(args)[:200]}")
            message = f"{self.name} could not use these arguments ({type(e).__name__}: {e})"
            return {"error": message[:300]}
        try:
            # pipecat puts the result in the context as JSON: a set, bytes or a cycle
            # raised there, in the aggregator, and failed the whole job.
            json.dumps(result)
        except (TypeError, ValueError) as e:
            logger.warning(f"tool {self.name!r} returned a result that is not JSON: {e}")
            return {"error": f"{self.name} gave a result that could not be read ({e})"[:300]}
        return {"result": result}
