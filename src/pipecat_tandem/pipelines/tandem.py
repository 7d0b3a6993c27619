#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The full tandem pipeline for any services passed in.

::

    transport.input() → [perception] → STT → DelegationProcessor → user aggregator
      → interaction LLM → ResultInterleaver → TTS → transport.output() → assistant aggregator

The delegation processor sits where it sees final transcriptions and camera frames
on their way in; the interleaver sits after the interaction model, where it sees the
model's responses downstream, the bot-speaking frames coming upstream from the output
and the user-speaking frames the user aggregator broadcasts.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import SegmentedSTTService, STTService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from pipecat_tandem.background.agent import BackgroundAgent
from pipecat_tandem.background.jobs import JobRegistry
from pipecat_tandem.background.runner import BackgroundRunner, InProcessRunner
from pipecat_tandem.background.tools import default_tools
from pipecat_tandem.background.tools.base import Tool
from pipecat_tandem.clock import LoopClock, SessionClock
from pipecat_tandem.observe.event_log import EventLog
from pipecat_tandem.policy.job_limits import JobLimits
from pipecat_tandem.policy.now_view import NowView
from pipecat_tandem.policy.unheard_speech import UnheardSpeech
from pipecat_tandem.processors.awareness_processor import AwarenessProcessor
from pipecat_tandem.processors.delegation_processor import DelegationProcessor, RouterLike
from pipecat_tandem.processors.first_clause_processor import FirstClauseProcessor
from pipecat_tandem.processors.reply_hold_gate import ReplyHoldGate
from pipecat_tandem.processors.reply_watchdog import ReplyWatchdog
from pipecat_tandem.processors.result_interleaver import ResultInterleaver
from pipecat_tandem.processors.speech_guard import SpeechGuard, limit_speech_time
from pipecat_tandem.processors.transcript_watch import TranscriptWatch
from pipecat_tandem.turns.fresh_transcript_turn_stop_strategy import (
    FreshTranscriptTurnStopStrategy,
)
from pipecat_tandem.turns.speculative_turn_stop_strategy import SpeculativeTurnStopStrategy

Background = BackgroundRunner | BackgroundAgent | LLMService | Callable[[], LLMService]


@dataclass
class TandemPipeline:
    """What :func:`build_tandem_pipeline` assembled.

    Parameters:
        pipeline: The pipecat pipeline, ready for a ``PipelineWorker``.
        context: The live conversation context.
        delegation: The delegation processor (its Python API starts jobs).
        interleaver: The result interleaver.
        runner: The background runner.
        user_aggregator: pipecat's user aggregator.
        assistant_aggregator: pipecat's assistant aggregator.
        event_log: The session event log.
        clock: The session clock.
    """

    pipeline: Pipeline
    context: LLMContext
    delegation: DelegationProcessor
    interleaver: ResultInterleaver
    runner: BackgroundRunner
    user_aggregator: LLMUserAggregator
    assistant_aggregator: LLMAssistantAggregator
    event_log: EventLog
    clock: SessionClock


def make_runner(
    background: Background, *, tools: list[Tool] | None = None, max_concurrency: int = 2
) -> BackgroundRunner:
    """A runner from a runner, an agent, a service, or a service factory."""
    if isinstance(background, BackgroundRunner):
        return background
    if isinstance(background, BackgroundAgent):
        agent = background
    elif isinstance(background, LLMService):
        agent = BackgroundAgent(llm=background, tools=tools)
    elif callable(background):
        agent = BackgroundAgent(llm_factory=background, tools=tools)
    else:
        raise TypeError(
            "background must be a BackgroundRunner, BackgroundAgent, LLMService or a "
            f"callable returning an LLMService, not {type(background).__name__}"
        )
    return InProcessRunner(agent, max_concurrency=max_concurrency)


#: The ``ResultInterleaver`` options ``build_tandem_pipeline`` passes through.
INTERLEAVER_OPTIONS = frozenset({"max_redeliveries", "confirm_timeout_s", "wording", "name"})


def default_perception(
    clock: SessionClock, event_log: EventLog | None = None
) -> list[FrameProcessor]:
    """Micro-turn ingest + encoder-free fusion over a call's media, on ``clock``.

    What ``tandem run`` puts after the transport input: 0.2 s windows of audio
    and up to 5 camera images a second become ``FusedMicroTurnFrame`` s
    (``tandem.fused/2``), and the cue detectors' ``CueFrame`` s feed the
    awareness processor (visual change, motion, repetitions) and the now view.

    Args:
        clock: The session clock the rest of the pipeline uses.
        event_log: The session's event log (detected cues are recorded there).
    """
    from pipecat_tandem.processors.encoder_free_fusion_processor import (
        EncoderFreeFusionProcessor,
    )
    from pipecat_tandem.processors.micro_turn_ingest_processor import (
        MicroTurnIngestProcessor,
    )

    return [MicroTurnIngestProcessor(clock=clock), EncoderFreeFusionProcessor(event_log=event_log)]


def build_tandem_pipeline(
    *,
    interaction_llm: LLMService,
    background: Background,
    transport: BaseTransport | None = None,
    stt: FrameProcessor | None = None,
    tts: FrameProcessor | None = None,
    perception: Sequence[FrameProcessor] = (),
    context: LLMContext | None = None,
    tools: list[Tool] | None = None,
    documents_dir: str | Path | None = None,
    vad_analyzer: VADAnalyzer | None = None,
    turn_analyzer: BaseTurnAnalyzer | None = None,
    user_params: LLMUserAggregatorParams | None = None,
    router: RouterLike | None = None,
    awareness: bool = True,
    now_view: NowView | None = None,
    first_clause: bool = False,
    speculative_turns: bool = False,
    registry: JobRegistry | None = None,
    min_gap_s: float = 0.5,
    verbatim: bool = False,
    stale_mode: str = "offer",
    max_concurrency: int = 2,
    clock: SessionClock | None = None,
    event_log: EventLog | None = None,
    record_path: str | Path | None = None,
    job_limits: JobLimits | None = None,
    speech_guard: bool = True,
    speech_timeout_s: float | None = 20.0,
    reply_hold: bool = True,
    reply_timeout_s: float | None = 10.0,
    transcript_timeout_s: float | None = 4.0,
    **interleaver_args: Any,
) -> TandemPipeline:
    """Assemble the tandem pipeline around the given services.

    Args:
        interaction_llm: The fast model (any pipecat ``LLMService`` with function calling).
        background: The slow side: a runner, an agent, a service (jobs take turns) or a
            factory of services (jobs run in parallel).
        transport: Where media comes from and goes to (omit for tests and custom wiring).
        stt: Speech-to-text service.
        tts: Text-to-speech service.
        perception: Processors placed right after the transport input (micro-turn
            ingest, encoder-free fusion...).
        context: The conversation context (a new one by default).
        tools: Background tools (default: the built-in offline tools).
        documents_dir: A folder the document-search tool indexes.
        vad_analyzer: VAD for the user aggregator (e.g. ``SileroVADAnalyzer()``).
        turn_analyzer: End-of-turn model for the user aggregator (default: pipecat's,
            a new smart-turn v3).
        user_params: Full user-aggregator params (overrides ``vad_analyzer`` and
            ``turn_analyzer``).
        router: Fallback router deciding what the background takes.
        awareness: Add the :class:`AwarenessProcessor` (live "now" view, timed and
            cue-triggered interjections, repetition counting).
        now_view: How the awareness processor renders the "now" view (default
            :class:`NowView`; a local model wants ``only_when_informative``).
        first_clause: Speak each reply's opening clause without waiting for its
            full sentence (:class:`FirstClauseProcessor`; for a slow model).
        speculative_turns: Start the reply on the transcript while the turn
            analyzer is still deciding, held back until the turn ends
            (:class:`SpeculativeTurnStopStrategy`). It pays when the LLM does not
            share the CPU with the turn analyzer; on the 2-core machine we measure
            on it gained nothing measurable.
        registry: Job limits.
        min_gap_s: Shared quiet before a ``when_idle`` delivery.
        verbatim: Speak results verbatim instead of weaving them in.
        stale_mode: ``offer`` or ``drop`` results the user moved away from.
        max_concurrency: Background jobs running at once.
        clock: The session clock (one is made).
        event_log: The session event log (one is made, writing to ``record_path``).
        record_path: A JSONL file for the event log.
        job_limits: Caps on a session's jobs (default: 4 running, 10 a minute).
        speech_guard: Add the :class:`SpeechGuard` (one short apology when the STT,
            the TTS or the interaction model fails, never over the user or a
            delivery in flight).
        speech_timeout_s: Longest wait for each step of a pipecat STT/TTS service's
            request (also inside a ``tts`` given as a pipeline); a hung one ends
            in an error instead of stalling the call. ``None``: no limit. The
            embedded Whisper and hibari have their own 15 s limit inside this one.
        reply_timeout_s: Longest wait for the interaction model's first token (or
            tool call) of a reply. A model that stays silent longer is interrupted
            (so the next turn is answered) and, with the speech guard, the user hears
            one short sentence (:class:`ReplyWatchdog`). ``None``: no limit.
        transcript_timeout_s: With a streaming (not segmented) pipecat STT, longest
            wait after the user's voice ends for any transcript of a turn with
            words in it; a turn that gets none is told "Sorry, I didn't catch
            that." instead of being dropped like a cough (:class:`TranscriptWatch`).
            ``None``: no watch.
        reply_hold: With a transport and a TTS, a reply whose first audio is ready
            while the caller is making sound again, or within a pause shorter than
            people make between two sentences, waits for them to go quiet or take
            the turn, and the first second of a reply pauses for a caller who goes
            on after a longer pause (:class:`ReplyHoldGate`), so the bot does not
            start over them.
        **interleaver_args: More :class:`ResultInterleaver` options
            (``max_redeliveries``, ``confirm_timeout_s``, ``wording``, ``name``).

    Raises:
        TypeError: An option this builder does not know (a misspelling would
            otherwise be dropped silently), or a service, processor or option
            of the wrong type (named, with what it expects).

    Returns:
        The assembled :class:`TandemPipeline`.
    """
    unknown = sorted(set(interleaver_args) - INTERLEAVER_OPTIONS)
    if unknown:
        hints = [
            f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            for name in unknown
            for close in [difflib.get_close_matches(name, _BUILDER_OPTIONS, n=1)]
        ]
        raise TypeError(f"build_tandem_pipeline got unknown option(s): {', '.join(hints)}")
    _check_arguments(
        interaction_llm=interaction_llm,
        transport=transport,
        stt=stt,
        tts=tts,
        perception=perception,
        context=context,
        tools=tools,
        vad_analyzer=vad_analyzer,
        turn_analyzer=turn_analyzer,
        user_params=user_params,
        now_view=now_view,
        registry=registry,
        min_gap_s=min_gap_s,
        max_concurrency=max_concurrency,
        clock=clock,
        event_log=event_log,
        record_path=record_path,
        job_limits=job_limits,
        speech_timeout_s=speech_timeout_s,
        reply_timeout_s=reply_timeout_s,
        transcript_timeout_s=transcript_timeout_s,
    )
    clock = clock or (event_log.clock if event_log else LoopClock())
    event_log = event_log or EventLog(clock, path=record_path)
    if tools is None:
        tools = default_tools(documents_dir=documents_dir)
    runner = make_runner(background, tools=tools, max_concurrency=max_concurrency)
    context = context or LLMContext()
    delegation = DelegationProcessor(
        runner=runner,
        llm=interaction_llm,
        context=context,
        registry=registry,
        router=router,
        clock=clock,
        event_log=event_log,
        job_limits=job_limits,
    )
    existing = context.tools.standard_tools if isinstance(context.tools, ToolsSchema) else []
    names = {s.name for s in delegation.function_schemas()}
    context.set_tools(
        ToolsSchema(
            standard_tools=[s for s in existing if s.name not in names]
            + delegation.function_schemas()
        )
    )
    if user_params is None:
        # A turn with no words (a cough) must not hold a waiting result for long. Our
        # stop strategies end it themselves, 2 s after the voice (``no_words_s``), so
        # pipecat's watchdog is only a safety net at its default: a short watchdog
        # can fire on a VAD stop that lands at its timeout, before the turn's words
        # (see fresh_transcript_turn_stop_strategy). pipecat's own strategies leave
        # the empty turn to the watchdog: keep that one short.
        strategies = (
            UserTurnStrategies(stop=[_stop_strategy(turn_analyzer, speculative_turns)])
            if turn_analyzer is not None
            else None
        )
        user_params = LLMUserAggregatorParams(
            vad_analyzer=vad_analyzer,
            user_turn_strategies=strategies,
            user_turn_stop_timeout=5.0 if strategies is not None else 2.0,
        )
    pair = LLMContextAggregatorPair(context, user_params=user_params)
    interleaver = ResultInterleaver(
        min_gap_s=min_gap_s,
        verbatim=verbatim,
        stale_mode=stale_mode,
        clock=clock,
        event_log=event_log,
        context=context,
        **interleaver_args,
    )
    if not isinstance(reply_hold, bool):
        raise TypeError(
            f"build_tandem_pipeline: reply_hold must be a bool, got {_kind(reply_hold)}"
        )
    stages: list[FrameProcessor] = []
    hold = (
        ReplyHoldGate(clock=clock, event_log=event_log)
        if reply_hold and transport is not None and tts is not None
        else None
    )
    if transport is not None:
        stages.append(transport.input())
    if hold is not None:
        stages.append(hold.tap)
    stages.extend(perception)
    if speech_timeout_s is not None:
        for service in (*_flatten(stt), *_flatten(tts)):
            limit_speech_time(service, speech_timeout_s)
    if speech_guard and (stt is not None or tts is not None):
        # Before the STT: both services push their errors upstream past it.
        stages.append(
            SpeechGuard(
                stt=stt,
                tts=tts,
                busy=lambda: interleaver.scheduler.in_flight is not None,
                clock=clock,
                event_log=event_log,
            )
        )
    if stt is not None:
        stages.append(stt)
        if transcript_timeout_s is not None and _is_streaming_stt(stt):
            recovery = user_params.empty_user_turn
            unheard = UnheardSpeech(
                timeout_s=transcript_timeout_s,
                # pipecat's recovery already asks the user to repeat such a turn.
                quiet_when_interrupting=bool(recovery and recovery.interrupted_prompt),
            )
            stages.append(TranscriptWatch(unheard=unheard, clock=clock, event_log=event_log))
    awareness_proc: AwarenessProcessor | None = None
    if awareness:
        awareness_proc = AwarenessProcessor(
            registry=delegation.registry, event_log=event_log, now_view=now_view
        )
        stages.append(awareness_proc)
        # The gate holds the aggregator's empty-turn recovery, known by its prompts.
        awareness_proc.gate.empty_turn = user_params.empty_user_turn
        # Jobs the router starts are acknowledged at the same gate, not by the model.
        delegation.answerer = awareness_proc.gate
    stages += [delegation, pair.user()]
    if awareness_proc is not None:
        # A turn that was only a timer/cue request is acknowledged verbatim and
        # never reaches the interaction model (which would claim it happened).
        stages.append(awareness_proc.gate)
    if reply_timeout_s is not None:
        watchdog = ReplyWatchdog(timeout_s=reply_timeout_s, clock=clock, event_log=event_log)
        stages += [watchdog, interaction_llm, watchdog.tail, interleaver]
    else:
        stages += [interaction_llm, interleaver]
    if tts is not None:
        if first_clause:
            stages.append(FirstClauseProcessor())
        stages.append(tts)
    if hold is not None:
        stages.append(hold)
    if transport is not None:
        stages.append(transport.output())
    stages.append(pair.assistant())
    return TandemPipeline(
        pipeline=Pipeline(stages),
        context=context,
        delegation=delegation,
        interleaver=interleaver,
        runner=runner,
        user_aggregator=pair.user(),
        assistant_aggregator=pair.assistant(),
        event_log=event_log,
        clock=clock,
    )


_BUILDER_OPTIONS = [
    *(n for n in inspect.signature(build_tandem_pipeline).parameters if n != "interleaver_args"),
    *INTERLEAVER_OPTIONS,
]


#: What each checked argument must be: (accepted types, how to say it, may be None).
_EXPECTED: dict[str, tuple[type | tuple[type, ...], str, bool]] = {
    "interaction_llm": (LLMService, "a pipecat LLMService (e.g. OpenAILLMService(...))", False),
    "transport": (BaseTransport, "a pipecat transport (BaseTransport) or None", True),
    "stt": (FrameProcessor, "a pipecat STT service (a FrameProcessor) or None", True),
    "tts": (FrameProcessor, "a pipecat TTS service (a FrameProcessor) or None", True),
    "context": (LLMContext, "an LLMContext or None", True),
    "vad_analyzer": (VADAnalyzer, "a VADAnalyzer (e.g. SileroVADAnalyzer()) or None", True),
    "turn_analyzer": (BaseTurnAnalyzer, "a BaseTurnAnalyzer or None", True),
    "user_params": (LLMUserAggregatorParams, "LLMUserAggregatorParams or None", True),
    "now_view": (NowView, "a NowView or None", True),
    "registry": (JobRegistry, "a JobRegistry or None", True),
    "event_log": (EventLog, "an EventLog or None", True),
    "record_path": ((str, Path), "a file path (str or Path) or None", True),
    "job_limits": (JobLimits, "a JobLimits or None", True),
}


def _flatten(processor: FrameProcessor | None) -> list[FrameProcessor]:
    """The processors inside ``processor`` (a pipeline given as the TTS), itself otherwise."""
    if processor is None:
        return []
    inner = getattr(processor, "processors", None)  # a leaf's is empty
    if not isinstance(inner, list) or not inner:
        return [processor]
    return [q for p in inner for q in _flatten(p)]


def _is_streaming_stt(stt: FrameProcessor) -> bool:
    """Whether ``stt`` holds a pipecat STT service that streams (not a segmented one)."""
    return any(
        isinstance(p, STTService) and not isinstance(p, SegmentedSTTService) for p in _flatten(stt)
    )


def _kind(value: Any) -> str:
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(value).__name__} {shown}"


def _check_arguments(**arguments: Any) -> None:
    """Refuse a wrong type up front, naming the argument.

    A string or number passed as a service used to surface much later as a
    bare ``AttributeError`` from deep inside pipecat ('str' object has no
    attribute '_prev'), which names neither the argument nor the fix.

    Raises:
        TypeError: The first argument that is not what it must be.
    """
    for name, (types, expected, optional) in _EXPECTED.items():
        value = arguments[name]
        if value is None and optional:
            continue
        if not isinstance(value, types):
            raise TypeError(f"build_tandem_pipeline: {name} must be {expected}, got {_kind(value)}")
    perception = arguments["perception"]
    if isinstance(perception, FrameProcessor | str | bytes) or not isinstance(perception, Sequence):
        raise TypeError(
            "build_tandem_pipeline: perception must be a list of FrameProcessors, "
            f"got {_kind(perception)}"
        )
    for i, p in enumerate(perception):
        if not isinstance(p, FrameProcessor):
            raise TypeError(
                f"build_tandem_pipeline: perception[{i}] must be a FrameProcessor, got {_kind(p)}"
            )
    tools = arguments["tools"]
    if tools is not None:
        if isinstance(tools, str | bytes | dict) or not isinstance(tools, Sequence):
            raise TypeError(
                f"build_tandem_pipeline: tools must be a list of Tools or None, got {_kind(tools)}"
            )
        for i, tool in enumerate(tools):
            if not isinstance(tool, Tool):
                raise TypeError(
                    f"build_tandem_pipeline: tools[{i}] must be a Tool, got {_kind(tool)}"
                )
    for name in ("speech_timeout_s", "reply_timeout_s", "transcript_timeout_s"):
        timeout = arguments[name]
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < math.inf
        ):
            raise TypeError(
                f"build_tandem_pipeline: {name} must be a positive number of seconds "
                f"or None, got {_kind(timeout)}"
            )
    min_gap_s = arguments["min_gap_s"]
    if isinstance(min_gap_s, bool) or not isinstance(min_gap_s, int | float):
        raise TypeError(
            f"build_tandem_pipeline: min_gap_s must be a number of seconds, got {_kind(min_gap_s)}"
        )
    max_concurrency = arguments["max_concurrency"]
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise TypeError(
            "build_tandem_pipeline: max_concurrency must be an integer, "
            f"got {_kind(max_concurrency)}"
        )
    clock = arguments["clock"]
    if clock is not None and not callable(getattr(clock, "now", None)):
        raise TypeError(
            "build_tandem_pipeline: clock must be a SessionClock (anything with now()), "
            f"got {_kind(clock)}"
        )


def _stop_strategy(
    turn_analyzer: BaseTurnAnalyzer, speculative: bool
) -> TurnAnalyzerUserTurnStopStrategy:
    if speculative:
        return SpeculativeTurnStopStrategy(turn_analyzer=turn_analyzer)
    return FreshTranscriptTurnStopStrategy(turn_analyzer=turn_analyzer)
