#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The production session factory: presets + ``build_tandem_pipeline``.

This is the one place where the servers meet the model presets and the tandem
pipeline builder (both imported lazily, so the server package imports fast and
tests can run it on fake services). Models are assembled and warmed once in
:meth:`TandemSessionFactory.warm`; every session shares them.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from pipecat.pipeline.worker import PipelineWorker
from pipecat.transports.base_transport import BaseTransport

from pipecat_tandem.transports.session import ProgressFn, SessionInfo, SessionRefusedError


def _resolve_services(
    interaction: str | None, background: str | None, remote_background: bool = False
) -> Any:
    """Build the ``TandemServices`` for two spec strings via the presets module.

    With ``remote_background`` (``tandem run --redis``) the background model is
    not loaded here: the workers hold it.
    """
    import importlib

    presets = importlib.import_module("pipecat_tandem.pipelines.presets")
    if remote_background:
        return presets.build_services(
            interaction=interaction, background=background, remote_background=True
        )
    return presets.build_services(interaction=interaction, background=background)


def _fresh_services(services: Any) -> Any:
    """New service instances over the same loaded models, for the next session.

    The local stack shares its loaded models (LLMs, Whisper, the voice)
    between service instances, and smart-turn shares its onnx session; only
    per-call state is new. The VAD is rebuilt: Silero keeps its recurrent state
    in the model object, over the process's one onnx session (nothing is
    loaded per call, see ``silence_skipping_vad``). A cloud interaction model gets a new
    service from the presets' cloud factory.
    """
    import dataclasses
    import importlib

    presets = importlib.import_module("pipecat_tandem.pipelines.presets")
    local = getattr(services, "local", None)
    spec = getattr(services, "interaction", None)
    if spec is not None and not spec.is_local:
        llm = presets.cloud_llm_factory(spec, presets.INTERACTION_PROMPT)()
    elif local is not None:
        llm = local.interaction_llm(system_instruction=presets.INTERACTION_PROMPT)
    else:
        raise RuntimeError("cannot rebuild the interaction model for a new session")
    turn_analyzer = getattr(services, "turn_analyzer", None)
    if turn_analyzer is not None:
        fresh = getattr(turn_analyzer, "fresh", None)
        turn_analyzer = fresh() if callable(fresh) else type(turn_analyzer)()
    return dataclasses.replace(
        services,
        interaction_llm=llm,
        stt=local.new_stt() if local is not None else type(services.stt)(),
        tts=local.new_tts() if local is not None else type(services.tts)(),
        vad_analyzer=type(services.vad_analyzer)(),
        turn_analyzer=turn_analyzer,
    )


class SessionBusyError(SessionRefusedError):
    """Every call the loaded models can serve at once is taken."""


def _call_capacity(services: Any) -> int:
    """Calls ``services`` serve at once: the local stack's slots, else one.

    The local stack says what its models can serve (one call per core, see
    ``LocalStack.call_slots``). Services without one declare nothing, so they
    keep the safe limit of one call at a time.
    """
    local = getattr(services, "local", None)
    slots = getattr(local, "call_slots", None)
    return slots if isinstance(slots, int) and slots >= 1 else 1


class TandemSessionFactory:
    """Builds the full tandem pipeline for each session on the chosen models.

    Args:
        interaction: Interaction model spec (``local``, ``openai:MODEL``...);
            ``None`` uses ``TANDEM_INTERACTION`` or the embedded default.
        background: Background model spec; ``None`` uses ``TANDEM_BACKGROUND``
            or the embedded default.
        perception: Run micro-turn ingest and encoder-free fusion on the call's
            media (visual and motion cues, repetition counts, the now view).
        pipeline_kwargs: Extra keyword arguments for ``build_tandem_pipeline``.
        remote: A ``RedisDeployment``: background jobs run on its ``tandem worker``
            processes (a ``RedisRunner`` per call) instead of in this process.
        build_services: Makes the ``TandemServices`` from the two specs (default:
            ``presets.build_services``); e.g. services given by import path.
    """

    def __init__(
        self,
        *,
        interaction: str | None = None,
        background: str | None = None,
        perception: bool = True,
        pipeline_kwargs: dict[str, Any] | None = None,
        remote: Any = None,
        build_services: Callable[[str | None, str | None], Any] | None = None,
    ) -> None:
        self._build_services = build_services or _resolve_services
        self.interaction = interaction
        self.remote = remote
        self.background = background
        self.perception = perception
        self._pipeline_kwargs = dict(pipeline_kwargs or {})
        self._services: Any = None
        self._calls = 0
        self.capacity = 1

    @property
    def busy(self) -> bool:
        """Whether every call the models can serve is taken (read by ``/healthz``)."""
        return self._calls >= self.capacity

    @property
    def calls(self) -> int:
        """Calls holding the services now."""
        return self._calls

    async def warm(self, progress: ProgressFn) -> dict[str, Any]:
        """Assemble the models (reporting each step) and warm them."""
        started = time.monotonic()
        progress(
            f"assembling models (interaction={self.interaction or 'default'}, "
            f"background={self.background or 'default'})"
        )
        # Preset construction may read and verify large weight files: off the loop.
        specs = (self.interaction, self.background)
        if self.remote is not None and self._build_services is _resolve_services:
            self._services = await asyncio.to_thread(_resolve_services, *specs, True)
        else:
            self._services = await asyncio.to_thread(self._build_services, *specs)
        self.capacity = _call_capacity(self._services)
        progress(f"models assembled in {time.monotonic() - started:.1f}s; warming up")
        warm = getattr(self._services, "warm", None)
        if callable(warm):
            result = warm()
            if inspect.isawaitable(result):
                await result
        progress(f"models warm after {time.monotonic() - started:.1f}s")
        return {
            "interaction": self.interaction or "default",
            "background": self.background or "default",
        }

    async def create_worker(self, transport: BaseTransport, session: SessionInfo) -> PipelineWorker:
        """Build the tandem pipeline worker for one session.

        Raises:
            RuntimeError: If the models are not warm.
            SessionBusyError: If the models serve as many calls as they can.
        """
        if self._services is None:
            raise RuntimeError("models are not warm yet")
        if self.busy:
            raise SessionBusyError(
                f"the models are serving all the calls they can ({self._calls}); try again later"
            )
        self._calls += 1
        try:
            worker = await self._build_worker(transport, session)
        except Exception:
            self._calls -= 1
            raise
        return worker

    def _background(self, services: Any) -> Any:
        """The call's background: its own ``RedisRunner``, or the local model's factory."""
        if self.remote is None:
            return services.background_llm_factory
        from pipecat_tandem.background.remote.redis_runner import RedisRunner

        return RedisRunner(deployment=self.remote)

    async def _build_worker(self, transport: BaseTransport, session: SessionInfo) -> PipelineWorker:
        from pipecat.pipeline.worker import PipelineParams

        from pipecat_tandem.background.jobs import JobRegistry
        from pipecat_tandem.observe.event_log import EventLog
        from pipecat_tandem.pipelines.tandem import build_tandem_pipeline, default_perception
        from pipecat_tandem.transports.rtvi_job_bridge import RTVIJobBridge

        # pipecat services join one pipeline only, so every call gets fresh ones
        # over the shared loaded models (off the loop: the VAD loads its model).
        # The warmed originals stay a template that no pipeline holds: a call's
        # services link to its processors, so a template in a pipeline kept
        # that whole call alive for the life of the server.
        services = await asyncio.to_thread(_fresh_services, self._services)
        event_log = EventLog(session.clock, path=session.record_path)
        kwargs = dict(self._pipeline_kwargs)
        if self.perception and "perception" not in kwargs:
            kwargs["perception"] = default_perception(session.clock, event_log)
        tandem = build_tandem_pipeline(
            transport=transport,
            interaction_llm=services.interaction_llm,
            background=self._background(services),
            stt=services.stt,
            tts=services.tts,
            vad_analyzer=services.vad_analyzer,
            turn_analyzer=getattr(services, "turn_analyzer", None),
            router=getattr(services, "router", None),
            verbatim=getattr(services, "verbatim_results", False),
            now_view=getattr(services, "now_view", None),
            first_clause=getattr(services, "first_clause", False),
            speculative_turns=getattr(services, "speculative_turns", False),
            registry=JobRegistry(default_deadline_s=getattr(services, "job_deadline_s", 60.0)),
            clock=session.clock,
            event_log=event_log,
            **kwargs,
        )
        worker = PipelineWorker(
            tandem.pipeline,
            params=PipelineParams(enable_metrics=True),
            cancel_on_idle_timeout=False,
        )
        if transport is not None:
            # Job events to RTVI clients, and their cancel messages back (docs/rtvi-jobs.md).
            RTVIJobBridge(delegation=tandem.delegation, clock=session.clock).attach(
                worker, transport.output()
            )

        @worker.event_handler("on_pipeline_finished")
        async def _release(worker: PipelineWorker, frame: Any) -> None:
            self._calls = max(0, self._calls - 1)
            event_log.close()

        return worker
