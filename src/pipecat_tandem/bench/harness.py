#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Runs one scenario through one system and records what happened.

Two systems, same instruments (see :mod:`pipecat_tandem.bench.fakes`), same user
aggregator settings, same scripted user:

* ``tandem``: :func:`~pipecat_tandem.pipelines.tandem.build_tandem_pipeline`
  (delegation processor, pipecat's aggregators, result interleaver, background
  agent on the in-process runner).
* ``llm_with_backend``: pipecat 1.14's own ``LLMWithBackend`` with a
  ``BackendLLMWorker`` on the in-process bus, between pipecat's user and assistant
  aggregators.

What is recorded is observed, not self-reported: the user's speech as scripted,
the instant the background model produced each answer, and every utterance the
speech output spoke (or had cut off).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    TranscriptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipecat_tandem.bench.brains import ANS, QID, background_brain, interaction_brain
from pipecat_tandem.bench.fakes import Reply, ScriptedLLM, SpeechOutput, Utterance
from pipecat_tandem.bench.scenarios import SYSTEMS, Scenario, Speech
from pipecat_tandem.clock import LoopClock

#: Shared quiet the tandem waits for before a delivery (its default).
MIN_GAP_S = 0.5
#: A wordless user turn ends after this (both systems; the tandem builder's default).
USER_TURN_STOP_TIMEOUT_S = 2.0
RESULT_TOKEN = ("ANS-", "OFFER-", "FAIL-")


@dataclass
class RunRecord:
    """What one run showed (plain data, JSON-ready)."""

    system: str
    scenario: str
    seed: int
    until: float
    seconds_per_word: float = 0.2
    queries: list[dict[str, Any]] = field(default_factory=list)
    user_spans: list[dict[str, Any]] = field(default_factory=list)
    ready: dict[str, float] = field(default_factory=dict)
    failed_at: dict[str, float] = field(default_factory=dict)
    utterances: list[dict[str, Any]] = field(default_factory=list)
    self_reported: dict[str, Any] | None = None

    def on_output(self, reply: Reply, t: float) -> None:
        """The background model produced ``reply`` at ``t``."""
        if reply.error is not None:
            for q in reply.qids:
                self.failed_at.setdefault(q, round(t, 6))
        for q in ANS.findall(reply.text):
            self.ready.setdefault(q, round(t, 6))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)


def worker_with_start_event(pipeline: Pipeline) -> tuple[PipelineWorker, asyncio.Event]:
    """A worker for a run that feeds its own frames, and an event set once it has started.

    No idle timeout and no RTVI: benchmarks and tests drive the pipeline themselves
    and wait for the event before queueing their first frame.
    """
    worker = PipelineWorker(
        pipeline, params=PipelineParams(), cancel_on_idle_timeout=False, enable_rtvi=False
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_w: PipelineWorker, _f: StartFrame) -> None:
        started.set()

    return worker, started


def user_params() -> LLMUserAggregatorParams:
    """The user aggregator settings both systems get (turns driven by the script)."""
    return LLMUserAggregatorParams(
        user_turn_strategies=ExternalUserTurnStrategies(),
        user_turn_stop_timeout=USER_TURN_STOP_TIMEOUT_S,
    )


def _speech_frames(s: Speech) -> list[tuple[float, Frame | str]]:
    items: list[tuple[float, Frame | str]] = [(s.t, ProposedUserStartedSpeakingFrame())]
    if s.text:
        items.append(
            (s.t + s.duration, TranscriptionFrame(text=s.text, user_id="user", timestamp=""))
        )
    items.append((s.t + s.duration + 0.01, ProposedUserStoppedSpeakingFrame()))
    return items


class _Driver:
    """Plays the scripted user into a worker, plus the reactive barge-in."""

    def __init__(self, scenario: Scenario, clock: LoopClock, record: RunRecord) -> None:
        self._scenario = scenario
        self._clock = clock
        self._record = record
        self._heap: list[tuple[float, int, Frame | str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._base = 0.0
        self._barged = False
        for s in scenario.speech:
            self._add(s)

    def _add(self, s: Speech) -> None:
        for t, item in _speech_frames(s):
            heapq.heappush(self._heap, (t, next(self._seq), item))
        heapq.heappush(self._heap, (s.t, next(self._seq), f"span:{s.text or ''}"))
        heapq.heappush(self._heap, (s.t + s.duration, next(self._seq), "span-end"))

    def on_utterance_start(self, u: Utterance) -> None:
        after = self._scenario.barge_in_after_s
        if after is None or self._barged or not any(k in u.text for k in RESULT_TOKEN):
            return
        self._barged = True
        t = self._clock.now() - self._base + after
        self._add(Speech(round(t, 6), "wait", 0.5))
        self._wake.set()

    async def run(self, worker: PipelineWorker, started: asyncio.Event) -> None:
        await started.wait()
        self._base = self._clock.now()
        while True:
            target = self._heap[0][0] if self._heap else self._scenario.until
            delay = self._base + target - self._clock.now()
            if delay > 1e-9:
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            if not self._heap:
                break
            _, _, item = heapq.heappop(self._heap)
            now = round(self._clock.now(), 6)
            if item == "span-end":
                self._record.user_spans[-1]["end"] = now
            elif isinstance(item, str):
                text = item.removeprefix("span:") or None
                self._record.user_spans.append({"start": now, "end": None, "text": text})
            else:
                await worker.queue_frame(item)
        await worker.queue_frame(EndFrame())


def _build_tandem(
    scenario: Scenario, clock: LoopClock, output: SpeechOutput, record: RunRecord
) -> tuple[Pipeline, Any]:
    from pipecat_tandem.background.jobs import JobRegistry
    from pipecat_tandem.pipelines.tandem import build_tandem_pipeline

    bg = background_brain("tandem", scenario)
    tandem = build_tandem_pipeline(
        interaction_llm=ScriptedLLM(interaction_brain("tandem")),
        background=lambda: ScriptedLLM(bg, on_output=record.on_output, clock=clock),
        tts=output,
        user_params=user_params(),
        registry=JobRegistry(default_deadline_s=scenario.deadline_s)
        if scenario.deadline_s
        else None,
        min_gap_s=MIN_GAP_S,
        clock=clock,
    )
    return tandem.pipeline, tandem


def _build_llm_with_backend(
    scenario: Scenario, clock: LoopClock, output: SpeechOutput, record: RunRecord
) -> tuple[Pipeline, Any]:
    from pipecat.pipeline.llm_with_backend import LLMWithBackend
    from pipecat.workers.llm.backend_llm_worker import BackendLLMWorker

    backend = BackendLLMWorker(
        llm=ScriptedLLM(
            background_brain("backend", scenario), on_output=record.on_output, clock=clock
        )
    )
    llm = LLMWithBackend(frontend=ScriptedLLM(interaction_brain("backend")), backend=backend)
    pair = LLMContextAggregatorPair(LLMContext(), user_params=user_params())
    return Pipeline([pair.user(), llm, output, pair.assistant()]), llm


async def run_system(system: str, scenario: Scenario, seed: int = 0) -> RunRecord:
    """Run ``scenario`` (jittered by ``seed``) through ``system``; call on a running loop.

    Raises:
        ValueError: Unknown system.
    """
    if system not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
    sc = scenario.jittered(seed)
    clock = LoopClock()
    clock.now()  # fix the epoch at the start of the run
    record = RunRecord(system, sc.name, seed, sc.until, queries=[asdict(q) for q in sc.queries])
    driver = _Driver(sc, clock, record)
    output = SpeechOutput(
        clock=clock,
        seconds_per_word=record.seconds_per_word,
        on_start=driver.on_utterance_start,
        name="bench-output",
    )
    build = _build_tandem if system == "tandem" else _build_llm_with_backend
    pipeline, handle = build(sc, clock, output, record)
    worker, started = worker_with_start_event(pipeline)

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), driver.run(worker, started))
    record.utterances = [asdict(u) for u in output.utterances]
    for u in record.utterances:
        for k in ("arrived", "start", "end"):
            if u[k] is not None:
                u[k] = round(u[k] - driver._base, 6)
    for span in record.user_spans:
        for k in ("start", "end"):
            if span[k] is not None:
                span[k] = round(span[k] - driver._base, 6)
    record.ready = {q: round(t - driver._base, 6) for q, t in record.ready.items()}
    record.failed_at = {q: round(t - driver._base, 6) for q, t in record.failed_at.items()}
    if system == "tandem":
        from pipecat_tandem.observe.metrics import compute_metrics

        record.self_reported = compute_metrics(handle.event_log.events).to_dict()
        record.self_reported.pop("latencies_s", None)
    return record


def quiet_logs(level: str = "ERROR") -> None:
    """Silence pipecat's per-frame debug logging (it dominates a benchmark run)."""
    logger.remove()
    import sys

    logger.add(sys.stderr, level=level)


__all__ = ["QID", "SYSTEMS", "RunRecord", "run_system", "user_params"]
