#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Presets: which models play the interaction and background roles.

Each role is chosen by a spec string (argument, else environment variable
``TANDEM_INTERACTION`` / ``TANDEM_BACKGROUND``, else ``local``):

=====================================================  ==========================================
spec                                                   service
=====================================================  ==========================================
``local``                                              embedded GGUF model (0.5B interaction,
                                                       1.5B background), offline
``local:0.5b`` / ``local:1.5b``                        a specific embedded model for the role
``openai:gpt-4.1-mini``                                OpenAI (``OPENAI_API_KEY``)
``anthropic:claude-sonnet-4-5``                        Anthropic (``ANTHROPIC_API_KEY``)
``google:gemini-2.5-flash``                            Google Gemini (``GOOGLE_API_KEY`` or
                                                       ``GEMINI_API_KEY``)
``openai-compatible:http://127.0.0.1:11434/v1#llama3``  any OpenAI-compatible server, e.g. Ollama
                                                       (key ``OPENAI_COMPATIBLE_API_KEY``, optional)
``ollama:llama3``                                      shorthand for Ollama on ``OLLAMA_BASE_URL``
                                                       (default ``http://127.0.0.1:11434/v1``)
=====================================================  ==========================================

Either role can use either kind. Speech in and out (Silero VAD, smart-turn v3,
Whisper tiny.en, hibari) is always the embedded offline stack. Cloud services
are imported only when chosen; a missing extra or API key is a ``ValueError``
saying what to install or set.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from pipecat_tandem.models.local_stack import BACKGROUND_PROMPT, INTERACTION_PROMPT, LocalStack
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0, ModelWeights
from pipecat_tandem.models.weights import QWEN_15B
from pipecat_tandem.policy.now_view import NowView
from pipecat_tandem.policy.routing import Router, RuleRouter

INTERACTION_ENV = "TANDEM_INTERACTION"
BACKGROUND_ENV = "TANDEM_BACKGROUND"
DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434/v1"
KINDS = ("local", "openai", "anthropic", "google", "openai-compatible", "ollama")
MAX_SPEC_CHARS = 512

_LOCAL_MODELS: dict[str, ModelWeights] = {"0.5b": QWEN_05B_Q4_0, "1.5b": QWEN_15B}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed role spec.

    Parameters:
        kind: One of :data:`KINDS` (``ollama`` is normalized to ``openai-compatible``).
        model: Model name (for ``local``: ``""``, ``0.5b`` or ``1.5b``).
        base_url: Server URL for ``openai-compatible``.
    """

    kind: str
    model: str = ""
    base_url: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether this runs on the embedded models."""
        return self.kind == "local"


def parse_model_spec(spec: str, *, env: Mapping[str, str] | None = None) -> ModelSpec:
    """Parse a role spec string.

    Args:
        spec: See the module docstring.
        env: Environment for ``ollama``'s base URL (default ``os.environ``).

    Raises:
        ValueError: Malformed spec, unknown kind, missing model or bad URL.
    """
    if not isinstance(spec, str):
        raise ValueError(f"model spec must be a string, got {type(spec).__name__}")
    text = spec.strip()
    if not text:
        raise ValueError(f"empty model spec; expected one of: {', '.join(KINDS)}")
    if len(text) > MAX_SPEC_CHARS:
        raise ValueError(f"model spec is too long ({len(text)} > {MAX_SPEC_CHARS} characters)")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(f"model spec {text!r} must not contain spaces or control characters")
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(
            f"unknown model kind {kind!r} in {text!r}; expected one of: {', '.join(KINDS)}"
        )
    if kind == "local":
        model = rest.lower()
        if model and model not in _LOCAL_MODELS:
            raise ValueError(
                f"unknown local model {rest!r}; expected one of: {', '.join(_LOCAL_MODELS)}"
            )
        return ModelSpec("local", model)
    if kind == "openai-compatible":
        url, sep, model = rest.rpartition("#")
        if not sep or not model or not url:
            raise ValueError(
                f"{text!r}: expected openai-compatible:<base URL>#<model>, "
                "e.g. openai-compatible:http://127.0.0.1:11434/v1#llama3"
            )
        return ModelSpec("openai-compatible", model, _check_url(url, text))
    if not rest:
        raise ValueError(f"{text!r}: expected {kind}:<model name>")
    if kind == "ollama":
        url = (env if env is not None else os.environ).get("OLLAMA_BASE_URL") or DEFAULT_OLLAMA_URL
        return ModelSpec("openai-compatible", rest, _check_url(url, text))
    return ModelSpec(kind, rest)


def _check_url(url: str, spec: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{spec!r}: base URL {url!r} must be an http(s) URL with a host")
    return url


@dataclass
class TandemServices:
    """The services of one tandem session, ready to put in a pipeline.

    Parameters:
        stt: Speech to text.
        tts: Text to speech.
        interaction_llm: The fast model, always present.
        background_llm_factory: Makes a new background LLM service (one per job).
        vad_analyzer: Voice activity detection for the user aggregator.
        turn_analyzer: End-of-turn model for the user aggregator (or None).
        warm: Loads and exercises every local model; await before the first call.
        router: Fallback delegation routing: a :class:`RuleRouter` when the
            interaction model is local (it is not offered tools), else None
            (cloud models call ``delegate`` themselves).
        interaction: The interaction role's spec.
        background: The background role's spec.
        local: The local model stack, when any role or speech is local.
        job_deadline_s: Default background job deadline (a CPU-only 1.5B model on one
            core needs minutes for a tool round).
        verbatim_results: Whether background results should be spoken verbatim
            (``build_tandem_pipeline(verbatim=...)``): True for a local
            interaction model, which garbles numbers when it rephrases a result.
        now_view: The "now" view renderer for ``build_tandem_pipeline``: a local
            interaction model gets it only when a job runs or a cue is recent,
            since it pays for the view's tokens at every turn.
        first_clause: Speak a reply's opening clause before its sentence is
            complete (``build_tandem_pipeline(first_clause=...)``): on for a
            local interaction model, which writes ~20 tokens a second.
        speculative_turns: Start the reply while smart-turn is still deciding
            (``build_tandem_pipeline(speculative_turns=...)``). Off in the presets:
            on the 2-core machine we measure on, the early reply competes with
            smart-turn for the CPU and gained nothing measurable
            (``docs/bench/local.md``).
    """

    stt: STTService
    tts: TTSService
    interaction_llm: LLMService[Any]
    background_llm_factory: Callable[[], LLMService[Any]]
    vad_analyzer: VADAnalyzer
    turn_analyzer: BaseTurnAnalyzer | None
    warm: Callable[[], Awaitable[None]]
    router: Router | None = None
    interaction: ModelSpec = field(default_factory=lambda: ModelSpec("local"))
    background: ModelSpec = field(default_factory=lambda: ModelSpec("local"))
    local: LocalStack | None = None
    verbatim_results: bool = False
    job_deadline_s: float = 60.0
    now_view: NowView | None = None
    first_clause: bool = False
    speculative_turns: bool = False

    @property
    def ready(self) -> bool:
        """Whether :attr:`warm` has completed (serve 503 until then)."""
        return self.local.ready if self.local is not None else True


def build_services(
    interaction: str | None = None,
    background: str | None = None,
    *,
    interaction_prompt: str | None = None,
    background_prompt: str | None = None,
    env: Mapping[str, str] | None = None,
    smart_turn: bool = True,
    remote_background: bool = False,
) -> TandemServices:
    """Build the services for a session from role specs and the environment.

    Args:
        interaction: Spec of the interaction model (else ``$TANDEM_INTERACTION``, else ``local``).
        background: Spec of the background model (else ``$TANDEM_BACKGROUND``, else ``local``).
        interaction_prompt: System instruction of the interaction model.
        background_prompt: System instruction of the background model.
        env: Environment to read specs and API keys from (default ``os.environ``).
        smart_turn: Use the bundled smart-turn v3 end-of-turn model.
        remote_background: Background jobs run on remote workers (``tandem run
            --redis``): no background model is loaded or checked here.

    Raises:
        ValueError: A bad spec, a missing API key or a missing extra.
        ModelUnavailableError: Embedded weights are missing or corrupt.
    """
    environ = env if env is not None else os.environ
    i_spec = parse_model_spec(interaction or environ.get(INTERACTION_ENV) or "local", env=environ)
    b_spec = parse_model_spec(background or environ.get(BACKGROUND_ENV) or "local", env=environ)
    i_prompt = interaction_prompt or INTERACTION_PROMPT
    # The background agent brings its own instructions; a cloud service gets the
    # default prompt only so it is never without one.
    b_prompt = background_prompt or BACKGROUND_PROMPT

    # Check cloud roles before loading anything local: a missing key fails fast.
    i_cloud = None if i_spec.is_local else _cloud_factory(i_spec, i_prompt, environ)
    here = not remote_background
    b_cloud = _cloud_factory(b_spec, b_prompt, environ) if here and not b_spec.is_local else None

    stack = LocalStack(
        interaction_model=_local_model(i_spec, QWEN_05B_Q4_0) if i_spec.is_local else None,
        background_model=_local_model(b_spec, QWEN_15B) if here and b_spec.is_local else None,
    )
    interaction_llm = (
        stack.interaction_llm(system_instruction=i_prompt) if i_cloud is None else i_cloud()
    )

    def background_llm_factory() -> LLMService[Any]:
        if remote_background:
            raise RuntimeError("background jobs run on remote workers (tandem run --redis)")
        if b_cloud is not None:
            return b_cloud()
        return stack.background_llm(system_instruction=background_prompt)

    from pipecat_tandem.turns.silence_skipping_vad import SilenceSkippingVADAnalyzer

    turn_analyzer: BaseTurnAnalyzer | None = None
    if smart_turn:
        from pipecat_tandem.turns.early_smart_turn import EarlySmartTurnAnalyzer

        # pipecat's smart-turn v3, started once the voice goes quiet.
        turn_analyzer = EarlySmartTurnAnalyzer(cpu_count=1)
    stt = stack.stt()
    tts = stack.tts()
    return TandemServices(
        stt=stt,
        tts=tts,
        interaction_llm=interaction_llm,
        background_llm_factory=background_llm_factory,
        vad_analyzer=SilenceSkippingVADAnalyzer(),
        turn_analyzer=turn_analyzer,
        warm=stack.warm,
        router=RuleRouter() if i_spec.is_local else None,
        interaction=i_spec,
        background=b_spec,
        local=stack,
        verbatim_results=i_spec.is_local,
        job_deadline_s=300.0 if b_spec.is_local else 60.0,
        now_view=NowView(only_when_informative=True) if i_spec.is_local else None,
        first_clause=i_spec.is_local,
    )


def _local_model(spec: ModelSpec, default: ModelWeights) -> ModelWeights:
    return _LOCAL_MODELS[spec.model] if spec.model else default


def cloud_llm_factory(
    spec: ModelSpec, system_instruction: str, env: Mapping[str, str] | None = None
) -> Callable[[], LLMService[Any]]:
    """A factory of pipecat services for a cloud spec (checked now, built on call).

    Raises:
        ValueError: Local spec, missing API key or missing extra.
    """
    return _cloud_factory(spec, system_instruction, env if env is not None else os.environ)


def _cloud_factory(
    spec: ModelSpec, system_instruction: str, env: Mapping[str, str]
) -> Callable[[], LLMService[Any]]:
    if spec.kind == "openai":
        key = _require_key(env, spec, "OPENAI_API_KEY")
        from pipecat.services.openai.llm import OpenAILLMService

        def openai() -> LLMService[Any]:
            return OpenAILLMService(
                api_key=key,
                settings=OpenAILLMService.Settings(
                    model=spec.model, system_instruction=system_instruction
                ),
            )

        return openai
    if spec.kind == "openai-compatible":
        # Never send the real OpenAI key to another server.
        key = env.get("OPENAI_COMPATIBLE_API_KEY") or "not-needed"
        from pipecat.services.openai.llm import OpenAILLMService

        def compatible() -> LLMService[Any]:
            return OpenAILLMService(
                api_key=key,
                base_url=spec.base_url,
                settings=OpenAILLMService.Settings(
                    model=spec.model, system_instruction=system_instruction
                ),
            )

        return compatible
    if spec.kind == "anthropic":
        key = _require_key(env, spec, "ANTHROPIC_API_KEY")
        anthropic_cls = _import_service(
            "pipecat.services.anthropic.llm", "AnthropicLLMService", "anthropic"
        )

        def anthropic() -> LLMService[Any]:
            settings = anthropic_cls.Settings(
                model=spec.model, system_instruction=system_instruction
            )
            return anthropic_cls(api_key=key, settings=settings)

        return anthropic
    if spec.kind == "google":
        key = _require_key(env, spec, "GOOGLE_API_KEY", "GEMINI_API_KEY")
        google_cls = _import_service("pipecat.services.google.llm", "GoogleLLMService", "google")

        def google() -> LLMService[Any]:
            settings = google_cls.Settings(model=spec.model, system_instruction=system_instruction)
            return google_cls(api_key=key, settings=settings)

        return google
    raise ValueError(f"{spec.kind!r} is not a cloud model kind")


def _require_key(env: Mapping[str, str], spec: ModelSpec, *names: str) -> str:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    raise ValueError(
        f"{spec.kind}:{spec.model} needs an API key: set {' or '.join(names)} "
        "(or choose `local`, which runs offline)"
    )


def _import_service(module: str, name: str, extra: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise ValueError(
            f"the {extra} models need an optional dependency: "
            f"pip install 'pipecat-ai[{extra}]' ({e})"
        ) from e
