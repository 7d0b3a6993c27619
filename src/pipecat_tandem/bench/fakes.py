#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The benchmark's measuring instruments: a scripted LLM and a speech output.

Both systems under comparison run the *same* instruments: a :class:`ScriptedLLM`
(a real pipecat ``LLMService`` whose replies come from a plain function, after a
fixed latency, streamed word by word) and a :class:`SpeechOutput` (stands in for
TTS + output transport: queues text, "speaks" it at a fixed rate, emits pipecat's
bot-speaking frames both ways as a real output transport does, and records every
utterance). They are part of the benchmark, not stand-ins for the product. The
test suite's fake LLM is this same :class:`ScriptedLLM` (``tests/support/fake_llm.py``
only renames it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FunctionCallFromLLM,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    SystemFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings
from pipecat.utils.text.base_text_aggregator import TextType

from pipecat_tandem.clock import SessionClock


@dataclass
class Reply:
    """What a scripted model answers.

    Parameters:
        text: Spoken/written text (may be empty).
        tool_calls: ``(function name, arguments)`` pairs to call.
        delay_s: Extra time to the first token for this reply (on top of the
            service's ``ttft_s``).
        error: Report this as a provider error (``push_error``) instead of answering.
        raise_error: Raise this exception instead of answering (pipecat turns it
            into an ``ErrorFrame``; ``run_inference`` raises it to the caller).
        hang: Never answer (a provider that stops responding).
        qids: The benchmark requests this reply answers (for the measurement only).
    """

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    delay_s: float = 0.0
    error: str | None = None
    raise_error: Exception | None = None
    hang: bool = False
    qids: tuple[str, ...] = ()


#: A model: the conversation in, a reply out (pure; no I/O).
Brain = Callable[[list[dict[str, Any]]], Reply]


def message_text(message: dict[str, Any]) -> str:
    """The text of one message (string content, or the text parts of a list)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def last_text(messages: list[dict[str, Any]], role: str | None = None) -> str:
    """The text of the last message (of ``role``, if given)."""
    for m in reversed(messages):
        if isinstance(m, dict) and (not role or m.get("role") == role):
            return message_text(m)
    return ""


def _ok(messages: list[dict[str, Any]]) -> Reply:
    return Reply(text="OK.")


def _settings() -> LLMSettings:
    names = [f.name for f in dataclasses.fields(LLMSettings) if f.init]
    values: dict[str, Any] = dict.fromkeys(names)
    values["model"] = "scripted"
    return LLMSettings(**values)


def _dicts(context: LLMContext) -> list[dict[str, Any]]:
    return [dict(m) for m in context.get_messages() if isinstance(m, dict)]


class ScriptedLLM(LLMService):
    """A pipecat ``LLMService`` answering each context with ``brain(messages)``.

    The reply streams as a real service's does: ``LLMFullResponseStartFrame``, then
    (after ``ttft_s`` plus the reply's ``delay_s``) one ``LLMTextFrame`` per word,
    ``per_word_s`` apart, then the tool calls, and ``LLMFullResponseEndFrame`` at the
    end, also when the reply fails or is cancelled (as pipecat's services do). A
    reply's ``error`` is reported the way pipecat's own services report a provider
    failure (``push_error`` between the start and end frames); its ``raise_error``
    is raised (pipecat turns it into an ``ErrorFrame``).

    Args:
        brain: Decides the reply from the conversation (default: always "OK.").
        ttft_s: Time to the first token, for every reply.
        per_word_s: Pause between streamed words.
        on_output: Called with ``(reply, time)`` when a reply's text is produced (or
            its error reported): the benchmark's "result ready" instant.
        clock: The session clock for ``on_output`` times.
        **kwargs: Passed to ``LLMService``.

    Attributes:
        contexts: The conversation of every context answered, in order.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        brain: Brain | None = None,
        *,
        ttft_s: float = 0.0,
        per_word_s: float = 0.0,
        on_output: Callable[[Reply, float], None] | None = None,
        clock: SessionClock | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("settings", _settings())
        super().__init__(**kwargs)
        self._brain = brain or _ok
        self._ttft = ttft_s
        self._per_word = per_word_s
        self._on_output = on_output
        self._clock = clock
        self.contexts: list[list[dict[str, Any]]] = []

    @property
    def calls(self) -> int:
        """How many contexts were answered."""
        return len(self.contexts)

    def can_generate_metrics(self) -> bool:
        """No metrics from a scripted model."""
        return False

    async def run_inference(self, context: LLMContext, *args: Any, **kwargs: Any) -> str | None:
        """One-shot inference (pipecat utilities, the step agent's structured steps).

        Raises:
            Exception: The reply's ``raise_error``.
        """
        reply = self._brain(_dicts(context))
        if reply.raise_error is not None:
            raise reply.raise_error
        return reply.text

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Answer ``LLMContextFrame``; pass everything else on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._respond(frame.context)
        else:
            await self.push_frame(frame, direction)

    def _emitted(self, reply: Reply) -> None:
        if self._on_output is not None and self._clock is not None:
            self._on_output(reply, self._clock.now())

    async def _respond(self, context: LLMContext) -> None:
        messages = _dicts(context)
        self.contexts.append(messages)
        reply = self._brain(messages)
        await self.push_frame(LLMFullResponseStartFrame())
        try:
            if self._ttft + reply.delay_s > 0:
                await asyncio.sleep(self._ttft + reply.delay_s)
            if reply.hang:
                await asyncio.Event().wait()
            if reply.raise_error is not None:
                raise reply.raise_error
            self._emitted(reply)
            if reply.error is not None:
                await self.push_error(error_msg=f"Error during completion: {reply.error}")
                return
            for i, word in enumerate(reply.text.split(" ") if reply.text else []):
                if i and self._per_word > 0:
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
        finally:
            await self.push_frame(LLMFullResponseEndFrame())


@dataclass
class Utterance:
    """One thing the bot said (or was about to say).

    Parameters:
        text: The text.
        arrived: When the text reached the output.
        arrived_while_speaking: Whether the bot was speaking (or had speech queued)
            when it arrived: a system that hands text over then is talking over the bot.
        start: When the bot started saying it (None: dropped before it started).
        end: When it stopped.
        interrupted: Cut off before the end.
    """

    text: str
    arrived: float
    arrived_while_speaking: bool
    start: float | None = None
    end: float | None = None
    interrupted: bool = False

    @property
    def completed(self) -> bool:
        """Spoken to the end."""
        return self.start is not None and self.end is not None and not self.interrupted


@dataclass
class _Item:
    """A queue entry: frames released in order, spoken text in between (if any)."""

    before: list[Frame]
    utterance: Utterance | None = None
    after: list[Frame] = field(default_factory=list)


class SpeechOutput(FrameProcessor):
    """TTS + output transport stand-in: speaks text in order at a fixed rate.

    Text arrives as an LLM response (``LLMFullResponseStartFrame`` … ``EndFrame``) or
    a ``TTSSpeakFrame``. As in a real TTS + output transport, non-system frames are
    released downstream in step with the audio: the response's start frame when its
    speech starts, one ``TTSTextFrame`` per word as it is spoken, the end frame when
    it ends (so the assistant aggregator records what was actually said). Speech
    starts ``first_audio_s`` after its text arrives (or right after the speech
    before it), at ``seconds_per_word``; bot-speaking frames go both ways, once per
    continuous span. An ``InterruptionFrame`` cuts the current utterance and drops
    everything queued.

    Args:
        clock: The session clock.
        seconds_per_word: Speaking rate.
        first_audio_s: Synthesis latency to the first audio.
        on_start: Called with each utterance as the bot starts saying it.
        **kwargs: Passed to ``FrameProcessor``.
    """

    def __init__(
        self,
        *,
        clock: SessionClock,
        seconds_per_word: float = 0.2,
        first_audio_s: float = 0.1,
        on_start: Callable[[Utterance], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._clock = clock
        self._spw = seconds_per_word
        self._first = first_audio_s
        self._on_start = on_start
        self._open: _Item | None = None
        self._text: list[str] = []
        self._queue: list[_Item] = []
        self._current: Utterance | None = None
        self._speaking = False
        self._task: asyncio.Task[None] | None = None
        self.utterances: list[Utterance] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Queue downstream non-system frames behind the speech; pass the rest on."""
        await super().process_frame(frame, direction)
        if direction is not FrameDirection.DOWNSTREAM or isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
            if isinstance(frame, InterruptionFrame):
                await self._interrupt()
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._open, self._text = _Item(before=[frame]), []
        elif isinstance(frame, LLMTextFrame) and self._open is not None:
            self._text.append(frame.text)  # consumed, as a TTS does; words come back spoken
        elif isinstance(frame, LLMFullResponseEndFrame) and self._open is not None:
            item, self._open = self._open, None
            item.after.append(frame)
            self._enqueue(item, "".join(self._text).strip())
        elif isinstance(frame, TTSSpeakFrame):
            self._enqueue(_Item(before=[]), frame.text.strip())
        elif self._open is not None:
            self._open.before.append(frame)
        elif self._queue or self._current is not None:
            self._enqueue(_Item(before=[frame]), "")
        else:
            await self.push_frame(frame, direction)

    def _enqueue(self, item: _Item, text: str) -> None:
        if text:
            busy = self._current is not None or any(i.utterance for i in self._queue)
            item.utterance = Utterance(text, self._clock.now(), busy)
            self.utterances.append(item.utterance)
        self._queue.append(item)
        if self._task is None or self._task.done():
            self._task = self.create_task(self._speak_loop(), "bench-speech")

    async def _speak_loop(self) -> None:
        while self._queue:
            item = self._queue[0]
            u = item.utterance
            if u is not None and not self._speaking:
                wait = u.arrived + self._first - self._clock.now()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._queue.pop(0)
            for f in item.before:
                await self.push_frame(f)
            if u is not None:
                await self._say(u)
            for f in item.after:
                await self.push_frame(f)
            if self._speaking and not any(i.utterance for i in self._queue):
                self._speaking = False
                await self.broadcast_frame(BotStoppedSpeakingFrame)

    async def _say(self, u: Utterance) -> None:
        self._current = u
        u.start = self._clock.now()
        if self._on_start is not None:
            self._on_start(u)
        if not self._speaking:
            self._speaking = True
            await self.broadcast_frame(BotStartedSpeakingFrame)
        for i, word in enumerate(u.text.split()):
            await self.push_frame(TTSTextFrame(text=word if i == 0 else " " + word,
                                               text_type=TextType.WORD))  # fmt: skip
            await asyncio.sleep(self._spw)
        u.end = self._clock.now()
        self._current = None

    async def _interrupt(self) -> None:
        task, self._task = self._task, None
        self._queue.clear()
        self._open = None
        if task is not None and not task.done():
            await self.cancel_task(task)
        if self._current is not None:
            self._current.end = self._clock.now()
            self._current.interrupted = True
            self._current = None
        if self._speaking:
            self._speaking = False
            await self.broadcast_frame(BotStoppedSpeakingFrame)

    async def cleanup(self) -> None:
        """Stop speaking."""
        await super().cleanup()
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None
