#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""A streaming pipecat ``LLMService`` over a local GGUF model.

The chat template (including the tools block) is applied by llama.cpp from the
model's own GGUF metadata. Replies stream as ``LLMTextFrame``s between
``LLMFullResponseStartFrame`` / ``LLMFullResponseEndFrame``. An interruption
cancels the processing task, which stops generation within one token.

Tool calls: llama.cpp leaves Qwen2.5's calls in the text, so a reply that starts
like a call is held back (:class:`~pipecat_tandem.models.tool_calls.ToolCallSniffer`),
parsed at the end, and dispatched through pipecat's ``run_function_calls`` so
registered handlers run the pipecat way. A held-back reply that does not parse
is spoken as ordinary text.

Prompt cache: llama.cpp reuses the longest prefix of the previous prompt, so a
turn costs only its new tokens, unless something earlier in the context changed.
The tandem's "now" view changes every turn and sits before the user's words;
after each reply the service therefore prefills the history without such
*volatile* messages, plus the reply and the opening of the next user turn, while
the bot is speaking. The next turn then pays only for its own words (and the
fresh view, if any).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings
from pipecat.utils.types import is_given

from pipecat_tandem.models.local_server import LocalModelServer
from pipecat_tandem.models.tool_calls import (
    ParsedToolCall,
    SniffVerdict,
    ToolCallSniffer,
    parse_tool_calls,
)
from pipecat_tandem.policy.injection import EchoGuard
from pipecat_tandem.policy.loops import SentenceLoopCutter
from pipecat_tandem.policy.now_view import is_now_message
from pipecat_tandem.policy.refusals import (
    RefusalSniffer,
    RefusalVerdict,
    only_begun,
    second_opinion_messages,
    story_names,
    whole_sentences,
)
from pipecat_tandem.policy.speech_faults import SpeechApologies
from pipecat_tandem.policy.topic import called_off, without_retracted
from pipecat_tandem.policy.turn_notes import drop_answered_notes

_call_ids = itertools.count(1)
#: How long a second opinion may take to its first token before the refusal is said after all.
SECOND_OPINION_FIRST_TOKEN_S = 6.0
#: Added (as the last message) when this model is asked again after starting anew
#: a previous reply the user let finish. Only for repeats: a refusal is never talked
#: out of (after a reply the user cut short, it is asked again without that reply).
_NOT_AGAIN = "Do not repeat your previous reply: reply to the user's latest message only."
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty")


class LocalLLMService(LLMService):
    """Streams chat completions from a shared :class:`LocalModelServer`.

    Several services may share one server (one pipeline per background job);
    the server serializes their requests.

    Example::

        server = LocalModelServer(ServerConfig(model_path=ensure_weights(QWEN_05B_Q4_0)))
        llm = LocalLLMService(
            server=server,
            settings=LLMSettings(system_instruction="You are a helpful voice assistant."),
        )
    """

    supports_response_schema = True
    #: llama.cpp's grammar decoding allows optional schema properties (the background
    #: agent's step schema then spares a small model from writing every argument).
    lenient_response_schema = True

    def __init__(
        self,
        *,
        server: LocalModelServer,
        settings: LLMSettings | None = None,
        extra_request: dict[str, Any] | None = None,
        use_tools: bool = True,
        volatile: Callable[[dict[str, Any]], bool] | None = is_now_message,
        refill_cache: bool = True,
        second_opinion: LocalModelServer | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the service.

        Args:
            server: The loaded (or lazily loaded) model to use.
            settings: ``model`` (a label), ``system_instruction``, ``temperature``,
                ``max_tokens`` (default 256), ``top_p``, ``top_k``, ``seed``.
            extra_request: Extra llama.cpp request fields merged into every
                request (e.g. ``{"grammar": ...}``; not together with tools).
            use_tools: Offer the context's tools to the model. A 0.5B model calls
                them unreliably (invented names, repeated delegations); with a
                :class:`~pipecat_tandem.policy.routing.RuleRouter` deciding
                delegation instead, it is better left to talk.
            volatile: Recognizes request messages that change every turn (default:
                the tandem's "now" view); the cache refill leaves them out.
            refill_cache: After each reply, prefill the stable history plus the
                reply so the next turn reuses it (see the module docstring).
            second_opinion: A larger model asked the same request when this one's
                reply opens with a refusal or starts its previous reply again (see
                :mod:`pipecat_tandem.policy.refusals`); its reply is spoken instead.
                While it is busy (a background job on it) or slow to start, a
                repeat is asked of this model again, told not to repeat itself.
                After a reply the user cut short, this model is asked again first,
                without that reply (a fraction of the larger model's 2-4 s).
                None: such replies are spoken as they come.
            **kwargs: Passed to pipecat's ``LLMService``.
        """
        defaults = LLMSettings(
            model=server.config.model_path.name,
            system_instruction=None,
            temperature=0.2,
            max_tokens=256,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
        )
        if settings is not None:
            defaults.apply_update(settings)
        super().__init__(settings=defaults, **kwargs)
        self._server = server
        self._extra_request = dict(extra_request or {})
        self._use_tools = use_tools
        self._volatile = volatile
        self._refill_cache = refill_cache
        self._second_opinion = second_opinion
        self._refill_task: asyncio.Task[None] | None = None
        self._bot_speaking = False
        #: The user spoke over the bot since the last completion began.
        self._reply_cut_short = False
        #: The last reply the user spoke over.
        self._cut_reply: str | None = None
        #: What this service has pushed since its last completion began.
        self._said: list[str] = []
        #: (new, cached) prompt tokens of the last completion, as llama.cpp reported.
        self.last_prompt_tokens: tuple[int, int] | None = None

    @property
    def server(self) -> LocalModelServer:
        """The shared model server."""
        return self._server

    def can_generate_metrics(self) -> bool:
        """Whether TTFB/processing metrics are reported (yes)."""
        return True

    async def warm(self) -> None:
        """Load the model and prefill this service's system prompt into the prompt cache."""
        system = self._settings.system_instruction
        messages: list[dict[str, Any]] = []
        if isinstance(system, str) and system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": "Hello."})
        await self._server.warm(messages)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Run a completion for each ``LLMContextFrame``; pass every other frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._cancel_refill()
            await self.push_frame(LLMFullResponseStartFrame())
            await self.start_processing_metrics()
            try:
                await self._process_context(frame.context)
            except Exception as e:  # a model error must not kill the pipeline
                logger.exception(f"{self}: local completion failed")
                await self.push_error(error_msg=f"Local LLM completion failed: {e}", exception=e)
            finally:
                await self.stop_processing_metrics()
                await self.push_frame(LLMFullResponseEndFrame())
        else:
            if isinstance(frame, EndFrame | CancelFrame):
                await self._cancel_refill()
            self._note_speech(frame)
            await self.push_frame(frame, direction)

    def _note_speech(self, frame: Frame) -> None:
        """Follow whether the user spoke over the bot (the output stops the bot after that)."""
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, InterruptionFrame) and self._bot_speaking:
            self._reply_cut_short = True

    async def _cancel_refill(self) -> None:
        if self._refill_task is not None:
            await self.cancel_task(self._refill_task)
            self._refill_task = None

    def _schedule_refill(self, request: dict[str, Any], reply: str) -> None:
        """Prefill ``request``'s stable messages plus ``reply`` (see the module docstring)."""
        if not self._refill_cache or not reply.strip():
            return
        volatile = self._volatile or (lambda _m: False)
        messages = [m for m in request["messages"] if not volatile(m)]
        # An empty user turn after the reply puts the next turn's opening
        # ("<|im_end|>", "<|im_start|>user") in the cache too.
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": ""}]
        # As the next turn's request will read them: the answered turn without its
        # note, and without a request this turn called off.
        messages = _without_called_off(drop_answered_notes(messages))
        # Same tools as the turn: they are rendered into the system prompt.
        refill = {k: v for k, v in request.items() if k in ("tools", "tool_choice")}
        refill.update(messages=messages, max_tokens=1, temperature=0)
        self._refill_task = self.create_task(self._refill(refill), "local-llm-cache-refill")

    async def _refill(self, request: dict[str, Any]) -> None:
        try:
            async for _ in self._server.stream_chat(request):
                pass
        except Exception as e:  # only the next turn's speed is at stake
            logger.debug(f"{self}: cache refill failed: {e}")

    async def _process_context(self, context: LLMContext) -> None:
        request = await self._build_request(context)
        tools = request.get("tools") or []
        logger.trace(f"{self}: messages {request['messages']!r}")
        # Sniff even without tools: a small model imitates the tool calls in its
        # history, and a voice must never read a call's JSON aloud.
        sniffer = ToolCallSniffer()
        previous = _last_text(request["messages"], "assistant")
        said, self._said = "".join(self._said), []
        # Spoken over, or stopped before its end: the context keeps what was spoken,
        # and in the deferred eval the user came in 0.2 s after the bot's speech had
        # paused between two sentences of a longer story.
        if previous and (self._reply_cut_short or only_begun(previous, said)):
            logger.debug(f"{self}: the user spoke over the last reply: {previous[-60:]!r}")
            self._cut_reply = previous
        self._reply_cut_short = False
        # Still cut short while no reply has followed it: the user's "Actually... I've
        # changed my mind." and "Tell me they joke instead." came as two turns, and
        # the second is as much an answer to the cut story as the first.
        cut_short = bool(previous) and previous == self._cut_reply
        refusal = (
            RefusalSniffer(
                previous=previous,
                cut_short=cut_short,
                # Only a reply the user cut short is checked for its names.
                names=_made_up(request["messages"]) if cut_short else frozenset(),
                asked=_last_text(request["messages"], "user"),
            )
            if self._second_opinion is not None
            else None
        )
        await self.start_ttfb_metrics()
        reply = await self._stream(request, sniffer, refusal)
        held = sniffer.finish()
        if not held:
            if not await self._settle_refusal(request, refusal):
                self._schedule_refill(request, reply)
            return
        if sniffer.verdict is not SniffVerdict.HOLD:
            await self._push_llm_text(held)  # an undecided (blank) reply
            self._schedule_refill(request, reply)
            return
        calls = parse_tool_calls(held) or []
        if not tools:
            if calls:
                logger.warning(f"{self}: dropped a tool call with no tools offered: {held[:80]!r}")
            else:
                await self._push_llm_text(held)  # text that merely starts with a brace
            return
        offered = {_tool_name(t) for t in tools}
        known = [c for c in calls if c.name in offered]
        known = _drop_echoed(known, context)
        if known:
            await self._dispatch(known, context)
            return
        # Held back but not a usable call: broken JSON (cut off at max_tokens) or
        # a tool the model invented ("planTrip", "joke"). A voice must not read
        # JSON aloud, so answer once more with tools off: the user gets words.
        logger.debug(f"{self}: no usable tool call in {held[:80]!r}; answering without tools")
        retry = _without_tools(request)
        again = ToolCallSniffer()
        await self._stream(retry, again)
        held = again.finish()
        if again.verdict is SniffVerdict.HOLD:
            # It imitates the calls in its history: better silent than JSON aloud.
            logger.warning(f"{self}: dropped a reply that was only JSON: {held[:80]!r}")
        elif held:
            await self._push_llm_text(held)

    async def _settle_refusal(
        self, request: dict[str, Any], refusal: RefusalSniffer | None
    ) -> bool:
        """Speak what the refusal check still holds, or a second opinion instead of a refusal.

        Args:
            request: The request the reply answered.
            refusal: The check the reply went through, right after its stream (None:
                no check).

        Returns:
            True when a reply other than the one streamed was spoken (the second
            opinion's, this model's asked again, or written out again).
        """
        if refusal is None:
            return False
        # Judged while streaming, the stream stopped there: only its start is held.
        stopped = refusal.verdict.held_back
        rest = refusal.finish()
        if refusal.verdict.held_back:
            logger.debug(f"{self}: held back as a {refusal.verdict}: {rest[:100]!r}")
            repeat = refusal.verdict is RefusalVerdict.REPEAT
            again: RefusalVerdict | None = None
            clearer = _clearer_view(request["messages"], cut_short=refusal.cut_short)
            if clearer is not None:
                # Without what misled it, this model answers in a fraction of the
                # larger one's 2-4 s (pipecat's evals, see _clearer_view).
                again = await self._ask_again(request, refusal, clearer)
                if again is RefusalVerdict.TEXT:
                    return True
            # The larger model queues behind a background job on its server (5-30 s),
            # so a busy one is not asked: a repeat is asked of this model again.
            if self._second_opinion_is_free() and await self._ask_second_opinion(
                request, refusal.verdict
            ):
                return True
            if repeat and again is None:
                told = {"role": "system", "content": _NOT_AGAIN}
                again = await self._ask_again(request, refusal, [*request["messages"], told])
            if again is RefusalVerdict.TEXT:
                return True
            if again is RefusalVerdict.REFUSAL:
                # Told not to go on with its last reply, it found nothing to say to
                # the user's words ("I apologize, but I cannot continue the
                # conversation."): they were likely misheard, so they are asked for again.
                await self._push_llm_text(SpeechApologies().llm)
                return True
        if stopped and rest:
            # Only its start was generated ("A sea turtle, Luna,"): its whole sentences
            # are said, or, with none, the reply is written out after all.
            whole = whole_sentences(rest)
            if not whole:
                logger.debug(f"{self}: no second opinion; writing out {rest!r} after all")
                await self._stream(_without_tools(request), None)
                return True
            rest = whole
        if rest:
            await self._push_llm_text(rest)
        return False

    async def _push_llm_text(self, text: str) -> None:
        self._said.append(text)
        await super()._push_llm_text(text)

    def _second_opinion_is_free(self) -> bool:
        server = self._second_opinion
        if server is None:
            return False
        # A request cancelled a moment ago (the job the user just called off) still
        # holds the slot until its next token, but nothing waits for it: the second
        # opinion queues behind it (bounded by SECOND_OPINION_FIRST_TOKEN_S).
        return server.busy < server.config.slots

    async def _ask_again(
        self, request: dict[str, Any], held: RefusalSniffer, messages: list[Any]
    ) -> RefusalVerdict:
        """Ask this model once more, on ``messages``; its reply is checked as the first was.

        Returns:
            ``TEXT`` when its reply was spoken; ``REFUSAL`` or ``REPEAT`` when it was
            held back too (nothing spoken); ``UNDECIDED`` when the request failed.
        """
        logger.info(f"{self}: the reply was a {held.verdict}; asking again")
        body = _without_tools(request)
        body["messages"] = messages
        again = held.fresh()
        try:
            await self._stream(body, None, again)
        except Exception as e:  # the first reply is still there to be said
            logger.warning(f"{self}: asking again failed: {e}")
            return RefusalVerdict.UNDECIDED
        rest = again.finish()
        if again.verdict is RefusalVerdict.REFUSAL:
            logger.warning(f"{self}: asked again, the reply was a refusal: {rest[:60]!r}")
        elif again.verdict is RefusalVerdict.REPEAT:
            logger.warning(f"{self}: asked again, the reply was a repeat too: {rest[:60]!r}")
        else:
            if rest:
                await self._push_llm_text(rest)
            return RefusalVerdict.TEXT
        return again.verdict

    async def _ask_second_opinion(self, request: dict[str, Any], why: str) -> bool:
        """Stream the larger model's reply to ``request``; False if it said nothing in time."""
        server = self._second_opinion
        if server is None:
            return False
        name = server.config.model_path.name
        logger.info(f"{self}: the reply was a {why}; asking {name} for a second opinion")
        body = _without_tools(request)
        # Only the latest of the call: the larger model prefills slowly (see the policy).
        body["messages"] = second_opinion_messages(request["messages"])
        # In the background model's spare slot: its cached step prompt stays for the jobs.
        chunks = server.stream_chat(body, spare=True).__aiter__()
        spoke = False
        try:
            while True:
                wait = None if spoke else SECOND_OPINION_FIRST_TOKEN_S
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), wait)
                except StopAsyncIteration:
                    break
                delta = _delta_text(chunk)
                if delta:
                    await self._push_llm_text(delta)
                    spoke = True
        except TimeoutError:
            logger.warning(f"{self}: no second opinion within {SECOND_OPINION_FIRST_TOKEN_S} s")
        except Exception as e:  # the refusal is still there to be said
            logger.warning(f"{self}: the second opinion failed: {e}")
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return spoke

    async def _stream(
        self,
        request: dict[str, Any],
        sniffer: ToolCallSniffer | None,
        refusal: RefusalSniffer | None = None,
    ) -> str:
        """Stream one completion, pushing released text; returns the text generated.

        A reply that says one of its sentences again stops there (``policy/loops.py``):
        the rest is neither generated nor spoken.

        Args:
            request: The chat completion request.
            sniffer: Holds a reply that opens like a tool call (None: no check).
            refusal: Holds a reply that opens like a refusal or a repeat (None: no
                check). Generation stops as soon as it holds the reply back: another
                reply is asked for, and should none come, the start is written out
                again (:meth:`_settle_refusal`). In pipecat's deferred eval the 0.5B
                went on for 2 s with the story the user cut short, after its verdict
                at the story's name.
        """
        first = True
        generated: list[str] = []
        loops = SentenceLoopCutter()
        stream = self._server.stream_chat(request)
        try:
            async for chunk in stream:
                timings = chunk.get("timings")
                if isinstance(timings, dict) and "prompt_n" in timings:
                    self.last_prompt_tokens = (
                        int(timings.get("prompt_n") or 0),
                        int(timings.get("cache_n") or 0),
                    )
                    logger.debug(
                        f"{self}: prompt {self.last_prompt_tokens[0]} new + "
                        f"{self.last_prompt_tokens[1]} cached tokens"
                    )
                delta = _delta_text(chunk)
                if not delta:
                    continue
                generated.append(delta)
                if first:
                    await self.stop_ttfb_metrics()
                    first = False
                released = sniffer.feed(delta) if sniffer else delta
                if released and refusal is not None:
                    released = refusal.feed(released)
                    if refusal.verdict.held_back:
                        break
                if released:
                    released = loops.feed(released)
                if released:
                    await self._push_llm_text(released)
                if loops.cut:
                    logger.warning(f"{self}: the reply said a sentence again; cut: {delta!r}")
                    break
            else:
                rest = loops.finish()
                if rest:
                    await self._push_llm_text(rest)
                elif loops.cut:
                    logger.warning(f"{self}: the reply ended on a sentence said before; cut")
        finally:
            await stream.aclose()  # type: ignore[attr-defined]  # stops the generation
        return "".join(generated)

    async def _dispatch(self, calls: list[ParsedToolCall], context: LLMContext) -> None:
        logger.debug(f"{self}: tool calls from text: {[c.name for c in calls]}")
        await self.run_function_calls(
            [
                FunctionCallFromLLM(
                    function_name=call.name,
                    tool_call_id=f"call_local_{next(_call_ids)}_{uuid.uuid4().hex[:8]}",
                    arguments=call.arguments,
                    context=context,
                )
                for call in calls
            ]
        )

    async def _build_request(
        self,
        context: LLMContext,
        *,
        system_instruction: str | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        system = system_instruction or self._settings.system_instruction
        params = await self.get_llm_adapter().get_llm_invocation_params(
            context,
            system_instruction=system if isinstance(system, str) and system else None,
            # llama.cpp's templates know system/user/assistant/tool only.
            convert_developer_to_user=True,
        )
        # The machinery's notes in earlier user turns were for those turns' replies.
        messages = drop_answered_notes(list(params["messages"]))
        # A small model reads the words a user took back as the request, and answers
        # from a request the user called off: both are left out of what it reads.
        retracted = [_retracted(m) for m in messages]
        request: dict[str, Any] = {"messages": _without_called_off(retracted)}
        tools = params.get("tools")
        if self._use_tools and isinstance(tools, list) and tools:
            request["tools"] = tools
            choice = params.get("tool_choice")
            if isinstance(choice, (str, dict)):
                request["tool_choice"] = choice
        for key in _SAMPLING_KEYS:
            value = getattr(self._settings, key, None)
            if is_given(value) and value is not None:
                request[key] = value
        limit = max_tokens if max_tokens is not None else self._settings.max_tokens
        if is_given(limit) and limit is not None:
            request["max_tokens"] = int(limit)
        request.update(self._extra_request)
        if "tools" in request:
            request.pop("grammar", None)  # llama.cpp refuses a grammar together with tools
        return request

    async def run_inference(
        self,
        context: LLMContext,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """Run a one-shot completion outside the pipeline.

        Args:
            context: Messages (and tools) to complete.
            max_tokens: Overrides the service's ``max_tokens``.
            system_instruction: Overrides the service's system instruction.
            response_schema: A JSON schema the reply must follow (enforced by
                llama.cpp's grammar-constrained decoding).

        Returns:
            The reply text (a tool call comes back as its JSON text), or None.
        """
        request = await self._build_request(
            context, system_instruction=system_instruction, max_tokens=max_tokens
        )
        schema = self._check_response_schema(response_schema)
        if schema is not None:
            request.pop("tools", None)
            request.pop("tool_choice", None)
            request.pop("grammar", None)
            request["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
        # Streamed, so cancelling the caller (a cancelled background job) stops the
        # generation within one token instead of letting it run to the end.
        parts: list[str] = []
        scanner = _JsonEnd() if schema is not None else None
        async for chunk in self._server.stream_chat(request):
            delta = _delta_text(chunk)
            parts.append(delta)
            if scanner is not None and scanner.feed(delta):
                # The grammar lets the model pad a finished value with blanks up to
                # max_tokens; stop at the value's end (closing the stream stops it).
                break
        text = "".join(parts)
        return text or None


class _JsonEnd:
    """Tells when a streamed JSON object or array is complete (strings and escapes aware)."""

    def __init__(self) -> None:
        self._depth = 0
        self._started = False
        self._in_string = False
        self._escape = False

    def feed(self, text: str) -> bool:
        """Add text; True once the top-level value has closed."""
        for ch in text:
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
                self._started = True
            elif ch in "}]":
                self._depth -= 1
                if self._started and self._depth == 0:
                    return True
        return False


def _drop_echoed(calls: list[ParsedToolCall], context: LLMContext) -> list[ParsedToolCall]:
    """Drop calls that only repeat the data given to the model since the user last spoke.

    Developer and tool messages after the last user message are machinery and tool
    output (deliveries, results), not requests: a reply that turns their text into a
    call is an echo of data (e.g. a document), not something the user asked for.
    """
    guard = EchoGuard()
    for message in reversed(context.get_messages()):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "user":
            break
        if role in ("developer", "tool"):
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if isinstance(content, str):
                guard.remember(content, now=0.0)
    kept = []
    for call in calls:
        reason = guard.refusal(call.name, call.arguments)
        if reason is None:
            kept.append(call)
        else:
            logger.warning(f"refused a tool call from text ({call.name}): {reason}")
    return kept


def _without_tools(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in ("tools", "tool_choice")}


def _clearer_view(messages: list[Any], *, cut_short: bool) -> list[Any] | None:
    """The request's messages without what misled a refusal or a repeat; None if nothing did.

    Two things are left out:

    - The reply the user cut short. On the 12 contexts of pipecat's deferred eval
      where the user had cut a story short to ask for a joke (4 samples each), told
      in a note not to go on with the story, the 0.5B told no joke in 48 (18
      refusals, 26 greetings, 4 the story again); not shown the story, it told one
      in 40 of 48, and offered a story in the other 8, which is held back
      (:func:`~pipecat_tandem.policy.pastimes.offers_other`).
    - A request the latest turn calls off, with its replies ("Write me a report
      about sea turtles." / "On it." before "Actually, never mind the report. Tell
      me a joke instead."): the 0.5B refused the joke in 4 of 32 samples of
      pipecat's cancellation evals as read, and in 1 of 32 without the report.
    """
    view = messages
    last = _last_index(messages, "assistant")
    if cut_short and last is not None:
        view = [*view[:last], *view[last + 1 :]]
    view = _without_called_off(view, latest=True)
    return None if view == messages else view


def _last_index(messages: list[Any], role: str) -> int | None:
    """The index of the last message of ``role`` (None if none)."""
    return next((i for i in range(len(messages) - 1, -1, -1) if _role(messages[i]) == role), None)


def _last_text(messages: list[Any], role: str) -> str:
    """The text of the last message of ``role`` ("" if none or not text)."""
    last = _last_index(messages, role)
    content = messages[last].get("content") if last is not None else None
    return content if isinstance(content, str) else ""


def _retracted(message: Any) -> Any:
    """A user message without the words its own "never mind that" took back (a copy)."""
    if _role(message) != "user" or not isinstance(message.get("content"), str):
        return message
    text = without_retracted(message["content"])
    return message if text == message["content"] else {**message, "content": text}


def _without_called_off(messages: list[Any], *, latest: bool = False) -> list[Any]:
    """The messages without the user requests a later turn called off, nor their replies.

    A cancel in the latest user turn calls off nothing unless ``latest``: the reply
    to it may well say what it stopped. A request's replies are the assistant (and
    tool) messages right after it; anything else that follows, such as a result, stays.
    """
    users = [i for i, m in enumerate(messages) if _role(m) == "user"]
    earlier = users if latest else users[:-1]
    texts = [c if isinstance(c := messages[i].get("content"), str) else "" for i in earlier]
    gone = {earlier[k] for k in called_off(texts)}
    if not gone:
        return messages
    out: list[Any] = []
    dropping = False
    for i, message in enumerate(messages):
        if i in gone:
            dropping = True
        elif dropping and _role(message) not in ("assistant", "tool"):
            dropping = False
        if not dropping:
            out.append(message)
    return out


def _made_up(messages: list[Any]) -> frozenset[str]:
    """The names the last assistant message made up (see ``story_names``)."""
    last = _last_index(messages, "assistant")
    if last is None or not isinstance(messages[last].get("content"), str):
        return frozenset()
    others = [
        m["content"]
        for i, m in enumerate(messages)
        if i != last and isinstance(m, dict) and isinstance(m.get("content"), str)
    ]
    return story_names(messages[last]["content"], others)


def _role(message: Any) -> str:
    return str(message.get("role", "")) if isinstance(message, dict) else ""


def _tool_name(tool: Any) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else ""


def _delta_text(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices")
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content")
    return content if isinstance(content, str) else ""
