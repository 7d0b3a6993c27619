#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The awareness processor's second stage: handled turns skip the interaction model.

See :mod:`pipecat_tandem.processors.awareness_processor`; make the gate with
:attr:`~pipecat_tandem.processors.awareness_processor.AwarenessProcessor.gate`.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    LLMContextUserTurnFrame,
    LLMMessagesAppendFrame,
    StartFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.acknowledgements import HandledTurns


class AwarenessGate(FrameProcessor):
    """Answers the turns the awareness processor handled instead of the interaction model.

    Place it between the user aggregator and the interaction LLM (make it with
    :attr:`AwarenessProcessor.gate`). When the user aggregator writes a turn whose
    words were all a handled request, the gate drops that turn's inference (the
    ``LLMContextFrame``, speculative ones too) and pushes the acknowledgement as a
    ``TTSSpeakFrame`` with the assistant message for the context, so the history
    shows the exchange. Every other frame passes untouched.

    Args:
        handled: The record shared with the awareness processor.
        event_log: The session event log.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(self, handled: HandledTurns, *, event_log: EventLog, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handled = handled
        self._log = event_log
        self._live = False

    @property
    def live(self) -> bool:
        """Whether the gate is running in a pipeline (it saw a ``StartFrame``)."""
        return self._live

    def handle(self, text: str, reply: str) -> bool:
        """Answer the utterance ``text`` with ``reply`` instead of the interaction model.

        For other stages that answer a turn themselves (the delegation processor's
        router acknowledges the jobs it starts this way).

        Returns:
            False when the gate is not running in a pipeline: nothing was recorded
            and the caller must tell the model some other way.
        """
        if not self._live:
            return False
        self._handled.add(text, reply)
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Drop the inference of a handled turn and speak its acknowledgement."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._live = True
        elif isinstance(frame, EndFrame | CancelFrame):
            self._live = False
        elif direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMContextUserTurnFrame):
                await self.push_frame(frame, direction)
                await self._say(self._handled.turn_written(frame.text))
                return
            if isinstance(frame, LLMContextFrame):
                messages = frame.context.get_messages()
                verdict = self._handled.on_inference(
                    _user_text(messages[-1]) if messages else None, speculative=frame.speculation
                )
                if verdict.skip:
                    self._log.emit("inference_skipped", reason="handled turn")
                    await self._say(verdict.say)
                    return
        await self.push_frame(frame, direction)

    async def _say(self, reply: str) -> None:
        if not reply:
            return
        # Recorded here, not by the TTS, so the context holds it whatever TTS runs;
        # uninterruptible so the history matches the job that was registered.
        record = LLMMessagesAppendFrame(
            messages=[{"role": "assistant", "content": reply}], run_llm=False
        )
        record.interruptible = False
        await self.push_frame(TTSSpeakFrame(text=reply, append_to_context=False))
        await self.push_frame(record)


def _user_text(message: Any) -> str | None:
    """The text of a user message (None for any other role or shape)."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return None
