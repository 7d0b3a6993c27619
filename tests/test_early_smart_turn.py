"""Smart-turn started once the voice goes quiet: same decisions as pipecat's, sooner."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

from pipecat_tandem.turns.early_smart_turn import EarlySmartTurnAnalyzer

pytestmark = pytest.mark.slow

hibari = pytest.importorskip("hibari")
FRAME = 640  # 20 ms of 16 kHz int16


def speech(text: str) -> bytes:
    audio24 = hibari.Hibari()(text)
    audio = np.interp(np.arange(0, len(audio24), 1.5), np.arange(len(audio24)), audio24)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def feed(analyzer, pcm: bytes, is_speech: bool) -> None:
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        analyzer.append_audio(pcm[i : i + FRAME], is_speech)


def turn(analyzer, parts):
    analyzer.set_sample_rate(16000)
    for pcm, is_speech in parts:
        feed(analyzer, pcm, is_speech)
    return asyncio.run(analyzer.analyze_end_of_turn())[0]


def test_early_decision_matches_pipecats_and_is_used():
    question = speech("What is the capital of France?")
    parts = [(question, True), (bytes(FRAME * 10), False)]  # 200 ms quiet: the VAD stops
    plain = turn(LocalSmartTurnAnalyzerV3(), parts)
    early = EarlySmartTurnAnalyzer()
    assert turn(early, parts) == plain == EndOfTurnState.COMPLETE
    assert early.early_decisions == 1


def test_voice_after_the_early_start_means_a_fresh_decision():
    early = EarlySmartTurnAnalyzer()
    early.set_sample_rate(16000)
    feed(early, speech("So I was thinking"), True)
    feed(early, bytes(FRAME * 6), False)  # 120 ms: an early prediction starts
    feed(early, speech("about the weekend"), True)  # ... but the user goes on
    state, _ = asyncio.run(early.analyze_end_of_turn())
    assert early.early_decisions == 0
    assert state in (EndOfTurnState.COMPLETE, EndOfTurnState.INCOMPLETE)
    early.clear()
    assert turn(early, [(b"", True)]) == EndOfTurnState.INCOMPLETE  # nothing to judge
