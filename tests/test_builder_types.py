"""build_tandem_pipeline names a wrong-typed argument (issue 13, defect 9's rest).

A string or number passed as a service used to fail late with a bare
``AttributeError`` from inside pipecat ('str' object has no attribute '_prev').
"""

from __future__ import annotations

import pytest

from pipecat_tandem.clock import ManualClock
from pipecat_tandem.pipelines.tandem import build_tandem_pipeline
from tests.support.fake_llm import FakeLLMService
from tests.support.fake_services import FakeSTTService, FakeTTSService


def _build(**kwargs):
    kwargs.setdefault("interaction_llm", FakeLLMService())
    kwargs.setdefault("background", FakeLLMService())
    return build_tandem_pipeline(**kwargs)


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("interaction_llm", "foo", "interaction_llm must be a pipecat LLMService"),
        ("interaction_llm", None, "interaction_llm must be a pipecat LLMService"),
        ("interaction_llm", 5, "got int 5"),
        ("stt", "x", "stt must be a pipecat STT service"),
        ("stt", 3, "stt must be"),
        ("tts", "piper", "tts must be a pipecat TTS service"),
        ("tts", FakeLLMService, "tts must be"),  # the class, not an instance
        ("transport", "webrtc", "transport must be a pipecat transport"),
        ("transport", 7860, "transport must be"),
        ("tools", "abc", "tools must be a list of Tools"),
        ("tools", ["calculator"], "tools[0] must be a Tool"),
        ("perception", "fusion", "perception must be a list of FrameProcessors"),
        ("perception", [1], "perception[0] must be a FrameProcessor"),
        ("min_gap_s", "fast", "min_gap_s must be a number of seconds, got str 'fast'"),
        ("min_gap_s", True, "min_gap_s must be a number"),
        ("max_concurrency", 2.5, "max_concurrency must be an integer"),
        ("vad_analyzer", "silero", "vad_analyzer must be a VADAnalyzer"),
        ("turn_analyzer", 1, "turn_analyzer must be a BaseTurnAnalyzer"),
        ("context", [], "context must be an LLMContext"),
        ("clock", 0.0, "clock must be a SessionClock"),
        ("event_log", "log.jsonl", "event_log must be an EventLog"),
        ("record_path", 5, "record_path must be a file path"),
        ("job_limits", 4, "job_limits must be a JobLimits"),
        ("registry", {}, "registry must be a JobRegistry"),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_argument(name, value, needle):
    with pytest.raises(TypeError) as info:
        _build(**{name: value})
    assert needle in str(info.value)
    assert str(info.value).startswith("build_tandem_pipeline: ")


def test_a_long_value_is_shown_shortened():
    with pytest.raises(TypeError) as info:
        _build(stt="x" * 1000)
    assert len(str(info.value)) < 200 and "..." in str(info.value)


def test_the_right_types_still_build():
    tandem = _build(
        stt=FakeSTTService(),
        tts=FakeTTSService(),
        perception=(),
        tools=[],
        clock=ManualClock(),
        min_gap_s=1,
        record_path=None,
    )
    assert tandem.pipeline is not None
