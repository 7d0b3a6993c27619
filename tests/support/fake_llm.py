"""A scripted pipecat LLMService for tests (fixed latency, optional tool calls)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings


@dataclass
class FakeReply:
    """What the fake model answers: text and/or tool calls."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    raise_error: Exception | None = None
    hang: bool = False


Responder = Callable[[list[dict[str, Any]]], FakeReply]


def last_text(messages: list[dict[str, Any]], role: str | None = None) -> str:
    """The text of the last message (of ``role``, if given)."""
    for m in reversed(messages):
        if not isinstance(m, dict) or (role and m.get("role") != role):
            continue
        content = m.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class FakeLLMService(LLMService):
    """Answers each ``LLMContextFrame`` with a scripted reply after fixed delays."""

    _ids = itertools.count(1)

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        ttft_s: float = 0.0,
        per_word_s: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if "settings" not in kwargs:
            names = [f.name for f in dataclasses.fields(LLMSettings) if f.init]
            values: dict[str, Any] = dict.fromkeys(names)
            values["model"] = "fake"
            kwargs["settings"] = LLMSettings(**{k: v for k, v in values.items() if k in names})
        super().__init__(**kwargs)
        self._responder = responder or (lambda messages: FakeReply(text="OK."))
        self._ttft = ttft_s
        self._per_word = per_word_s
        self.contexts: list[list[dict[str, Any]]] = []

    def can_generate_metrics(self) -> bool:
        return False

    async def run_inference(self, context: LLMContext, **kwargs: Any) -> str | None:
        reply = self._responder(list(context.get_messages()))
        if reply.raise_error:
            raise reply.raise_error
        return reply.text

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._respond(frame.context)
        else:
            await self.push_frame(frame, direction)

    async def _respond(self, context: LLMContext) -> None:
        messages = [m for m in context.get_messages() if isinstance(m, dict)]
        self.contexts.append(messages)
        reply = self._responder(messages)
        await self.push_frame(LLMFullResponseStartFrame())
        if self._ttft:
            await asyncio.sleep(self._ttft)
        if reply.hang:
            await asyncio.sleep(3600)
        if reply.raise_error:
            await self.push_frame(LLMFullResponseEndFrame())
            raise reply.raise_error
        for i, word in enumerate(reply.text.split(" ") if reply.text else []):
            if self._per_word and i:
                await asyncio.sleep(self._per_word)
            await self.push_frame(LLMTextFrame(text=word if i == 0 else " " + word))
        if reply.tool_calls:
            calls = [
                FunctionCallFromLLM(
                    function_name=name,
                    tool_call_id=f"call_{next(self._ids)}",
                    arguments=args,
                    context=context,
                )
                for name, args in reply.tool_calls
            ]
            await self.run_function_calls(calls)
        await self.push_frame(LLMFullResponseEndFrame())
