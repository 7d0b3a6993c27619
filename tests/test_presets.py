"""Preset spec parsing and cloud-service checks (no network, no local model loads)."""

from __future__ import annotations

import sys

import pytest

from pipecat_tandem.pipelines import presets
from pipecat_tandem.pipelines.presets import (
    DEFAULT_OLLAMA_URL,
    ModelSpec,
    cloud_llm_factory,
    parse_model_spec,
)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("local", ModelSpec("local")),
        ("  LOCAL  ", ModelSpec("local")),
        ("local:0.5b", ModelSpec("local", "0.5b")),
        ("local:1.5B", ModelSpec("local", "1.5b")),
        ("openai:gpt-4.1-mini", ModelSpec("openai", "gpt-4.1-mini")),
        ("anthropic:claude-sonnet-4-5", ModelSpec("anthropic", "claude-sonnet-4-5")),
        ("google:gemini-2.5-flash", ModelSpec("google", "gemini-2.5-flash")),
        (
            "openai-compatible:http://127.0.0.1:11434/v1#llama3",
            ModelSpec("openai-compatible", "llama3", "http://127.0.0.1:11434/v1"),
        ),
        (
            "openai-compatible:https://host.example/v1#org/model:tag",
            ModelSpec("openai-compatible", "org/model:tag", "https://host.example/v1"),
        ),
        ("ollama:llama3", ModelSpec("openai-compatible", "llama3", DEFAULT_OLLAMA_URL)),
    ],
)
def test_parses_specs(spec, expected):
    assert parse_model_spec(spec, env={}) == expected


def test_ollama_base_url_from_env():
    spec = parse_model_spec("ollama:qwen", env={"OLLAMA_BASE_URL": "http://127.0.0.1:9/v1"})
    assert spec.base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("gpt4", "unknown model kind"),
        ("azure:gpt-4", "unknown model kind"),
        ("openai", "expected openai:<model name>"),
        ("openai:", "expected openai:<model name>"),
        ("anthropic:", "expected anthropic"),
        ("local:7b", "unknown local model"),
        ("openai-compatible:http://127.0.0.1:11434/v1", "expected openai-compatible"),
        ("openai-compatible:#llama3", "expected openai-compatible"),
        ("openai-compatible:http://127.0.0.1/v1#", "expected openai-compatible"),
        ("openai-compatible:ftp://host/v1#m", "http"),
        ("openai-compatible:localhost:11434#m", "http"),
        ("openai:gpt 4", "spaces"),
        ("openai:gpt\x00", "control"),
        ("openai:" + "x" * 600, "too long"),
    ],
)
def test_bad_specs_are_clear_value_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_model_spec(spec, env={})


@pytest.mark.parametrize("bad", [None, 3, b"local", ["local"]])
def test_non_string_specs(bad):
    with pytest.raises(ValueError, match="string"):
        parse_model_spec(bad, env={})


def test_missing_api_key_names_the_variable():
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        cloud_llm_factory(ModelSpec("openai", "gpt-4.1-mini"), "hi", env={})
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        cloud_llm_factory(ModelSpec("anthropic", "claude"), "hi", env={"OPENAI_API_KEY": "k"})
    with pytest.raises(ValueError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        cloud_llm_factory(ModelSpec("google", "gemini"), "hi", env={"GOOGLE_API_KEY": "  "})


def test_missing_extra_names_what_to_install(monkeypatch):
    # A None entry in sys.modules makes the import fail as if not installed.
    monkeypatch.setitem(sys.modules, "pipecat.services.anthropic.llm", None)
    with pytest.raises(ValueError, match=r"pipecat-ai\[anthropic\]"):
        cloud_llm_factory(ModelSpec("anthropic", "claude"), "hi", env={"ANTHROPIC_API_KEY": "k"})
    monkeypatch.setitem(sys.modules, "pipecat.services.google.llm", None)
    with pytest.raises(ValueError, match=r"pipecat-ai\[google\]"):
        cloud_llm_factory(ModelSpec("google", "gemini"), "hi", env={"GEMINI_API_KEY": "k"})


def test_local_spec_is_not_a_cloud_kind():
    with pytest.raises(ValueError, match="not a cloud"):
        cloud_llm_factory(ModelSpec("local"), "hi", env={})


def test_openai_factory_builds_fresh_services():
    from pipecat.services.openai.llm import OpenAILLMService

    factory = cloud_llm_factory(
        ModelSpec("openai", "gpt-4.1-mini"), "Be brief.", env={"OPENAI_API_KEY": "sk-test"}
    )
    first, second = factory(), factory()
    assert isinstance(first, OpenAILLMService) and first is not second
    assert first._settings.model == "gpt-4.1-mini"
    assert first._settings.system_instruction == "Be brief."


def test_openai_compatible_never_sends_the_openai_key():
    spec = parse_model_spec("openai-compatible:http://127.0.0.1:11434/v1#llama3", env={})
    llm = cloud_llm_factory(spec, "hi", env={"OPENAI_API_KEY": "sk-secret"})()
    assert llm._client.api_key != "sk-secret"
    assert str(llm._client.base_url).startswith("http://127.0.0.1:11434/v1")
    llm = cloud_llm_factory(spec, "hi", env={"OPENAI_COMPATIBLE_API_KEY": "k2"})()
    assert llm._client.api_key == "k2"


def test_build_services_checks_cloud_keys_before_loading_models(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("local models must not load before the key check")

    monkeypatch.setattr(presets, "LocalStack", explode)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        presets.build_services(env={"TANDEM_INTERACTION": "openai:gpt-4.1-mini"})
    with pytest.raises(ValueError, match="unknown model kind"):
        presets.build_services(env={"TANDEM_BACKGROUND": "bogus:thing"})


def test_build_services_reads_specs_from_env_and_arguments_win(monkeypatch):
    made = {}

    class FakeStack:
        def __init__(self, *, interaction_model, background_model):
            made["interaction"], made["background"] = interaction_model, background_model

        def __getattr__(self, name):
            raise _Stop

    class _Stop(Exception):
        pass

    monkeypatch.setattr(presets, "LocalStack", FakeStack)
    env = {"TANDEM_INTERACTION": "openai:gpt-4.1-mini", "OPENAI_API_KEY": "sk-test"}
    with pytest.raises(_Stop):
        presets.build_services(background="local:0.5b", env=env)
    assert made["interaction"] is None  # cloud interaction: no local 0.5B
    assert made["background"] is presets.QWEN_05B_Q4_0
    with pytest.raises(_Stop):
        presets.build_services(interaction="local", env=env)
    assert made["interaction"] is presets.QWEN_05B_Q4_0
    assert made["background"] is presets.QWEN_15B


def test_a_local_interaction_model_gets_the_latency_settings(monkeypatch):
    class FakeStack:
        def __init__(self, **kwargs):
            self.ready = True

        def interaction_llm(self, **kwargs):
            return "local-llm"

        def stt(self):
            return "stt"

        def tts(self):
            return "tts"

        async def warm(self):
            pass

    monkeypatch.setattr(presets, "LocalStack", FakeStack)
    local = presets.build_services(env={}, smart_turn=False)
    assert local.first_clause and local.verbatim_results
    assert local.now_view is not None and local.now_view.only_when_informative
    cloud = presets.build_services(
        interaction="openai:gpt-4.1-mini", env={"OPENAI_API_KEY": "sk-test"}, smart_turn=False
    )
    assert not cloud.first_clause and cloud.now_view is None


def test_builder_puts_the_first_clause_processor_before_the_tts():
    from pipecat_tandem.pipelines.tandem import build_tandem_pipeline
    from pipecat_tandem.processors.first_clause_processor import FirstClauseProcessor
    from tests.support.fake_llm import FakeLLMService
    from tests.support.fake_services import FakeTTSService

    def kinds(first_clause):
        tts = FakeTTSService()
        tandem = build_tandem_pipeline(
            interaction_llm=FakeLLMService(lambda m: None),
            background=lambda: FakeLLMService(lambda m: None),
            tts=tts,
            first_clause=first_clause,
        )
        stages = tandem.pipeline.processors
        return stages, stages.index(tts)

    stages, at = kinds(True)
    assert isinstance(stages[at - 1], FirstClauseProcessor)
    stages, _ = kinds(False)
    assert not any(isinstance(s, FirstClauseProcessor) for s in stages)


@pytest.mark.parametrize("speculative", [False, True])
def test_builder_installs_the_speculative_stop_strategy_only_when_asked(speculative):
    from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy

    from pipecat_tandem.pipelines.tandem import build_tandem_pipeline
    from pipecat_tandem.turns import SpeculativeTurnStopStrategy
    from tests.support.fake_llm import FakeLLMService
    from tests.support.fake_turn import GatedTurnAnalyzer

    tandem = build_tandem_pipeline(
        interaction_llm=FakeLLMService(lambda m: None),
        background=lambda: FakeLLMService(lambda m: None),
        turn_analyzer=GatedTurnAnalyzer(),
        speculative_turns=speculative,
    )
    (stop,) = tandem.user_aggregator._params.user_turn_strategies.stop
    assert isinstance(stop, TurnAnalyzerUserTurnStopStrategy)
    assert isinstance(stop, SpeculativeTurnStopStrategy) == speculative
    # The presets leave it off (no measured gain on a shared 2-core CPU).
    from pipecat_tandem.pipelines.presets import TandemServices

    assert TandemServices.__dataclass_fields__["speculative_turns"].default is False
