"""Every call's speech services share the process's loaded models (issue 13, defect 1).

A model per call (Whisper, the hibari voice, smart-turn's onnx session) cost
~100 MB and threads a long-lived server never got back.
"""

from __future__ import annotations

import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("hibari")

from pipecat_tandem.models.local_stack import LocalStack  # noqa: E402
from pipecat_tandem.turns.early_smart_turn import EarlySmartTurnAnalyzer  # noqa: E402


def test_each_calls_speech_services_are_new_over_one_loaded_model_each():
    stack = LocalStack(interaction_model=None, background_model=None)
    first_stt, second_stt = stack.stt(), stack.new_stt()
    assert second_stt is not first_stt
    assert second_stt.whisper_model is not None
    assert second_stt.whisper_model is first_stt.whisper_model
    first_tts, second_tts = stack.tts(), stack.new_tts()
    assert second_tts is not first_tts and second_tts.voice is first_tts.voice
    # The shared model still transcribes and the shared voice still speaks.
    assert second_stt.transcribe_pcm(bytes(16000 * 2)) == ""
    chunks = second_tts.synthesize("Hello there.")
    assert chunks and sum(len(c) for c in chunks) > 2400


def test_a_fresh_smart_turn_shares_the_session_but_not_the_turn_state():
    turn = EarlySmartTurnAnalyzer(cpu_count=1, quiet_s=0.15, pad_s=0.05)
    fresh = turn.fresh()
    assert fresh is not turn
    assert fresh._session is turn._session
    assert (fresh._quiet_s, fresh._pad_s) == (0.15, 0.05)
    assert fresh.params == turn.params
    turn.set_sample_rate(16000)
    fresh.set_sample_rate(16000)
    turn.append_audio(bytes(320), is_speech=True)
    assert turn.speech_triggered and not fresh.speech_triggered
