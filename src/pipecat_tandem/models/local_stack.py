#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""The embedded offline default, assembled: models, CPU placement, warm-up.

:class:`LocalStack` owns the loaded models of one process — the interaction LLM
(Qwen2.5 0.5B), the background LLM (Qwen2.5 1.5B), Whisper tiny.en and hibari —
and hands out pipecat services over them. Every LLM service it makes for a role
shares that role's single loaded model.

CPU placement on a 2-core machine (measured, see ``docs/bench/local.md``): the
interaction model runs two llama.cpp threads, unpinned, and the background model
one thread pinned to CPU 1 at nice 19. The kernel then gives the interaction
path (STT, LLM, TTS) both cores the moment it needs them and the background
model every cycle it leaves, so a background job generating costs a turn almost
nothing and a turn is twice as fast as on one core. The earlier plan (one pinned
core each, :meth:`CpuPlan.pinned`) isolated the roles too, but left the
interaction model half the machine even while the background was idle.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.services.settings import LLMSettings

from pipecat_tandem.models.local_llm import LocalLLMService
from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig
from pipecat_tandem.models.local_stt import LocalWhisperSTTService
from pipecat_tandem.models.local_tts import HibariTTSService
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0, ModelWeights, ensure_weights
from pipecat_tandem.models.weights import QWEN_15B

#: Default persona of the local interaction model: short spoken replies.
INTERACTION_PROMPT = (
    "You are a friendly voice assistant in a live conversation. Reply in one or two short "
    "spoken sentences, without lists or markdown."
)
#: The background model's spare slot for the interaction's second opinions: the
#: persona and the latest ~300 characters of the call (policy/refusals.py), and a
#: reply of up to 120 tokens. 58 MB of KV cache on the 1.5B.
SECOND_OPINION_SLOT_TOKENS = 2048
#: Default instruction of the local background model.
BACKGROUND_PROMPT = (
    "You are a careful assistant working in the background for a voice assistant. Think "
    "step by step, use the tools when they help, and finish with a short, plain answer "
    "that can be read aloud."
)


def default_call_slots() -> int:
    """Calls the embedded models serve at once: one per core this process may use.

    Why per core: a chit-chat turn of the embedded interaction path (Whisper,
    the 0.5B, the voice) keeps about one core busy for about a second, and a
    caller takes a turn every few seconds at most; two calls on two cores
    still answer within the chit-chat target (``docs/benchmarks.md``, "Two
    calls at once"). A third call on two cores would queue turns behind
    each other whenever two people speak at once.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CpuPlan:
    """llama.cpp threads, CPU pinning and priority per role.

    Parameters:
        interaction_threads: Threads of the interaction model.
        interaction_cpus: CPUs it is pinned to (``None`` = unpinned).
        background_threads: Threads of the background model.
        background_cpus: CPUs it is pinned to (``None`` = unpinned).
        background_nice: Niceness of the background model's threads (0-19).
    """

    interaction_threads: int = 2
    interaction_cpus: frozenset[int] | None = None
    background_threads: int = 1
    background_cpus: frozenset[int] | None = frozenset({1})
    background_nice: int = 19

    @classmethod
    def for_roles(cls, *, interaction_local: bool, background_local: bool) -> CpuPlan:
        """The measured-best plan for this machine's CPU count.

        The arguments are kept for callers that plan per role: the background
        model runs reniced, so it never needs the interaction model to give up
        threads, whether or not it is local.
        """
        del interaction_local, background_local
        ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        if ncpu < 2:
            return cls(1, None, 1, None)
        # llama.cpp gains little past 4 threads on a 0.5B model.
        last = max(os.sched_getaffinity(0))
        return cls(interaction_threads=min(ncpu, 4), background_cpus=frozenset({last}))

    @classmethod
    def pinned(cls) -> CpuPlan:
        """One core each, both at normal priority (the earlier default, for comparison)."""
        return cls(1, frozenset({0}), 1, frozenset({1}), 0)


class LocalStack:
    """Loads the offline models once and makes pipecat services over them.

    Example::

        stack = LocalStack()
        llm = stack.interaction_llm()
        await stack.warm()
    """

    def __init__(
        self,
        *,
        interaction_model: ModelWeights | None = QWEN_05B_Q4_0,
        background_model: ModelWeights | None = QWEN_15B,
        cpu_plan: CpuPlan | None = None,
        stt_threads: int = 1,
        stt_short_window: bool = True,
        stt_early: bool = True,
        n_ctx: int = 4096,
        call_slots: int | None = None,
    ) -> None:
        """Locate the weights (assembling and converting once if needed); nothing is loaded yet.

        Args:
            interaction_model: Model of the interaction role, or None if that
                role is not local.
            background_model: Model of the background role, or None.
            cpu_plan: Threads and pinning (default: :meth:`CpuPlan.for_roles`).
            stt_threads: Whisper's CPU threads (normal priority, like the interaction
                model). One: at the end of a turn Whisper runs beside smart-turn (one
                thread), and two threads of Whisper beside it oversubscribe two cores
                (measured in ``docs/bench/local.md``, item 12).
            stt_short_window: Whisper encodes a window fitted to the utterance
                instead of its fixed 30 s (see ``LocalWhisperSTTService``).
            stt_early: Whisper starts transcribing after 0.1 s of quiet, before
                the VAD's stop (see ``LocalWhisperSTTService``).
            n_ctx: Context length of both LLMs (per call for the interaction model).
            call_slots: Calls these models serve at once (default:
                :func:`default_call_slots`, one per usable core). The
                interaction model gets a llama.cpp slot per call; Whisper, the
                voice and the background model are shared and take turns.

        Raises:
            ModelUnavailableError: Weights are missing or corrupt.
        """
        plan = cpu_plan or CpuPlan.for_roles(
            interaction_local=interaction_model is not None,
            background_local=background_model is not None,
        )
        self.cpu_plan = plan
        self.call_slots = default_call_slots() if call_slots is None else call_slots
        if self.call_slots < 1:
            raise ValueError(f"call_slots must be >= 1, got {self.call_slots}")
        self._interaction: LocalModelServer | None = None
        self._background: LocalModelServer | None = None
        if interaction_model is not None:
            self._interaction = LocalModelServer(
                ServerConfig(
                    model_path=ensure_weights(interaction_model),
                    n_threads=plan.interaction_threads,
                    cpus=plan.interaction_cpus,
                    n_ctx=n_ctx,
                    name="interaction",
                    slots=self.call_slots,
                )
            )
        if background_model is not None:
            self._background = LocalModelServer(
                ServerConfig(
                    model_path=ensure_weights(background_model),
                    n_threads=plan.background_threads,
                    cpus=plan.background_cpus,
                    n_ctx=n_ctx,
                    name="background",
                    nice=plan.background_nice,
                    # The interaction's second opinions run beside the jobs' slot.
                    spare_slot_tokens=SECOND_OPINION_SLOT_TOKENS,
                )
            )
        self._stt_threads = stt_threads
        self._stt_short_window = stt_short_window
        self._stt_early = stt_early
        self._stt: LocalWhisperSTTService | None = None
        self._tts: HibariTTSService | None = None
        # The first interaction service: warm() prefills its prompt. Only it is
        # kept — holding every session's service kept each ended call's whole
        # processor chain alive (the services link to their neighbours).
        self._warm_llm: LocalLLMService | None = None
        self._is_ready = False

    @property
    def interaction_server(self) -> LocalModelServer | None:
        """The interaction model's server (None if that role is not local)."""
        return self._interaction

    @property
    def background_server(self) -> LocalModelServer | None:
        """The background model's server (None if that role is not local)."""
        return self._background

    @property
    def ready(self) -> bool:
        """Whether :meth:`warm` has completed (a server can answer 503 until then)."""
        return self._is_ready

    def stt(self) -> LocalWhisperSTTService:
        """The Whisper tiny.en service (one per stack; loads on first call)."""
        if self._stt is None:
            self._stt = self.new_stt()
        return self._stt

    def new_stt(self) -> LocalWhisperSTTService:
        """A fresh Whisper service with this stack's settings.

        A pipecat service joins one pipeline only, so each later session needs its own.
        The Whisper model itself is loaded once per stack and shared: a model
        per call cost ~50 MB and its threads, never given back while the
        server lived.
        """
        shared = self._stt.whisper_model if self._stt is not None else None
        return LocalWhisperSTTService(
            cpu_threads=self._stt_threads,
            num_workers=self.call_slots,  # calls' utterances transcribed at once
            short_window=self._stt_short_window,
            early=self._stt_early,
            model=shared,
        )

    def tts(self) -> HibariTTSService:
        """The hibari TTS service (one per stack; loads on first call)."""
        if self._tts is None:
            self._tts = HibariTTSService()
        return self._tts

    def new_tts(self) -> HibariTTSService:
        """A fresh TTS service over this stack's one loaded voice (one per session)."""
        return HibariTTSService(voice=self.tts().voice)

    def interaction_llm(
        self, *, system_instruction: str | None = None, use_tools: bool = False, **kwargs: Any
    ) -> LocalLLMService:
        """A service over the interaction model.

        By default the small interaction model is not offered tools: it calls
        them unreliably, and :class:`~pipecat_tandem.policy.routing.RuleRouter`
        decides delegation for it (``TandemServices.router``). A reply of its that
        opens with a refusal gets a second opinion from the local background model
        (``second_opinion=None`` in ``kwargs`` turns that off).

        Raises:
            ValueError: The interaction role is not local in this stack.
        """
        if self._interaction is None:
            raise ValueError("this LocalStack has no local interaction model")
        llm = LocalLLMService(
            server=self._interaction,
            settings=LLMSettings(
                system_instruction=system_instruction or INTERACTION_PROMPT,
                temperature=0.2,
                max_tokens=120,
            ),
            use_tools=use_tools,
            # A refusal from the small model is usually a request it did not follow;
            # the background model answers it instead (policy/refusals.py).
            second_opinion=kwargs.pop(
                "second_opinion",
                self._background if self._background is not self._interaction else None,
            ),
            **kwargs,
        )
        if self._warm_llm is None and not self._is_ready:
            self._warm_llm = llm
        return llm

    def background_llm(
        self, *, system_instruction: str | None = None, **kwargs: Any
    ) -> LocalLLMService:
        """A new service over the shared background model (call once per job).

        The background agent supplies its own instructions in the messages, so
        by default the service adds none (two system prompts confuse small models).

        Raises:
            ValueError: The background role is not local in this stack.
        """
        if self._background is None:
            raise ValueError("this LocalStack has no local background model")
        return LocalLLMService(
            server=self._background,
            settings=LLMSettings(
                system_instruction=system_instruction,
                temperature=0.0,
                max_tokens=400,
            ),
            # A job's pipeline ends with its answer: nothing would reuse a refill.
            refill_cache=False,
            **kwargs,
        )

    async def warm(self) -> None:
        """Load and exercise every model so the first turn is not cold (idempotent).

        The interaction model prefills its system prompt into the prompt cache.
        """
        if self._is_ready:
            return
        jobs: list[Any] = []
        if self._warm_llm is not None:
            jobs.append(self._warm_llm.warm())
        elif self._interaction is not None:
            jobs.append(self._interaction.warm())
        if self._background is not None:
            # The background agent's fixed step instructions open every job's prompt:
            # prefilled now, a job pays only for its own situation.
            from pipecat_tandem.background.steps import step_instructions
            from pipecat_tandem.background.tools import default_tools

            system = step_instructions(default_tools())
            jobs.append(
                self._background.warm(
                    [{"role": "system", "content": system}, {"role": "user", "content": "Hi."}]
                )
            )
        if self._stt is not None:
            stt = self._stt
            jobs.append(asyncio.to_thread(stt.transcribe_pcm, bytes(16000 * 2)))
        if self._tts is not None:
            jobs.append(self._tts.warm())
        await asyncio.gather(*jobs)
        self._warm_llm = None  # its prompt is in the server's cache now
        self._is_ready = True
        logger.info("local models warm")
