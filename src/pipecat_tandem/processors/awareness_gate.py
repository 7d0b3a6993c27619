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

import asyncio
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
from pipecat.turns.empty_user_turn import EmptyUserTurnConfig

from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.acknowledgements import HandledTurns
from pipecat_tandem.policy.empty_turns import EmptyTurnHold


class AwarenessGate(FrameProcessor):
    """Answers the turns the awareness processor handled instead of the interaction model.

    Place it between the user aggregator and the interaction LLM (make it with
    :attr:`AwarenessProcessor.gate`). When the user aggregator writes a turn whose
    words were all a handled request, the gate drops that turn's inference (the
    ``LLMContextFrame``, speculative ones too) and pushes the acknowledgement as a
    ``TTSSpeakFrame`` with the assistant message for the context, so the history
    shows the exchange.

    The user aggregator's empty-turn recovery (an inference on its "ask them to
    repeat" prompt when a turn ended with no transcript) is held for
    ``empty_turn_hold_s``: on a busy machine the turn's transcript can come after the
    turn ended, and then the words get their answer (or acknowledgement) instead
    (:class:`~pipecat_tandem.policy.empty_turns.EmptyTurnHold`). Every other frame
    passes untouched.

    Args:
        handled: The record shared with the awareness processor.
        event_log: The session event log.
        empty_turn: The user aggregator's empty-turn config (its prompts are how a
            recovery inference is recognised); pipecat's default when not given.
        empty_turn_hold_s: How long a recovery waits for the turn's late words.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        handled: HandledTurns,
        *,
        event_log: EventLog,
        empty_turn: EmptyUserTurnConfig | None = None,
        empty_turn_hold_s: float = 3.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._handled = handled
        self._log = event_log
        self._live = False
        self._empty = EmptyTurnHold((), hold_s=empty_turn_hold_s)
        self.empty_turn = empty_turn or EmptyUserTurnConfig()
        self._release: asyncio.Task[None] | None = None
        self._held_context: Any = None  # the held recovery's context

    @property
    def empty_turn(self) -> EmptyUserTurnConfig | None:
        """The user aggregator's empty-turn config (set it when the aggregator's differs)."""
        return self._empty_config

    @empty_turn.setter
    def empty_turn(self, config: EmptyUserTurnConfig | None) -> None:
        self._empty_config = config
        prompts = (config.interrupted_prompt, config.idle_prompt) if config else ()
        self._empty = EmptyTurnHold(prompts, hold_s=self._empty.hold_s)

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
            await self._stop_release()
        elif direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMContextUserTurnFrame):
                if frame.text.strip():
                    self._words_arrived(None)
                await self.push_frame(frame, direction)
                await self._say(self._handled.turn_written(frame.text))
                return
            if isinstance(frame, LLMContextFrame):
                messages = frame.context.get_messages()
                if self._empty.is_recovery(messages):
                    await self._hold(frame)
                    return
                if _user_text(messages[-1] if messages else None):
                    self._words_arrived(frame)
                    messages = frame.context.get_messages()
                verdict = self._handled.on_inference(
                    _user_text(messages[-1]) if messages else None, speculative=frame.speculation
                )
                if verdict.skip:
                    self._log.emit("inference_skipped", reason="handled turn")
                    await self._say(verdict.say)
                    return
        await self.push_frame(frame, direction)

    def words_heard(self) -> None:
        """A transcript with words arrived upstream (the awareness processor tells).

        A held recovery is dropped: its turn was not empty, the words were only late,
        and the user aggregator writes them as a turn of their own (pipecat starts a
        turn on a transcript), which gets its answer or acknowledgement.
        """
        self._words_arrived(None)

    async def _hold(self, frame: LLMContextFrame) -> None:
        """Hold an empty-turn recovery until the turn's late words come, or run it later."""
        await self._stop_release()
        self._empty.hold(frame.context.get_messages())
        self._held_context = frame.context
        if self._handled.pending:
            # The words are already transcribed and answered, only not yet written.
            self._words_arrived(frame)
            return
        self._log.emit("empty_turn_held", hold_s=self._empty.hold_s)
        self._release = self.create_task(self._release_later(frame), "tandem-empty-turn-hold")

    async def _release_later(self, frame: LLMContextFrame) -> None:
        await asyncio.sleep(self._empty.hold_s)
        self._release = None
        if self._empty.release():
            await self.push_frame(frame)

    def _words_arrived(self, frame: LLMContextFrame | None) -> None:
        """User words were written: a held recovery is dropped, its prompt too."""
        if not self._empty.holding:
            return
        # The recovery's prompt is in the shared context: take it out, or the model
        # would read "ask them to repeat" right before the words it now answers.
        context = frame.context if frame is not None else self._held_context
        self._held_context = None
        kept = self._empty.words_arrived(context.get_messages() if context else [])
        if context is not None and kept is not None:
            context.set_messages(kept)
        self._log.emit("empty_turn_dropped", reason="late transcript")

    async def _stop_release(self) -> None:
        if self._release is not None:
            await self.cancel_task(self._release)
            self._release = None

    async def cleanup(self) -> None:
        """Stop a pending release."""
        await super().cleanup()
        await self._stop_release()

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
