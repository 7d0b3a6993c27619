"""Calls' VADs share the process's one Silero session; each keeps its own state.

The server builds a VAD per call (``type(vad)()`` in ``tandem_session``); each
used to load its own onnxruntime session (~100 ms, ~10 MB per call). These tests
hold the shared session to what per-call sessions gave: window for window the
same states and volumes, also with two calls interleaved on their own threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from pipecat.audio.vad.vad_analyzer import VADState

from pipecat_tandem.turns.silence_skipping_vad import (
    SilenceSkippingVADAnalyzer,
    shared_silero_session,
)
from tests.support.media import speech_pcm

SR = 16000
CHUNK = 640  # 20 ms at 16 kHz, as the transport delivers


def _vad(share: bool) -> SilenceSkippingVADAnalyzer:
    vad = SilenceSkippingVADAnalyzer(share_model=share)
    vad.set_sample_rate(SR)
    return vad


def _trace(vad: SilenceSkippingVADAnalyzer, pcm: bytes) -> list[tuple[VADState, float]]:
    return [
        (vad._run_analyzer(pcm[i : i + CHUNK]), vad._prev_volume) for i in range(0, len(pcm), CHUNK)
    ]


def _call_audio(text: str, seed: int) -> bytes:
    """Speech, room noise and digital silence (both of the analyzer's paths)."""
    voice = np.frombuffer(speech_pcm(text, SR, 0.0, 0.0), np.int16)
    noise = np.random.default_rng(seed).normal(0, 30, SR // 2).astype(np.int16)
    zeros = np.zeros(int(2.5 * SR), np.int16)
    return np.concatenate([zeros, voice, noise, zeros, voice, zeros[: SR // 2]]).tobytes()


@pytest.fixture(scope="module")
def calls() -> tuple[bytes, bytes]:
    return (
        _call_audio("What is the weather like in Paris today?", 1),
        _call_audio("Please set a timer for ten minutes.", 2),
    )


def test_two_calls_analyzers_share_one_session():
    a, b = SilenceSkippingVADAnalyzer(), type(SilenceSkippingVADAnalyzer())()
    assert a._model.session is b._model.session is shared_silero_session()
    # ...but not the per-call recurrent state the model object carries.
    assert a._model is not b._model
    own = SilenceSkippingVADAnalyzer(share_model=False)
    assert own._model.session is not shared_silero_session()


def test_shared_session_gives_the_states_of_an_unshared_analyzer(calls):
    for pcm in calls:
        expected = _trace(_vad(share=False), pcm)
        assert VADState.SPEAKING in {s for s, _ in expected}  # the audio has speech
        assert _trace(_vad(share=True), pcm) == expected


def test_two_calls_at_once_on_the_shared_session_match_unshared(calls):
    expected = [_trace(_vad(share=False), pcm) for pcm in calls]
    vads = [_vad(share=True), _vad(share=True)]
    # Chunk by chunk in turn, each call's analysis on its own thread (as each
    # call's VAD runs on its executor): one call's windows between the other's.
    out: list[list[tuple[VADState, float]]] = [[], []]
    with ThreadPoolExecutor(2) as pool:
        for i in range(0, max(len(p) for p in calls), CHUNK):
            futures = [
                (k, pool.submit(vads[k]._run_analyzer, pcm[i : i + CHUNK]))
                for k, pcm in enumerate(calls)
                if i < len(pcm)
            ]
            for k, f in futures:
                out[k].append((f.result(), vads[k]._prev_volume))
    assert out == expected
