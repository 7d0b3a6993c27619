"""SilenceSkippingVADAnalyzer: the real Silero model, no inference on digital silence.

Speech is espeak-ng's when installed (else tests/support's harmonic voice); every
comparison is window by window against pipecat's plain SileroVADAnalyzer on the
same audio, fed in the transport's 20 ms chunks.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADState

from pipecat_tandem.turns.silence_skipping_vad import (
    SilenceSkippingVADAnalyzer,
    is_digital_silence,
)
from tests.support.media import speech_pcm

SR = 16000
CHUNK = 640  # bytes: 20 ms at 16 kHz, what the transport delivers


class _CountingModel:
    """Wraps the ONNX model to count inferences."""

    def __init__(self, model: Any):
        self.model = model
        self.calls = 0

    def __call__(self, x: np.ndarray, sr: int) -> np.ndarray:
        self.calls += 1
        return self.model(x, sr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("model", "calls"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.model, name, value)


def _vad(cls: type[SileroVADAnalyzer]) -> tuple[SileroVADAnalyzer, _CountingModel]:
    vad = cls()
    vad.set_sample_rate(SR)
    counter = _CountingModel(vad._model)
    vad._model = counter  # type: ignore[assignment]
    return vad, counter


def _states(vad: VADAnalyzer, pcm: bytes) -> list[VADState]:
    return [s for s, _ in _trace(vad, pcm)]


def _trace(vad: VADAnalyzer, pcm: bytes) -> list[tuple[VADState, float]]:
    """(state, smoothed volume) after each 20 ms chunk."""
    out = []
    for i in range(0, len(pcm), CHUNK):
        out.append((vad._run_analyzer(pcm[i : i + CHUNK]), vad._prev_volume))
    return out


def _zeros(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.int16)


def _noise(seconds: float, rms: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, rms, int(seconds * SR)), -32768, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return np.frombuffer(
        speech_pcm("What is the weather like in Paris today?", SR, 0.0, 0.0), np.int16
    )


def _onsets(states: list[VADState]) -> list[int]:
    return [
        i
        for i in range(1, len(states))
        if states[i] == VADState.SPEAKING and states[i - 1] == VADState.STARTING
    ]


def test_digital_silence_is_not_inferred() -> None:
    vad, model = _vad(SilenceSkippingVADAnalyzer)
    states = _states(vad, _zeros(10.0).tobytes())
    assert set(states) == {VADState.QUIET}
    windows = 10 * SR // 512
    # A new call's model is at its reset state, so nothing needs the model.
    assert model.calls == 0
    assert vad.skipped == windows  # type: ignore[attr-defined]


def test_same_states_as_plain_silero_on_speech_after_silence(speech: np.ndarray) -> None:
    # Silences short and long (around pipecat's 2 s model reset), speech right
    # after each, and speech after room noise that falls silent.
    parts = [_zeros(0.3), speech]
    for i, gap in enumerate((0.2, 0.7, 1.9, 2.1, 4.0, 6.5)):
        parts += [_zeros(gap), speech]
        parts += [_noise(0.5, 30, seed=i), _zeros(gap / 2), speech]
    pcm = np.concatenate([*parts, _zeros(1.0)]).tobytes()
    plain, plain_model = _vad(SileroVADAnalyzer)
    skipping, model = _vad(SilenceSkippingVADAnalyzer)
    expected_trace = _trace(plain, pcm)
    # States and volumes (the other half of pipecat's speech decision), exactly.
    assert _trace(skipping, pcm) == expected_trace
    expected = [s for s, _ in expected_trace]
    # Speech really was detected after every silence, promptly as before.
    assert len(_onsets(expected)) >= 13
    # ...and the model was spared most of the silence.
    silent_windows = sum(len(p) for p in parts if not p.any()) // 512
    assert model.calls < plain_model.calls - silent_windows // 2


def test_speech_starting_right_after_long_silence(speech: np.ndarray) -> None:
    pcm = np.concatenate([_zeros(7.3), speech, _zeros(0.5)]).tobytes()
    plain, _ = _vad(SileroVADAnalyzer)
    skipping, model = _vad(SilenceSkippingVADAnalyzer)
    expected = _states(plain, pcm)
    assert _states(skipping, pcm) == expected
    onsets = _onsets(expected)
    # Confirmed within pipecat's start_secs (0.2 s) plus a few windows.
    assert onsets and onsets[0] * 0.02 - 7.3 < 0.5
    assert model.calls < len(pcm) // 1024  # fewer inferences than windows


def test_room_noise_still_goes_to_the_model() -> None:
    vad, model = _vad(SilenceSkippingVADAnalyzer)
    # A quiet room (-60 dBFS RMS), then a very quiet one, then ±1 LSB dither:
    # none of it is digital silence.
    pcm = np.concatenate([_noise(2.0, 30, 1), _noise(2.0, 3, 2), _noise(2.0, 0.6, 3)])
    assert not any(is_digital_silence(pcm[i : i + 512]) for i in range(0, len(pcm) - 511, 512))
    _states(vad, pcm.tobytes())
    windows = len(pcm) // 512
    assert model.calls == windows
    assert vad.skipped == 0  # type: ignore[attr-defined]


def test_zeros_inside_speech_are_scored_by_the_model(speech: np.ndarray) -> None:
    vad, _ = _vad(SilenceSkippingVADAnalyzer)
    # Only while QUIET: a 60 ms hole of zeros in an utterance is scored as before.
    pcm = np.concatenate([speech[:SR], _zeros(0.06), speech[SR:]]).tobytes()
    states = _states(vad, pcm)
    assert VADState.SPEAKING in states
    plain, _ = _vad(SileroVADAnalyzer)
    assert states == _states(plain, pcm)


def test_is_digital_silence_threshold() -> None:
    assert is_digital_silence(np.zeros(512, np.int16))
    assert not is_digital_silence(np.array([0, 1, 0], np.int16))
    assert is_digital_silence(np.array([0, 1, -1], np.int16), max_abs=1)
    assert not is_digital_silence(np.array([-32768, 0], np.int16), max_abs=1)


class _CountingExecutor(ThreadPoolExecutor):
    submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


def test_skipped_silence_does_not_hop_to_the_executor(speech: np.ndarray) -> None:
    vad = SilenceSkippingVADAnalyzer()
    vad.set_sample_rate(SR)
    executor = _CountingExecutor(max_workers=1)
    vad._executor = executor
    silence, voice = _zeros(5.0).tobytes(), np.concatenate([speech, _zeros(0.5)]).tobytes()

    async def feed(pcm: bytes) -> list[VADState]:
        return [await vad.analyze_audio(pcm[i : i + CHUNK]) for i in range(0, len(pcm), CHUNK)]

    async def run() -> tuple[list[VADState], list[VADState]]:
        quiet = await feed(silence)
        hops_in_silence = executor.submitted
        states = await feed(voice)
        assert hops_in_silence == 0
        assert executor.submitted > 0
        await vad.cleanup()
        return quiet, states

    quiet, states = asyncio.run(run())
    assert set(quiet) == {VADState.QUIET}
    plain, _ = _vad(SileroVADAnalyzer)
    assert quiet + states == _states(plain, silence + voice)


def test_constructible_without_arguments_and_async_path(speech: np.ndarray) -> None:
    # The server builds one per call with type(analyzer)().
    vad = type(SilenceSkippingVADAnalyzer())()
    vad.set_sample_rate(SR)
    pcm = np.concatenate([_zeros(3.0), speech, _zeros(1.0)]).tobytes()

    async def run() -> list[VADState]:
        out = [await vad.analyze_audio(pcm[i : i + CHUNK]) for i in range(0, len(pcm), CHUNK)]
        await vad.cleanup()
        return out

    states = asyncio.run(run())
    assert VADState.SPEAKING in states
    assert states[-1] == VADState.QUIET
